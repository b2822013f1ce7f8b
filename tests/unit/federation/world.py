"""Two clusters, each a real operator loop (job controller + federation controller) over its own
`FakeApiServer`, stepped by hand on one fake clock: no threads, no network, every interleaving
chosen by the test."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakeapi import Clock, FakeApiServer, FakePartner, FakeProviderKube
from tests.unit.control.harness import PRECHECK_WAIT_S

from estuary.control.controller import JobController, Settings
from estuary.federation import FederationConfig, FederationController, lease
from estuary.federation.partner import PartnerApi
from estuary.federation.provider import ProviderKube
from estuary.handlers.loop import Loop


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
    server: FakeApiServer
    loop: Loop
    federation: FederationController
    partners: dict[str, FakePartner] = field(default_factory=dict)
    providers: dict[str, FakeProviderKube] = field(default_factory=dict)  # by namespace

    def step(self) -> None:
        self.loop.tick()
        self.loop.jobs.background.wait()  # the tick's background writes, answered

    def heartbeat(self, link: str) -> None:
        self.federation.runtimes[link].heartbeat()

    def job(self, ns: str, name: str) -> dict[str, Any]:
        obj = self.server.get("aijobs", f"{ns}/{name}")
        assert obj is not None
        return obj

    def status(self, ns: str, name: str) -> dict[str, Any]:
        return dict(self.job(ns, name).get("status") or {})

    def link_status(self, name: str) -> dict[str, Any]:
        link = self.server.get("federationlinks", f"estuary-system/{name}")
        assert link is not None
        return dict(link.get("status") or {})


def make_cluster(
    name: str,
    clock: Clock,
    jurisdiction: str,
    nodes: int = 3,
    partner: Callable[[], FakeApiServer] | None = None,
    provider: Callable[[dict[str, Any]], FakeProviderKube] | None = None,
) -> Cluster:
    """A cluster with namespaces (team-a is tenant physics), an h800 pool and `nodes` nodes; its
    links reach `partner()` (default: itself)."""
    server = FakeApiServer(name, clock)
    for ns in ("estuary-system", "team-a", "estuary-burst"):
        labels = {"estuary.dev/tenant": "physics"} if ns == "team-a" else {}
        server.put({"kind": "Namespace", "metadata": {"name": ns, "labels": labels}})
    server.put(pool("h800", "nvidia", "H800", "nvidia.com/gpu"))
    for i in range(nodes):
        server.put(node(f"{name}-h800-{i}", "h800", "nvidia.com/gpu"))
    made: dict[str, FakePartner] = {}
    providers: dict[str, FakeProviderKube] = {}

    def factory(conf: dict[str, Any]) -> PartnerApi:
        token = conf["users"][0]["user"]["token"]
        made["last"] = FakePartner(partner() if partner else server, token)
        return made["last"]

    def provider_factory(conf: dict[str, Any]) -> ProviderKube:
        assert provider is not None, "this cluster has no agentless provider"
        kube = provider(conf)
        providers[kube.namespace] = kube
        return kube

    jobs = JobController(
        server.cache,
        server,
        Settings(jurisdiction=jurisdiction, precheck_wait_s=PRECHECK_WAIT_S),
        clock=clock.wall,
    )
    federation = FederationController(
        server,
        server.cache,
        jobs.writer,
        FederationConfig(cluster_name=name, fence_image="estuary:test"),
        factory,
        mono=clock.mono,
        wall=clock.wall,
        threads=False,
        provider_factory=provider_factory,
    )
    loop = Loop(server.cache, jobs, federation, clock.wall)
    return Cluster(name, server, loop, federation, made, providers)


NS = "team-a"
LEASE = 30
MARGIN = lease.margin(LEASE, 0)
SIGNING_KEY = b"hk-gz-shared-signing-key-0123456789"
World = tuple[Clock, Cluster, Cluster]  # the clock, the home cluster (hk), the partner (gz)


def link_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kubeconfigSecretRef": {"name": "gz-kubeconfig"},
        "signingKeySecretRef": {"name": "gz-kubeconfig"},
        "jurisdiction": "mainland",
        "allowedTenants": ["physics"],
        "allowedResidency": ["any", "mainland"],
        "budgets": [{"tenant": "physics", "budget": 1000}],
        "costs": [{"vendor": "nvidia", "costPerAcceleratorHour": 2.0}],
        "burst": {"afterSeconds": 600, "whenNeverFits": True},
        "leaseSeconds": LEASE,
        "heartbeatSeconds": 5,
    }
    spec.update(overrides)
    return spec


def aijob(name: str, workers: int = 4, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "estuary.dev/v1alpha1",
        "kind": "AIJob",
        "metadata": {"name": name, "namespace": NS, "annotations": {"estuary.dev/sim-duration-ms": "5000"}},
        "spec": {
            "workers": workers,
            "acceleratorsPerWorker": 8,
            "burst": {"enabled": True},
            "preemption": {"gracePeriodSeconds": 0},
            "accelerators": [{"vendor": "nvidia", "model": "H800", "image": "img"}],
            "resources": {"cpu": "2", "memory": "8Gi"},
            **spec,
        },
    }


def make_world() -> World:
    clock = Clock()
    partner = make_cluster("gz", clock, "mainland", nodes=4)
    home = make_cluster("hk", clock, "hk", nodes=3, partner=lambda: partner.server)
    home.server.put(
        {
            "kind": "Secret",
            "metadata": {"name": "gz-kubeconfig", "namespace": "estuary-system"},
            "data": {
                "kubeconfig": base64.b64encode(kubeconfig("good").encode()).decode(),
                "signing-key": base64.b64encode(SIGNING_KEY).decode(),
            },
        }
    )
    partner.server.put(
        {
            "kind": "Secret",
            "metadata": {"name": "estuary-origin-keys", "namespace": "estuary-system"},
            "data": {"hk": base64.b64encode(SIGNING_KEY).decode()},
        }
    )
    home.server.put(
        {
            "apiVersion": "estuary.dev/v1alpha1",
            "kind": "FederationLink",
            "metadata": {"name": "gz", "namespace": "estuary-system"},
            "spec": link_spec(),
        }
    )
    partner.step()  # pool status: capacity
    return clock, home, partner


def cycle(
    clock: Clock, home: Cluster, partner: Cluster, seconds: float = 2.0, heartbeat: bool = True
) -> None:
    """Both controllers step, the partner observes renewals, the link worker beats."""
    home.step()
    if heartbeat:
        home.heartbeat("gz")
    if not partner.server.down:  # a partner without its API server does nothing
        partner.federation.observer.poll()
        partner.step()
    home.step()
    clock.advance(seconds)


def burst_and_run(clock: Clock, home: Cluster, partner: Cluster, name: str = "big") -> dict[str, Any]:
    home.server.put(aijob(name))
    for _ in range(3):
        cycle(clock, home, partner)
    copies = partner.server.items("aijobs")
    assert len(copies) == 1, copies
    partner.server.set_pods("Running")
    for _ in range(2):
        cycle(clock, home, partner)
    status = home.status(NS, name)
    assert status["phase"] == "Running", status
    return copies[0]
