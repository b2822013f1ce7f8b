"""An in-memory API server per cluster, so two clusters with real Controllers and Federations can
be stepped by hand on fake clocks: no threads, no network, every interleaving chosen by the test."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from estuary.control.controller import Controller, Settings
from estuary.federation import Federation, FederationConfig
from estuary.federation.naming import ORIGIN_CLUSTER
from estuary.federation.partner import BAD_CREDENTIALS, UNREACHABLE, PartnerApi, PartnerError
from estuary.state.cache import ClusterCache

KINDS = {
    "AIJob": "aijobs",
    "Pod": "pods",
    "Service": "services",
    "ComputePool": "computepools",
    "Node": "nodes",
    "Namespace": "namespaces",
    "FederationLink": "federationlinks",
    "Secret": "secrets",
}
CACHED = ("aijobs", "pods", "computepools", "nodes", "namespaces", "federationlinks")


def merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 merge patch."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class Clock:
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
class Server:
    """One cluster's API server: objects by plural and key; every change feeds its cache."""

    name: str
    cache: ClusterCache = field(default_factory=ClusterCache)
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    version: int = 0
    uids: int = 0
    events: list[tuple[str, str, str]] = field(default_factory=list)
    down: bool = False  # the API server is gone (partner calls fail)
    clock: Clock | None = None

    def _key(self, obj: dict[str, Any]) -> str:
        meta = obj["metadata"]
        return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]

    def put(self, obj: dict[str, Any], plural: str | None = None) -> dict[str, Any]:
        plural = plural or KINDS[obj["kind"]]
        obj = copy.deepcopy(obj)
        self.version += 1
        meta = obj.setdefault("metadata", {})
        if "uid" not in meta:
            self.uids += 1
            meta["uid"] = f"{self.name}-uid-{self.uids}"
            from estuary.state import codec

            meta["creationTimestamp"] = codec.rfc3339(self.clock.wall() if self.clock else 0)
        meta["resourceVersion"] = str(self.version)
        self.objects.setdefault(plural, {})[self._key(obj)] = obj
        if plural in CACHED:
            self.cache.apply(plural, "MODIFIED", copy.deepcopy(obj))
        return copy.deepcopy(obj)

    def get(self, plural: str, key: str) -> dict[str, Any] | None:
        obj = self.objects.get(plural, {}).get(key)
        return copy.deepcopy(obj) if obj else None

    def patch(self, plural: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        obj = self.objects.get(plural, {}).get(key)
        if obj is None:
            raise KeyError(key)
        return self.put(merge(obj, body), plural)

    def delete(self, plural: str, key: str) -> bool:
        obj = self.objects.get(plural, {}).pop(key, None)
        if obj is None:
            return False
        if plural in CACHED:
            self.cache.apply(plural, "DELETED", obj)
        if plural == "aijobs":  # owner references: the garbage collector removes the pods
            ns, name = key.split("/", 1)
            for pod_key, pod in list(self.objects.get("pods", {}).items()):
                if (
                    pod_key.startswith(f"{ns}/")
                    and pod["metadata"]["labels"].get("estuary.dev/job-name") == name
                ):
                    self.delete("pods", pod_key)
        return True

    def items(self, plural: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for o in self.objects.get(plural, {}).values()]

    def set_pods(self, phase: str, job: str | None = None) -> None:
        for key, pod in list(self.objects.get("pods", {}).items()):
            if job is None or pod["metadata"]["labels"].get("estuary.dev/job-name") == job:
                self.patch(
                    "pods",
                    key,
                    {
                        "spec": {
                            "nodeName": pod["spec"]["affinity"]["nodeAffinity"][
                                "requiredDuringSchedulingIgnoredDuringExecution"
                            ]["nodeSelectorTerms"][0]["matchFields"][0]["values"][0]
                        },
                        "status": {"phase": phase},
                    },
                )


class FakeKube:
    """KubeApi over a Server."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def create(self, manifest: dict[str, Any]) -> None:
        plural = KINDS[manifest["kind"]]
        if self.server.get(plural, self.server._key(manifest)) is None:
            self.server.put(manifest, plural)

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None = None) -> None:
        self.server.delete("pods", f"{namespace}/{name}")

    def patch_job_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return self.server.patch("aijobs", f"{namespace}/{name}", {"status": status})

    def patch_pool_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return self.server.patch("computepools", name, {"status": status})

    def delete_job(self, namespace: str, name: str) -> None:
        self.server.delete("aijobs", f"{namespace}/{name}")

    def event(self, obj: dict[str, Any], kind: str, warning: bool, reason: str, message: str) -> None:
        self.server.events.append((obj["metadata"]["name"], reason, message))


class FakeHome:
    """HomeApi over a Server."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def read_secret_key(self, namespace: str, name: str, key: str) -> bytes:
        secret = self.server.get("secrets", f"{namespace}/{name}")
        if secret is None:
            raise PartnerError(BAD_CREDENTIALS, f"Secret {namespace}/{name} not found")
        if key not in secret.get("data", {}):
            raise PartnerError(BAD_CREDENTIALS, f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(secret["data"][key])

    def patch_link_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return self.server.patch("federationlinks", f"{namespace}/{name}", {"status": status})

    def list_copies(self) -> list[dict[str, Any]]:
        if self.server.down:
            raise ConnectionError("down")
        return [
            o for o in self.server.items("aijobs") if ORIGIN_CLUSTER in (o["metadata"].get("labels") or {})
        ]


class FakePartner(PartnerApi):
    """PartnerApi over the partner's Server; `token` from the kubeconfig must match."""

    def __init__(
        self, server: Server, token: str, good_token: str = "good", log: list[str] | None = None
    ) -> None:
        self.server, self.token, self.good = server, token, good_token
        self.log = log if log is not None else []
        self.namespaces_ok = set()
        self.fail_next_renewal_after_commit = False  # the write lands, the answer is lost

    def close(self) -> None:
        pass

    def _check(self, what: str) -> None:
        self.log.append(what)
        if self.server.down:
            raise PartnerError(UNREACHABLE, f"{what}: connection refused or no route to the partner")
        if self.token != self.good:
            raise PartnerError(BAD_CREDENTIALS, f"{what}: HTTP 401 (unauthorized): Unauthorized", 401)

    def list_pools(self) -> list[dict[str, Any]]:
        self._check("list_pools")
        return self.server.items("computepools")

    def ensure_namespace(self, namespace: str) -> None:
        self._check("ensure_namespace")
        if self.server.get("namespaces", namespace) is None:
            self.server.put({"kind": "Namespace", "metadata": {"name": namespace}})

    def list_copies(self, namespace: str, origin_label: str) -> list[dict[str, Any]]:
        self._check("list_copies")
        return [
            o
            for o in self.server.items("aijobs")
            if o["metadata"]["namespace"] == namespace
            and (o["metadata"].get("labels") or {}).get(ORIGIN_CLUSTER) == origin_label
        ]

    def create_copy(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        self._check("create_copy")
        key = f"{namespace}/{manifest['metadata']['name']}"
        if self.server.get("aijobs", key) is not None:
            raise PartnerError("Refused", "creating the job at the partner: already exists", 409)
        return self.server.put(manifest, "aijobs")

    def patch_copy(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check("patch_copy")
        try:
            out = self.server.patch("aijobs", f"{namespace}/{name}", body)
        except KeyError:
            raise PartnerError("Refused", "updating the job at the partner: not found", 404) from None
        if self.fail_next_renewal_after_commit:
            self.fail_next_renewal_after_commit = False
            raise PartnerError(UNREACHABLE, "no answer within 10s", maybe_applied=True)
        return out

    def delete_copy(self, namespace: str, name: str) -> None:
        self._check("delete_copy")
        self.server.delete("aijobs", f"{namespace}/{name}")


def kubeconfig(token: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "p",
            "clusters": [{"name": "p", "cluster": {"server": "https://127.0.0.1:1"}}],
            "contexts": [{"name": "p", "context": {"cluster": "p", "user": "p"}}],
            "users": [{"name": "p", "user": {"token": token}}],
        }
    )


def pool(name: str, vendor: str, model: str, resource: str, throughput: float = 1.0) -> dict[str, Any]:
    return {
        "apiVersion": "estuary.dev/v1alpha1",
        "kind": "ComputePool",
        "metadata": {"name": name},
        "spec": {
            "vendor": vendor,
            "model": model,
            "resourceName": resource,
            "relativeThroughput": throughput,
            "nodeSelector": {"estuary.dev/node-pool": name},
        },
    }


def node(name: str, pool_name: str, resource: str, count: int = 8) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"estuary.dev/node-pool": pool_name}},
        "status": {
            "allocatable": {resource: str(count), "cpu": "64", "memory": "512Gi"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


@dataclass
class Cluster:
    name: str
    server: Server
    controller: Controller
    federation: Federation
    partners: dict[str, FakePartner] = field(default_factory=dict)

    def step(self) -> None:
        self.controller.step()

    def heartbeat(self, link: str) -> None:
        self.federation.runtimes[link].heartbeat()

    def job(self, ns: str, name: str) -> dict[str, Any]:
        obj = self.server.get("aijobs", f"{ns}/{name}")
        assert obj is not None
        return obj

    def status(self, ns: str, name: str) -> dict[str, Any]:
        return dict(self.job(ns, name).get("status") or {})


def make_cluster(
    name: str,
    clock: Clock,
    jurisdiction: str,
    nodes: int = 3,
    partners: Callable[[str], Server] | None = None,
) -> Cluster:
    server = Server(name, clock=clock)
    for ns in ("estuary-system", "team-a", "estuary-burst"):
        server.put(
            {
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "labels": {"estuary.dev/tenant": "physics"} if ns == "team-a" else {},
                },
            }
        )
    server.put(pool("h800", "nvidia", "H800", "nvidia.com/gpu"))
    for i in range(nodes):
        server.put(node(f"{name}-h800-{i}", "h800", "nvidia.com/gpu"))
    made: dict[str, FakePartner] = {}

    def factory(conf: dict[str, Any]) -> PartnerApi:
        token = conf["users"][0]["user"]["token"]
        target = partners("x") if partners else server
        made["last"] = FakePartner(target, token)
        return made["last"]

    home = FakeHome(server)
    federation = Federation(
        home,
        server.cache,
        FederationConfig(cluster_name=name),
        factory,
        mono=clock.mono,
        wall=clock.wall,
        threads=False,
    )
    controller = Controller(
        server.cache,
        FakeKube(server),
        Settings(jurisdiction=jurisdiction),
        clock=clock.wall,
        federation=federation,
    )
    return Cluster(name, server, controller, federation, made)
