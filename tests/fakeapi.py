"""The one in-memory fake of the Kubernetes API for every unit test (as httpx has one MockTransport).

`FakeApiServer` is one cluster's API server. It behaves like the real one where the operator's
correctness depends on it:
  * a JSON merge patch (RFC 7386) merges maps, replaces lists whole, and deletes a key set to null;
  * kinds with a status subresource ignore `status` in a patch of the object and everything but
    `status` in a patch of the subresource;
  * every write bumps `metadata.resourceVersion`; a change of `spec` bumps `metadata.generation`;
  * create answers AlreadyExists (409) when the name is taken, patch and delete of a missing object
    answer NotFound (404), and a patch that names a stale `metadata.resourceVersion` answers
    Conflict (409), all as `kubernetes.client.exceptions.ApiException`;
  * a pod `refuse_pods` objects to is refused (422, as `Refused` through `KubeApi.create`), on a
    dry run too, which stores nothing;
  * deleting an AIJob deletes the pods it controls (owner references, as the garbage collector
    does), whatever their labels;
  * every change reaches the cluster's `ClusterCache` as a watch event.
The server is itself the operator's seams: `KubeApi` (kube/client.py, with the same "AlreadyExists
and NotFound count as done" contract as `RealKubeApi`), the usage ledger's `LedgerStore`
(ledger.py) and federation's `HomeApi` (federation/home.py); `FakePartner` is the partner side's
`PartnerApi` over another server. Tests set up objects with `put()` (like `kubectl apply`) and play
kubelet with `set_pods()`.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from estuary.federation.naming import ORIGIN_CLUSTER
from estuary.federation.partner import BAD_CREDENTIALS, UNREACHABLE, PartnerApi, PartnerError
from estuary.kube.client import Refused
from estuary.state import codec
from estuary.state.cache import JOB_LABEL, ClusterCache, owned_by

Obj = dict[str, Any]
PLURALS = {
    "AIJob": "aijobs",
    "Pod": "pods",
    "Service": "services",
    "ComputePool": "computepools",
    "Node": "nodes",
    "Namespace": "namespaces",
    "FederationLink": "federationlinks",
    "Secret": "secrets",
    "ConfigMap": "configmaps",
    "ResourceQuota": "resourcequotas",
    "UsageLedger": "usageledgers",
}
WATCHED = ("aijobs", "pods", "computepools", "nodes", "namespaces", "federationlinks")  # fed to the cache
# with a status subresource
WITH_STATUS = ("aijobs", "pods", "computepools", "nodes", "federationlinks", "usageledgers")


def merge(target: Obj, patch: Obj) -> Obj:
    """RFC 7386 JSON merge patch: maps merge, anything else (lists too) replaces, null deletes."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            out[key] = merge(out[key] if isinstance(out.get(key), dict) else {}, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _error(status: int, reason: str) -> ApiException:
    return ApiException(status=status, reason=reason)


@dataclass
class Clock:
    """Wall and monotonic time, moved by hand."""

    t: float = 1_800_000_000.0  # wall
    m: float = 1000.0  # monotonic

    def wall(self) -> float:
        return self.t

    def mono(self) -> float:
        return self.m

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self.m += seconds


@dataclass
class FakePath:
    """The network to a server: round trip and bandwidth, as GETs of /version and /openapi/v2
    would measure them."""

    rtt_s: float = 0.02
    bandwidth_bps: float = 1e9
    openapi_bytes: int = 4_000_000

    def probe(self, path: str) -> tuple[float, int]:
        size = self.openapi_bytes if path == "/openapi/v2" else 500
        return self.rtt_s + size * 8 / self.bandwidth_bps, size


@dataclass
class FakeApiServer:
    """One cluster's API server: objects by plural and key; every change feeds `cache`."""

    name: str = "test"
    clock: Clock = field(default_factory=Clock)
    cache: ClusterCache = field(default_factory=ClusterCache)
    objects: dict[str, dict[str, Obj]] = field(default_factory=dict)
    version: int = 100
    uids: int = 0
    calls: list[tuple[str, str]] = field(default_factory=list)  # the operator's writes, in order
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (object, reason, message)
    down: bool = False  # the API server is gone (every call through an adapter fails)
    graceful: bool = False  # deleted pods linger, marked with a deletionTimestamp, until `reap()`
    failures: dict[str, Exception] = field(default_factory=dict)  # KubeApi method -> raised
    # Admission: a pod manifest -> why the API server refuses it (None: accepted)
    refuse_pods: Callable[[Obj], str | None] = lambda pod: None
    refuse_code: int = 422  # 403 plays an admission policy, a LimitRange or a ResourceQuota
    path: FakePath = field(default_factory=FakePath)  # the network to it, for partners' probes

    # ---- the server ------------------------------------------------------------------------
    @staticmethod
    def key(obj: Obj) -> str:
        meta = obj["metadata"]
        return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta["name"])

    def _store(self, plural: str, obj: Obj, event: str) -> Obj:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.objects.setdefault(plural, {})[self.key(obj)] = obj
        if plural in WATCHED:
            self.cache.apply(plural, event, copy.deepcopy(obj))
        return copy.deepcopy(obj)

    def add(self, obj: Obj, plural: str | None = None) -> Obj:
        """Create an object; AlreadyExists (409) when the name is taken."""
        plural = plural or PLURALS[obj["kind"]]
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if self.key(obj) in self.objects.get(plural, {}):
            raise _error(409, "AlreadyExists")
        self.uids += 1
        meta.setdefault("uid", f"{self.name}-uid-{self.uids}")
        meta.setdefault("creationTimestamp", codec.rfc3339(self.clock.wall()))
        meta["generation"] = 1
        return self._store(plural, obj, "ADDED")

    def put(self, obj: Obj, plural: str | None = None) -> Obj:
        """Create, or replace an existing object whole (what a test sets up, like `kubectl apply`)."""
        plural = plural or PLURALS[obj["kind"]]
        held = self.objects.get(plural, {}).get(self.key(obj))
        if held is None:
            return self.add(obj, plural)
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        for kept in ("uid", "creationTimestamp", "generation"):
            meta.setdefault(kept, held["metadata"].get(kept))
        return self._store(plural, obj, "MODIFIED")

    def get(self, plural: str, key: str) -> Obj | None:
        obj = self.objects.get(plural, {}).get(key)
        return copy.deepcopy(obj) if obj is not None else None

    def items(self, plural: str) -> list[Obj]:
        return [copy.deepcopy(o) for o in self.objects.get(plural, {}).values()]

    def patch(self, plural: str, key: str, body: Obj, subresource: str | None = None) -> Obj:
        held = self.objects.get(plural, {}).get(key)
        if held is None:
            raise _error(404, "NotFound")
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != held["metadata"]["resourceVersion"]:
            raise _error(409, "Conflict")
        if plural in WITH_STATUS:
            if subresource == "status":
                body = {"status": body.get("status") or {}}
            else:
                body = {k: v for k, v in body.items() if k != "status"}
        updated = merge(held, body)
        if updated.get("spec") != held.get("spec"):
            updated["metadata"]["generation"] = int(held["metadata"].get("generation") or 0) + 1
        return self._store(plural, updated, "MODIFIED")

    def delete(self, plural: str, key: str) -> None:
        held = self.objects.get(plural, {}).get(key)
        if held is None:
            raise _error(404, "NotFound")
        if plural == "pods" and self.graceful:  # the kubelet stops the containers first
            if not held["metadata"].get("deletionTimestamp"):
                held["metadata"]["deletionTimestamp"] = codec.rfc3339(self.clock.wall())
                self._store(plural, held, "MODIFIED")
            return
        obj = self.objects[plural].pop(key)
        self.version += 1
        if plural in WATCHED:
            self.cache.apply(plural, "DELETED", obj)
        if plural == "aijobs":  # owner references: the garbage collector removes the pods
            for pod_key, pod in list(self.objects.get("pods", {}).items()):
                if owned_by(pod, obj["metadata"]["uid"]):
                    self.delete("pods", pod_key)
        uid = obj["metadata"].get("uid")
        for kind in ("pods", "services") if plural == "configmaps" else ():  # an attempt's owner
            for dep_key, dep in list(self.objects.get(kind, {}).items()):
                if any(r.get("uid") == uid for r in dep["metadata"].get("ownerReferences") or []):
                    self.objects[kind].pop(dep_key, None)
                    if kind in WATCHED:
                        self.cache.apply(kind, "DELETED", dep)

    # ---- what kubelet and kube-scheduler would do ------------------------------------------
    def reap(self) -> None:
        """Pods being deleted are gone (their containers stopped)."""
        for key, pod in list(self.objects.get("pods", {}).items()):
            if pod["metadata"].get("deletionTimestamp"):
                del self.objects["pods"][key]
                self.cache.apply("pods", "DELETED", pod)

    def set_pods(self, phase: str, job: str | None = None, **status: Any) -> None:
        """Bind the pods (of one job) to the node their affinity names and give them a phase."""
        for key, pod in list(self.objects.get("pods", {}).items()):
            if job is not None and (pod["metadata"].get("labels") or {}).get(JOB_LABEL) != job:
                continue
            if "affinity" in pod["spec"]:
                affinity = pod["spec"]["affinity"]["nodeAffinity"]
                terms = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                node = terms[0]["matchFields"][0]["values"][0]
            else:  # not pinned (an agentless provider's pods): the scheduler's pick, by rank
                node = f"node-{(pod['metadata'].get('labels') or {}).get('estuary.dev/worker-rank', '0')}"
            self.patch("pods", key, {"spec": {"nodeName": node}})
            self.patch("pods", key, {"status": {"phase": phase, **status}}, subresource="status")

    # ---- KubeApi (kube/client.py) ----------------------------------------------------------
    def _call(self, method: str, what: str) -> None:
        if self.down:
            raise ConnectionError(f"{self.name}: the API server is down")
        failure = self.failures.get(method)
        if failure is not None:
            raise failure
        self.calls.append((method, what))

    def create(self, manifest: Obj, dry_run: bool = False) -> Obj:
        self._call("dry_run" if dry_run else "create", f"{manifest['kind']}/{manifest['metadata']['name']}")
        plural = PLURALS[manifest["kind"]]
        held = self.get(plural, self.key(manifest))
        if held is not None:
            return _metadata_only(held)
        refusal = self.refuse_pods(manifest) if manifest["kind"] == "Pod" else None
        if refusal is not None:
            raise Refused(self.refuse_code, f'Pod "{manifest["metadata"]["name"]}" is invalid: {refusal}')
        return _metadata_only(manifest if dry_run else self.add(manifest))

    def ping(self) -> None:
        self._call("ping", "version")

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None = None) -> None:
        self._call("delete_pod", name)
        self._ignore_missing(lambda: self.delete("pods", f"{namespace}/{name}"))

    def patch_job_status(self, namespace: str, name: str, status: Obj) -> Obj:
        self._call("patch_job_status", f"{name}:{status.get('phase')}")
        return self.patch("aijobs", f"{namespace}/{name}", {"status": status}, "status")

    def patch_pool_status(self, name: str, status: Obj) -> Obj:
        self._call("patch_pool_status", name)
        return self.patch("computepools", name, {"status": status}, "status")

    def delete_job(self, namespace: str, name: str) -> None:
        self._call("delete_job", name)
        self._ignore_missing(lambda: self.delete("aijobs", f"{namespace}/{name}"))

    def event(self, obj: Obj, kind: str, warning: bool, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], reason, message))

    # ---- LedgerStore (ledger.py) -----------------------------------------------------------
    def list_ledgers(self) -> list[Obj]:
        self._call("list_ledgers", "")
        return self.items("usageledgers")

    def create_ledger(self, manifest: Obj) -> None:
        self._call("create_ledger", manifest["metadata"]["name"])
        try:
            self.add(manifest)
        except ApiException as err:
            if err.status != 409:
                raise

    def patch_ledger_status(self, name: str, status: Obj) -> Obj:
        self._call("patch_ledger_status", name)
        return self.patch("usageledgers", name, {"status": status}, "status")

    @staticmethod
    def _ignore_missing(action: Callable[[], None]) -> None:
        try:
            action()
        except ApiException as err:
            if err.status != 404:
                raise

    # ---- HomeApi (federation/home.py) ------------------------------------------------------
    def read_secret_key(self, namespace: str, name: str, key: str) -> bytes:
        secret = self.get("secrets", f"{namespace}/{name}")
        if secret is None:
            raise PartnerError(BAD_CREDENTIALS, f"Secret {namespace}/{name} not found")
        if key not in secret.get("data", {}):
            raise PartnerError(BAD_CREDENTIALS, f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(secret["data"][key])

    def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        secret = self.get("secrets", f"{namespace}/{name}")
        if secret is None:
            return None
        return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}

    def patch_link_status(self, namespace: str, name: str, status: Obj) -> Obj:
        return self.patch("federationlinks", f"{namespace}/{name}", {"status": status}, "status")

    def list_copies(self) -> list[Obj]:
        if self.down:
            raise ConnectionError("down")
        return [o for o in self.items("aijobs") if ORIGIN_CLUSTER in (o["metadata"].get("labels") or {})]

    def list_configmaps(self, namespace: str, label_selector: str) -> list[Obj]:
        self._call("list_configmaps", label_selector)
        return [
            o
            for o in self.items("configmaps")
            if o["metadata"]["namespace"] == namespace
            and label_selector in (o["metadata"].get("labels") or {})
        ]

    def create_configmap(self, namespace: str, manifest: Obj) -> Obj:
        self._call("create_configmap", manifest["metadata"]["name"])
        return self.add(manifest, "configmaps")

    def patch_configmap_data(self, namespace: str, name: str, data: dict[str, str]) -> Obj:
        self._call("patch_configmap", name)
        return self.patch("configmaps", f"{namespace}/{name}", {"data": data})


class FakePartner(PartnerApi):
    """`PartnerApi` over the partner's `FakeApiServer`; the kubeconfig's token must match."""

    def __init__(self, server: FakeApiServer, token: str, good_token: str = "good") -> None:
        self.server, self.token, self.good = server, token, good_token
        self.log: list[str] = []
        self.failures: dict[str, PartnerError] = {}  # call -> what the partner answers instead
        self.fail_next_renewal_after_commit = False  # the write lands, the answer is lost
        self.path = server.path  # what GETs of /version and /openapi/v2 take (the network)

    def close(self) -> None:
        pass

    def _check(self, what: str) -> None:
        self.log.append(what)
        if self.server.down:
            raise PartnerError(UNREACHABLE, f"{what}: connection refused or no route to the partner")
        if self.token != self.good:
            raise PartnerError(BAD_CREDENTIALS, f"{what}: HTTP 401 (unauthorized): Unauthorized", 401)
        if what in self.failures:
            raise self.failures[what]

    def list_pools(self) -> list[Obj]:
        self._check("list_pools")
        return self.server.items("computepools")

    def ensure_namespace(self, namespace: str) -> None:
        self._check("ensure_namespace")
        if self.server.get("namespaces", namespace) is None:
            self.server.add({"kind": "Namespace", "metadata": {"name": namespace}})

    def list_copies(self, namespace: str, origin_label: str) -> list[Obj]:
        self._check("list_copies")
        return [
            o
            for o in self.server.items("aijobs")
            if o["metadata"]["namespace"] == namespace
            and (o["metadata"].get("labels") or {}).get(ORIGIN_CLUSTER) == origin_label
        ]

    def create_copy(self, namespace: str, manifest: Obj) -> Obj:
        self._check("create_copy")
        try:
            return self.server.add(manifest, "aijobs")
        except ApiException:
            raise PartnerError("Refused", "creating the job at the partner: already exists", 409) from None

    def patch_copy(self, namespace: str, name: str, body: Obj) -> Obj:
        self._check("patch_copy")
        try:
            out = self.server.patch("aijobs", f"{namespace}/{name}", body)
        except ApiException:
            raise PartnerError("Refused", "updating the job at the partner: not found", 404) from None
        if self.fail_next_renewal_after_commit:
            self.fail_next_renewal_after_commit = False
            raise PartnerError(UNREACHABLE, "no answer within 10s", maybe_applied=True)
        return out

    def probe(self, path: str) -> tuple[float, int]:
        self._check("probe")
        return self.path.probe(path)

    def delete_copy(self, namespace: str, name: str) -> None:
        self._check("delete_copy")
        self.server._ignore_missing(lambda: self.server.delete("aijobs", f"{namespace}/{name}"))


def _selected(obj: Obj, selector: str) -> bool:
    labels = obj["metadata"].get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, eq, value = term.partition("=")
        if (eq and labels.get(key) != value) or (not eq and key not in labels):
            return False
    return True


class FakeProviderKube:
    """`provider.ProviderKube` over a provider's `FakeApiServer`, with credentials limited to one
    namespace (as a namespaced kubeconfig's RBAC would): anything else answers 403."""

    def __init__(self, server: FakeApiServer, namespace: str, nodes_readable: bool = False) -> None:
        self.server, self.namespace, self.nodes_readable = server, namespace, nodes_readable
        self.log: list[str] = []
        self.pod_quota: int | None = None  # pods the namespace's quota admits (None: no limit)

    def _check(self, what: str, namespace: str | None = None) -> None:
        self.log.append(what)
        if self.server.down:
            raise PartnerError(UNREACHABLE, f"{what}: connection refused or no route to the partner")
        if namespace is not None and namespace != self.namespace:
            raise PartnerError(BAD_CREDENTIALS, f"{what}: HTTP 403 (forbidden)", 403)

    def select(self, kind: str, namespace: str, selector: str) -> list[Obj]:
        self._check(f"list {kind}", namespace)
        return [
            o
            for o in self.server.items(kind)
            if o["metadata"].get("namespace") == namespace and _selected(o, selector)
        ]

    def create(self, kind: str, namespace: str, manifest: Obj) -> Obj:
        self._check(f"create {kind}", namespace)
        if (
            kind == "pods"
            and self.pod_quota is not None
            and len(self.select("pods", namespace, "")) >= self.pod_quota
        ):
            name = manifest["metadata"]["name"]
            message = f'pods "{name}" is forbidden: exceeded quota: gpus, requested: nvidia.com/gpu=8'
            raise PartnerError(BAD_CREDENTIALS, f"creating pods: HTTP 403 (forbidden): {message}", 403)
        try:
            return self.server.add(manifest, kind)
        except ApiException:
            raise PartnerError("Refused", f"creating {kind}: already exists", 409) from None

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        self._check(f"get {kind}", namespace)
        return self.server.get(kind, f"{namespace}/{name}")

    def patch(self, kind: str, namespace: str, name: str, body: Obj) -> Obj:
        self._check(f"patch {kind}", namespace)
        try:
            return self.server.patch(kind, f"{namespace}/{name}", body)
        except ApiException:
            raise PartnerError("Refused", f"updating {kind}: not found", 404) from None

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self._check(f"delete {kind}", namespace)
        self.server._ignore_missing(lambda: self.server.delete(kind, f"{namespace}/{name}"))

    def quotas(self, namespace: str) -> list[Obj]:
        return self.select("resourcequotas", namespace, "")

    def nodes(self) -> list[Obj] | None:
        self._check("list nodes")
        return self.server.items("nodes") if self.nodes_readable else None

    def probe(self, path: str) -> tuple[float, int]:
        self._check("probe")
        return self.server.path.probe(path)

    def close(self) -> None:
        pass


def _metadata_only(obj: Obj) -> Obj:
    """What the real client's create answers: the object as PartialObjectMetadata."""
    meta = copy.deepcopy(obj["metadata"])
    return {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": meta}
