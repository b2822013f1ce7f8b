"""A connection as kubectl makes it: kubeconfig (--kubeconfig, else $KUBECONFIG, else
~/.kube/config), context (--context, else the current one) and namespace (-n, else the context's,
else `default`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import click
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from estuary.api.base import GROUP, VERSION


@dataclass
class Session:
    api: Any  # kubernetes.client.ApiClient
    namespace: str
    context: str

    @property
    def core(self) -> Any:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    def get_job(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        ns = namespace or self.namespace
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "aijobs", name))

    def list_jobs(self, all_namespaces: bool = False) -> list[dict[str, Any]]:
        if all_namespaces:
            out = self.custom.list_cluster_custom_object(GROUP, VERSION, "aijobs")
        else:
            out = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "aijobs")
        return list(out["items"])


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Session:
    # $KUBECONFIG read now (the client reads it once at import); it may list several files.
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except (config.ConfigException, OSError) as err:
        raise click.ClickException(
            f"no usable kubeconfig ({err}); pass --kubeconfig or set KUBECONFIG"
        ) from err
    chosen = active if context is None else next((c for c in contexts if c["name"] == context), None)
    if chosen is None:
        names = ", ".join(c["name"] for c in contexts)
        raise click.ClickException(f'context "{context}" does not exist (contexts: {names})')
    api = config.new_client_from_config(config_file=kubeconfig, context=chosen["name"])
    ns = namespace or chosen.get("context", {}).get("namespace") or "default"
    return Session(api, ns, chosen["name"])


def explain_api_error(err: ApiException, what: str) -> click.ClickException:
    """kubectl's wording for the errors people meet: not found, forbidden, invalid."""
    message = str(err.reason)
    try:
        import json

        message = json.loads(err.body).get("message") or message
    except (TypeError, ValueError):
        pass
    if err.status == 404:
        return click.ClickException(f"{what} not found")
    if err.status == 403:
        return click.ClickException(f"Forbidden: {message}")
    return click.ClickException(f"{what}: {message}")
