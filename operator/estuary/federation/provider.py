"""An agentless partner: a namespace at a provider that will not install Estuary, reached with a
namespaced kubeconfig. `AgentlessPartner` answers the same calls as the Estuary partner client
(`partner.PartnerApi`), so the link worker, the lease handshake, following and spend need not know
the difference; underneath it creates the attempt's ConfigMap, Service and worker pods itself
(attempt.py) and reads them back (gangview.py).

The origin is the only writer there. Its credentials need, in that one namespace: pods, services
and configmaps (create, get, list, patch, delete) and resourcequotas (get, list): what Kubernetes'
built-in `edit` role grants. Reading nodes is optional (capacity is then bounded by them too).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from estuary.federation import attempt, gangview, naming
from estuary.federation.partner import (
    CONNECT_TIMEOUT_S,
    MERGE_PATCH,
    READ_TIMEOUT_S,
    REFUSED,
    PartnerError,
    build_client,
    classify,
    probe,
)
from estuary.kube import render

KINDS = ("pods", "services", "configmaps")


class ProviderKube(Protocol):
    """The namespaced calls an agentless partner makes; every failure is a PartnerError."""

    def select(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]: ...

    def create(self, kind: str, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create; an object of that name already there answers PartnerError(status=409)."""

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    def patch(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete; a missing object counts as done."""

    def quotas(self, namespace: str) -> list[dict[str, Any]]: ...

    def nodes(self) -> list[dict[str, Any]] | None:
        """The nodes, or None when these credentials may not list them."""

    def probe(self, path: str) -> tuple[float, int]:
        """GET `path`: (seconds taken, bytes received)."""

    def close(self) -> None: ...


class RealProviderKube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api, self.core = api, client.CoreV1Api(api)
        self.timeout = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, _request_timeout=self.timeout, **kw)
        except Exception as exc:
            raise classify(exc, what) from None

    def _method(self, verb: str, kind: str) -> Callable[..., Any]:
        noun = {"pods": "pod", "services": "service", "configmaps": "config_map"}[kind]
        return getattr(self.core, f"{verb}_namespaced_{noun}")  # type: ignore[no-any-return]

    def select(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        out = self._call(f"listing {kind}", self._method("list", kind), namespace, label_selector=selector)
        return [self.api.sanitize_for_serialization(i) for i in out.items]

    def create(self, kind: str, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        out = self._call(f"creating {kind}", self._method("create", kind), namespace, manifest)
        return dict(self.api.sanitize_for_serialization(out))

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            out = self._call(f"reading {kind}", self._method("read", kind), name, namespace)
        except PartnerError as err:
            if err.status == 404:
                return None
            raise
        return dict(self.api.sanitize_for_serialization(out))

    def patch(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        fn = self._method("patch", kind)
        out = self._call(f"updating {kind}", fn, name, namespace, body, _content_type=MERGE_PATCH)
        return dict(self.api.sanitize_for_serialization(out))

    def delete(self, kind: str, namespace: str, name: str) -> None:
        try:
            self._call(f"deleting {kind}", self._method("delete", kind), name, namespace)
        except PartnerError as err:
            if err.status != 404:
                raise

    def quotas(self, namespace: str) -> list[dict[str, Any]]:
        out = self._call(
            "reading the namespace's ResourceQuotas", self.core.list_namespaced_resource_quota, namespace
        )
        return [self.api.sanitize_for_serialization(i) for i in out.items]

    def nodes(self) -> list[dict[str, Any]] | None:
        try:
            out = self.core.list_node(_request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status in (401, 403):
                return None
            raise classify(exc, "listing nodes") from None
        except Exception as exc:
            raise classify(exc, "listing nodes") from None
        return [self.api.sanitize_for_serialization(i) for i in out.items]

    def probe(self, path: str) -> tuple[float, int]:
        return probe(self.api, path, self.timeout)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.api.close()


def real_provider_factory(conf: dict[str, Any]) -> ProviderKube:
    return RealProviderKube(build_client(conf))


def _workers(manifest: dict[str, Any]) -> int:
    spec = manifest["spec"]
    elastic = spec.get("elastic")
    return int(elastic["maxWorkers"] if elastic else spec.get("workers") or 1)


class AgentlessPartner:
    """The partner calls (list_pools, list_copies, create_copy, patch_copy, delete_copy) for an
    agentless provider's namespace."""

    def __init__(self, kube: ProviderKube, provider: attempt.Provider) -> None:
        self.kube, self.provider = kube, provider
        self.offers = provider.offers  # declared, or discovered by the last list_pools

    def close(self) -> None:
        self.kube.close()

    def list_pools(self) -> list[dict[str, Any]]:
        ns = self.provider.namespace
        quotas = self.kube.quotas(ns) if self.provider.discover else []
        nodes = self.kube.nodes() if self.provider.discover else None
        own = self.kube.select("pods", ns, f"{naming.MANAGED_BY}=estuary")
        self.offers = attempt.effective_offers(self.provider, quotas)
        return attempt.capacity(self.provider, quotas, nodes, own)

    def ensure_namespace(self, namespace: str) -> None:
        """The provider creates the namespace; a missing one shows as a refused listing."""

    def probe(self, path: str) -> tuple[float, int]:
        return self.kube.probe(path)

    def list_copies(self, namespace: str, origin_label: str) -> list[dict[str, Any]]:
        selector = f"{naming.ORIGIN_CLUSTER}={origin_label}"
        try:
            leases = self.kube.select("configmaps", namespace, selector)
        except PartnerError as err:
            if err.status == 404:
                err.message = (
                    f"namespace {namespace} does not exist at the provider (the provider creates it)"
                )
            raise
        pods: dict[str, list[dict[str, Any]]] = {}
        for pod in self.kube.select("pods", namespace, selector):
            pods.setdefault((pod["metadata"].get("labels") or {}).get(render.JOB_LABEL, ""), []).append(pod)
        queue = self.provider.kueue_queue
        out = [gangview.view(lease, pods.pop(lease["metadata"]["name"], []), queue) for lease in leases]
        out.extend(gangview.view(None, left, queue) for name, left in pods.items() if name)
        return out

    def create_copy(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """The attempt: its ConfigMap first (it owns the rest), then the Service and the pods."""
        name = manifest["metadata"]["name"]
        record = attempt.lease_object(manifest, namespace, _workers(manifest))
        try:
            lease = self.kube.create("configmaps", namespace, record)
        except PartnerError as err:
            if err.status != 409:
                raise
            found = self.kube.get("configmaps", namespace, name)
            if found is None:
                raise
            lease = found
        return self._complete(namespace, lease)

    def _complete(self, namespace: str, lease: dict[str, Any]) -> dict[str, Any]:
        """Create whatever of the workload is missing, then mark the workers created (from then
        on, a missing worker was removed at the provider). A refusal part-way (the namespace's
        quota, an admission policy) says the attempt may exist: it is removed, not forgotten."""
        name = lease["metadata"]["name"]
        try:
            objects = attempt.workload(lease, dataclasses.replace(self.provider, offers=self.offers))
        except ValueError as exc:  # the provider no longer offers the chosen type
            raise PartnerError(REFUSED, f"creating the workers of {name}: {exc}", 422, True) from None
        for obj in objects:
            kind = {"Service": "services", "Pod": "pods"}[obj["kind"]]
            try:
                self.kube.create(kind, namespace, obj)
            except PartnerError as err:
                if err.status != 409:
                    raise PartnerError(err.kind, err.message, err.status, maybe_applied=True) from None
        lease = self.kube.patch(
            "configmaps", namespace, name, {"metadata": {"annotations": {attempt.CREATED: "true"}}}
        )
        return gangview.view(lease, self._pods(namespace, name), self.provider.kueue_queue)

    def _pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return self.kube.select("pods", namespace, f"{render.JOB_LABEL}={name}")

    def patch_copy(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Renew the lease (the ConfigMap's annotation); suspend removes the workers, resuming
        creates them again."""
        notes = dict((body.get("metadata") or {}).get("annotations") or {})
        suspend = (body.get("spec") or {}).get("suspend")
        if suspend is not None:
            notes[attempt.SUSPEND] = "true" if suspend else "false"
            if not suspend:
                notes[attempt.CREATED] = "false"
        try:
            lease = self.kube.patch("configmaps", namespace, name, {"metadata": {"annotations": notes}})
        except PartnerError as err:
            if err.status == 404:
                err.message = f"updating the job at the provider: ConfigMap {name} not found"
            raise
        state = lease["metadata"].get("annotations") or {}
        if state.get(attempt.SUSPEND) == "true":
            self._remove_workload(namespace, name)
        elif state.get(attempt.CREATED) != "true":
            return self._complete(namespace, lease)
        return gangview.view(lease, self._pods(namespace, name), self.provider.kueue_queue)

    def _remove_workload(self, namespace: str, name: str) -> None:
        for pod in self._pods(namespace, name):
            if not pod["metadata"].get("deletionTimestamp"):
                self.kube.delete("pods", namespace, pod["metadata"]["name"])
        self.kube.delete("services", namespace, name)

    def delete_copy(self, namespace: str, name: str) -> None:
        """The whole attempt: its pods and Service, then the ConfigMap (its owner: the garbage
        collector would remove them too, but not before the listing shows the ConfigMap gone)."""
        self._remove_workload(namespace, name)
        self.kube.delete("configmaps", namespace, name)
