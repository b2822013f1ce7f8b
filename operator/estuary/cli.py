"""The `estuary` command: one entry point, one subcommand per job (click).

click gives the subcommands, `--help`, `--version` and shell completion (`eval "$(_ESTUARY_COMPLETE=
bash_source estuary)"`, or zsh_source / fish_source). `sim`, `agent` and `portal` keep their own
option parsers (their modules own them); `estuary sim --help` shows theirs. Heavy imports (Kopf, the
Kubernetes client, the simulator) happen inside the subcommand that needs them, so completion and
`--help` stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="estuary", prog_name="estuary")
def main() -> None:
    """Run AI training jobs across heterogeneous accelerator pools."""


@main.command()
@click.option(
    "--verbose", is_flag=True, help="Log every watch event (Kopf's logging and the pod and AIJob watches)."
)
def operator(verbose: bool) -> None:
    """Run the operator against the current kubeconfig."""
    import logging

    import kopf

    from estuary import memory
    from estuary.control import timeshare

    memory.limit_arenas()  # before Kopf and the operator start their threads

    try:  # a setting that does not parse stops the start, naming the variable
        timeshare.from_env()
    except ValueError as err:
        raise click.ClickException(f"operator settings: {err}") from None

    kopf.configure(verbose=verbose)
    if not verbose:  # one line per watch event is noise at scale; Estuary logs its decisions
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    import estuary.handlers.operator  # noqa: F401  (registers the handlers)

    kopf.run(standalone=True, clusterwide=True)


@main.command()
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("crds"), show_default=True
)
@click.option("--check", is_flag=True, help="Fail if the files differ from the API models.")
def crds(out: Path, check: bool) -> None:
    """Regenerate crds/*.yaml from the API models."""
    from estuary.api import crdgen

    if check:
        stale = crdgen.stale(out)
        if stale:
            click.echo(f"stale CRDs: {', '.join(stale)}; run `estuary crds`", err=True)
            sys.exit(1)
        return
    for path in crdgen.write(out):
        click.echo(f"wrote {path}")


@main.command()
@click.argument("name")
@click.option("-n", "--namespace", default="default", show_default=True, help="The AIJob's namespace.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None, help="Default: $KUBECONFIG.")
@click.option("--jurisdiction", default=None, help="This cluster's jurisdiction (hk, mainland, overseas).")
def explain(name: str, namespace: str, kubeconfig: str | None, jurisdiction: str | None) -> None:
    """Say why a job waits or where it runs, per accelerator type."""
    from estuary import explain as explaining

    click.echo(explaining.from_cluster(name, namespace, kubeconfig, jurisdiction))


@main.command(context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def sim(args: tuple[str, ...]) -> None:
    """Replay a job trace on a simulated cluster with the real scheduling core."""
    from estuary.sim import cli as sim_cli

    sys.exit(sim_cli.main(list(args)))


@main.command()
@click.argument("command", type=click.Choice(["wait", "watch"]))
@click.option("--object", "lease_object", required=True, help="The lease: configmap/<name> or aijob/<name>.")
@click.option("--namespace", required=True, help="Namespace of the lease object (the pod's).")
@click.option(
    "--lease-seconds", type=float, required=True, help="Stop the workers this long after the last renewal."
)
@click.option("--grace-seconds", type=float, default=30.0, show_default=True, help="SIGTERM to SIGKILL.")
@click.option(
    "--period", type=float, default=2.0, show_default=True, help="Seconds between reads of the lease."
)
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--kubeconfig", default=None, help="Default: the pod's service account.")
@click.option("--init-name", default="pause", show_default=True, help="Name of PID 1 of the pod's namespace.")
@click.option(
    "--termination-log",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("/dev/termination-log"),
    show_default=True,
)
def fence(command: str, **options: Any) -> None:
    """Pod-side fencing: `wait` until the lease is confirmed (init container), `watch` it and stop the
    workers when it lapses (sidecar). See docs/federation.md."""
    from estuary.fence.run import run

    sys.exit(run(command, **options))


@main.command(context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def agent(args: tuple[str, ...]) -> None:
    """Node agent: accelerator health and metrics."""
    from estuary.agent import cli as agent_cli

    sys.exit(agent_cli.main(list(args)))


@main.command(context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def portal(args: tuple[str, ...]) -> None:
    """The web portal for researchers and platform teams (needs estuary[portal])."""
    from estuary.portal import cli as portal_cli

    sys.exit(portal_cli.main(list(args)))


if __name__ == "__main__":
    main()
