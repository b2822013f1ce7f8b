"""The flags every `kubectl estuary` verb shares, the ones `run` shapes a template with, and the
shell completion of job and template names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from estuary import jobtemplates
from estuary.plugin.session import connect

F = TypeVar("F", bound=Callable[..., Any])


def complete_jobs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Job names in the namespace the command line names so far (shell completion)."""
    try:
        p = ctx.params
        session = connect(p.get("kubeconfig"), p.get("context"), p.get("namespace"))
        return [
            j["metadata"]["name"] for j in session.list_jobs() if j["metadata"]["name"].startswith(incomplete)
        ]
    except Exception:  # completion must never print a traceback into the shell
        return []


def complete_templates(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [t.name for t in jobtemplates.all_templates() if t.name.startswith(incomplete)]


def kube_options(all_namespaces: bool = False, output: tuple[str, ...] = ()) -> Callable[[F], F]:
    """The flags kubectl users expect, on every verb (so they may come before or after it)."""

    def decorate(f: F) -> F:
        f = click.option(
            "--kubeconfig", envvar=None, help="Path to the kubeconfig file (default: $KUBECONFIG)."
        )(f)
        f = click.option("--context", help="The kubeconfig context to use.")(f)
        f = click.option("-n", "--namespace", help="Namespace (default: the context's, else default).")(f)
        if all_namespaces:
            f = click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace you may list.")(f)
        if output:
            f = click.option("-o", "--output", type=click.Choice(output), help="Output format.")(f)
        return f

    return decorate


def template_options(f: F) -> F:
    """What `run` may change in the template it starts from (jobtemplates.instantiate)."""
    options = (
        click.option(
            "-t",
            "--template",
            default="pytorch-ddp",
            show_default=True,
            shell_complete=complete_templates,
            help="Job template (`kubectl estuary templates` lists them).",
        ),
        click.option("--image", help="Image for every accepted type (default: the template's per type)."),
        click.option("--workers", type=click.IntRange(1, 1024), help="Worker pods; all start at once."),
        click.option(
            "-g", "--accelerators-per-worker", type=click.IntRange(0, 64), help="Accelerators per worker."
        ),
        click.option(
            "--accelerator",
            "accelerators",
            multiple=True,
            metavar="VENDOR[/MODEL]",
            help="An accepted accelerator type, in order of preference (repeat for more).",
        ),
        click.option("--dataset", metavar="PVC", help="A PersistentVolumeClaim mounted read-only at /data."),
    )
    for option in reversed(options):  # as if stacked as decorators, top first
        f = option(f)
    return f
