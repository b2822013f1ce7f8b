"""The `kubectl-estuary` command (kubectl runs it as `kubectl estuary`): one click command per verb.

kubectl's conventions: the current context and namespace, `--kubeconfig`, `--context`,
`-n/--namespace`, `-A/--all-namespaces`, `-o json|yaml|wide`, `--version`, and shell completion
(`kubectl estuary completion bash`; kubectl itself completes through `kubectl_complete-estuary`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import click
import yaml
from kubernetes.client.exceptions import ApiException

from estuary import jobtemplates, usage
from estuary.api.base import GROUP, VERSION
from estuary.plugin import logs as logs_
from estuary.plugin import usagecmd, views
from estuary.plugin.options import complete_jobs, kube_options, template_options
from estuary.plugin.session import Session, connect, explain_api_error

MERGE_PATCH = "application/merge-patch+json"


def _session(kubeconfig: str | None, context: str | None, namespace: str | None) -> Session:
    return connect(kubeconfig, context, namespace)


def _dump(obj: Any, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(obj, indent=2))
    else:
        click.echo(yaml.safe_dump(obj, sort_keys=False).rstrip())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version("estuary"), "--version", prog_name="kubectl-estuary")
def main() -> None:
    """Run and understand AIJobs with your own namespace rights.

    \b
    kubectl estuary run my-job --template pytorch-ddp -- train.py --epochs 10
    kubectl estuary list
    kubectl estuary explain my-job
    kubectl estuary logs my-job -f
    kubectl estuary usage --period 2026-11 -o csv
    """


@main.command()
def templates() -> None:
    """List the job templates `run --template` accepts."""
    rows = [(t.name, t.framework, t.title) for t in jobtemplates.all_templates()]
    click.echo(views.table(["NAME", "FRAMEWORK", "TITLE"], rows))


@main.command(context_settings={"ignore_unknown_options": False})
@click.argument("name")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@template_options
@click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE", help="Add an annotation.")
@click.option("--dry-run", is_flag=True, help="Print the AIJob instead of creating it.")
@kube_options(output=("yaml", "json", "name"))
def run(
    name: str,
    command: tuple[str, ...],
    template: str,
    image: str | None,
    workers: int | None,
    accelerators_per_worker: int | None,
    accelerators: tuple[str, ...],
    dataset: str | None,
    annotations: tuple[str, ...],
    dry_run: bool,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    output: str | None,
) -> None:
    """Submit job NAME from a template; arguments after `--` are the script and its arguments
    (or, for the debug template, the command)."""
    session = _session(kubeconfig, context, namespace)
    try:
        manifest = jobtemplates.instantiate(
            template,
            job_name=name,
            namespace=session.namespace,
            image=image,
            workers=workers,
            accelerators_per_worker=accelerators_per_worker,
            accelerator_types=list(accelerators) or None,
            dataset_pvc=dataset,
            command=list(command) or None,
        )
    except jobtemplates.TemplateError as err:
        raise click.UsageError(str(err)) from err
    for pair in annotations:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.UsageError(f"--annotation {pair!r} is not KEY=VALUE")
        manifest["metadata"].setdefault("annotations", {})[key] = value
    if dry_run:
        _dump(manifest, "json" if output == "json" else "yaml")
        return
    try:
        session.custom.create_namespaced_custom_object(GROUP, VERSION, session.namespace, "aijobs", manifest)
    except ApiException as err:
        raise explain_api_error(err, f'aijob "{name}"') from err
    click.echo(f"aijob.estuary.dev/{name}" + ("" if output == "name" else " created"))


@main.command(name="list")
@kube_options(all_namespaces=True, output=("wide", "json", "yaml"))
def list_(
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    all_namespaces: bool,
    output: str | None,
) -> None:
    """List AIJobs: phase, accelerator, queue position and why they wait."""
    session = _session(kubeconfig, context, namespace)
    try:
        jobs = session.list_jobs(all_namespaces)
    except ApiException as err:
        raise explain_api_error(err, "aijobs") from err
    if output in ("json", "yaml"):
        _dump({"apiVersion": "v1", "kind": "List", "items": jobs}, output)
    elif not jobs:
        click.echo(
            "No AIJobs found" + ("" if all_namespaces else f" in {session.namespace} namespace") + ".",
            err=True,
        )
    else:
        click.echo(views.job_rows(jobs, time.time(), wide=output == "wide", namespaces=all_namespaces))


@main.command()
@click.argument("name", shell_complete=complete_jobs)
@kube_options(output=("json", "yaml"))
def explain(
    name: str, kubeconfig: str | None, context: str | None, namespace: str | None, output: str | None
) -> None:
    """Where job NAME runs or why it waits, per accepted accelerator type, from its status."""
    session = _session(kubeconfig, context, namespace)
    try:
        job = session.get_job(name)
    except ApiException as err:
        raise explain_api_error(err, f'aijob "{name}" in namespace "{session.namespace}"') from err
    if output:
        _dump(job.get("status") or {}, output)
        return
    events: list[dict[str, Any]] = []
    try:
        found = session.core.list_namespaced_event(
            session.namespace, field_selector=f"involvedObject.name={name}"
        )
        events = [session.api.sanitize_for_serialization(e) for e in found.items]
    except ApiException:
        pass  # events are a bonus; a user who may not list them still gets the status
    click.echo(views.explain(job, time.time(), events))


@main.command()
@click.argument("name", shell_complete=complete_jobs)
@click.option("-f", "--follow", is_flag=True, help="Stream the logs until the workers end.")
@click.option("--tail", type=int, help="Lines of recent log per worker.")
@click.option("--since", "since_seconds", type=int, metavar="SECONDS", help="Only the last SECONDS.")
@kube_options()
def logs(
    name: str,
    follow: bool,
    tail: int | None,
    since_seconds: int | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """The logs of every worker of job NAME, each line prefixed by its rank."""
    session = _session(kubeconfig, context, namespace)
    try:
        pods = logs_.workers(session.core, session.namespace, name)
        if not pods:
            job = session.get_job(name)
            status = job.get("status") or {}
            raise click.ClickException(
                f"job {name} has no worker pods (phase {status.get('phase') or 'New'}"
                + (f": {status['reason']}: {status.get('message', '')}" if status.get("reason") else "")
                + ")"
            )
        show = logs_.follow_logs if follow else logs_.print_logs
        show(session.core, session.namespace, pods, click.echo, tail, since_seconds)
    except ApiException as err:
        raise explain_api_error(err, f'logs of aijob "{name}"') from err


def _each_job(
    names: tuple[str, ...],
    options: tuple[str | None, str | None, str | None],
    act: Callable[[Session, str], None],
    done: str,
) -> None:
    """`act` on every named job in the session's namespace, stopping at the first refusal."""
    session = _session(*options)
    for name in names:
        try:
            act(session, name)
        except ApiException as err:
            raise explain_api_error(err, f'aijob "{name}"') from err
        click.echo(done.format(name=name))


def _set_suspend(value: bool) -> Callable[[Session, str], None]:
    def act(session: Session, name: str) -> None:
        session.custom.patch_namespaced_custom_object(
            GROUP, VERSION, session.namespace, "aijobs", name, {"spec": {"suspend": value}},
            _content_type=MERGE_PATCH,
        )  # fmt: skip

    return act


def _delete(session: Session, name: str) -> None:
    session.custom.delete_namespaced_custom_object(GROUP, VERSION, session.namespace, "aijobs", name)


JOB_NAMES = click.argument("names", nargs=-1, required=True, shell_complete=complete_jobs)
Options = str | None


@main.command()
@JOB_NAMES
@kube_options()
def suspend(names: tuple[str, ...], kubeconfig: Options, context: Options, namespace: Options) -> None:
    """Suspend jobs: their workers stop and they hold nothing until resumed."""
    _each_job(
        names, (kubeconfig, context, namespace), _set_suspend(True), "aijob.estuary.dev/{name} suspended"
    )


@main.command()
@JOB_NAMES
@kube_options()
def resume(names: tuple[str, ...], kubeconfig: Options, context: Options, namespace: Options) -> None:
    """Resume suspended jobs: back in the queue."""
    _each_job(
        names, (kubeconfig, context, namespace), _set_suspend(False), "aijob.estuary.dev/{name} resumed"
    )


@main.command()
@JOB_NAMES
@kube_options()
def delete(names: tuple[str, ...], kubeconfig: Options, context: Options, namespace: Options) -> None:
    """Delete jobs (their workers and Service go with them); their usage stays in the ledger."""
    _each_job(names, (kubeconfig, context, namespace), _delete, 'aijob.estuary.dev "{name}" deleted')


@main.command(name="usage")
@click.option("--period", "month", metavar="YYYY-MM", help="A calendar month (UTC).")
@click.option("--since", help="Start (YYYY-MM-DD or RFC 3339; default: the start of this month).")
@click.option("--until", help="End, exclusive (default: now).")
@click.option("--tenant", help="Only this tenant.")
@click.option("--by-tenant", is_flag=True, help="One row per tenant, not per accelerator type.")
@click.option(
    "--ledgers/--no-ledgers",
    default=True,
    show_default=True,
    help="Also read the UsageLedgers (deleted jobs' runs) when you may.",
)
@kube_options(all_namespaces=True, output=("table", "csv", "json"))
def usage_(
    month: str | None,
    since: str | None,
    until: str | None,
    tenant: str | None,
    by_tenant: bool,
    ledgers: bool,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    all_namespaces: bool,
    output: str | None,
) -> None:
    """Accelerator-hours and PFLOPS-hours per tenant over a period (chargeback)."""
    now = time.time()
    try:
        start, end = usagecmd.period(month, since, until, now)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    session = _session(kubeconfig, context, namespace)
    collected = usagecmd.collect(session, all_namespaces, ledgers)
    runs = [r for r in collected.runs if tenant is None or r.tenant == tenant]
    rows = usage.summarize(runs, start, end, now, by_type=not by_tenant)
    for note in collected.notes:
        click.echo(f"note: {note}", err=True)
    if output == "csv":
        click.echo(usage.to_csv(rows, start, end), nl=False)
    elif output == "json":
        _dump(
            {
                "start": usage.format_time(start),
                "end": usage.format_time(end),
                "rows": [_row(r) for r in rows],
            },
            "json",
        )
    else:
        click.echo(f"{usage.format_time(start)} .. {usage.format_time(end)}")
        click.echo(usage.to_table(rows) if rows else "no accelerator use in this period")


def _row(row: usage.UsageRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__slots__}


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: `source <(kubectl estuary completion bash)`."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(main, {}, "kubectl-estuary", "_KUBECTL_ESTUARY_COMPLETE").source())


def entry() -> None:
    sys.exit(main(prog_name="kubectl estuary"))


if __name__ == "__main__":
    entry()
