"""Two clusters, each a real operator loop (job controller + federation controller) over its own
`FakeApiServer`, stepped by hand on one fake clock: no threads, no network, every interleaving
chosen by the test."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakeapi import Clock, FakeApiServer, FakePartner

from estuary.control.controller import JobController, Settings
from estuary.federation import FederationConfig, FederationController
from estuary.federation.partner import PartnerApi
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

    def step(self) -> None:
        self.loop.tick()

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

    def factory(conf: dict[str, Any]) -> PartnerApi:
        token = conf["users"][0]["user"]["token"]
        made["last"] = FakePartner(partner() if partner else server, token)
        return made["last"]

    jobs = JobController(server.cache, server, Settings(jurisdiction=jurisdiction), clock=clock.wall)
    federation = FederationController(
        server,
        server.cache,
        jobs.writer,
        FederationConfig(cluster_name=name),
        factory,
        mono=clock.mono,
        wall=clock.wall,
        threads=False,
    )
    return Cluster(name, server, Loop(server.cache, jobs, federation, clock.wall), federation, made)
