"""Builders for scheduling-core tests: small functions with sensible defaults, Kueue-style.

`make_node("n1", gpus=8)`, `make_job("ns/a", workers=2, gpus=8)`, `make_pool("h800")`, then
`snapshot(pools, nodes, running)`. Nodes carry a `pool` label that the pool's selector matches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from estuary.core import Policy, run_cycle
from estuary.model import (
    AcceptedType,
    Assignment,
    CycleResult,
    JobRequest,
    NodeInfo,
    PoolSpec,
    Resources,
    RunningJob,
    Snapshot,
    Taint,
    TenantQuota,
    Toleration,
)

GPU = "nvidia.com/gpu"
ASCEND = "huawei.com/Ascend910"
GI = 2**30
RACK = "estuary.dev/rack"
ZONE = "topology.kubernetes.io/zone"


def make_node(
    name: str,
    gpus: int = 8,
    *,
    pool: str = "h800",
    resource: str = GPU,
    cpu: int = 96_000,
    memory: int = 1024 * GI,
    rack: str | None = None,
    zone: str | None = None,
    labels: Mapping[str, str] | None = None,
    taints: tuple[Taint, ...] = (),
    ready: bool = True,
    unschedulable: bool = False,
    unhealthy: int = 0,
) -> NodeInfo:
    all_labels = {"pool": pool, **(labels or {})}
    if rack is not None:
        all_labels[RACK] = rack
    if zone is not None:
        all_labels[ZONE] = zone
    return NodeInfo(
        name=name,
        labels=all_labels,
        taints=taints,
        capacity={resource: gpus, "cpu": cpu, "memory": memory},
        ready=ready,
        unschedulable=unschedulable,
        unhealthy_accelerators=unhealthy,
    )


def make_nodes(prefix: str, count: int, gpus: int = 8, **kwargs: Any) -> list[NodeInfo]:
    return [make_node(f"{prefix}{i}", gpus, **kwargs) for i in range(1, count + 1)]


def quota(
    nominal: int, borrowing_limit: int | None = None, lending_limit: int | None = None, weight: float = 1.0
) -> TenantQuota:
    return TenantQuota(nominal, borrowing_limit, lending_limit, weight)


def make_pool(
    name: str = "h800",
    *,
    vendor: str = "nvidia",
    model: str = "H800",
    resource: str = GPU,
    throughput: float = 1.0,
    cost: float = 0.0,
    quotas: Mapping[str, TenantQuota] | None = None,
    tolerations: tuple[Toleration, ...] = (),
) -> PoolSpec:
    return PoolSpec(
        name=name,
        vendor=vendor,
        model=model,
        resource=resource,
        node_selector={"pool": name},
        tolerations=tolerations,
        throughput=throughput,
        cost_per_hour=cost,
        quotas=dict(quotas or {}),
    )


def ascend_pool(name: str = "ascend-910b", **kwargs: Any) -> PoolSpec:
    return make_pool(name, vendor="huawei", model="Ascend910B", resource=ASCEND, **kwargs)


def make_job(
    key: str,
    *,
    workers: int = 1,
    gpus: int = 8,
    cpu: int = 0,
    memory: int = 0,
    tenant: str = "physics",
    accepts: Iterable[AcceptedType | str] = ("nvidia",),
    priority: int = 0,
    arrival: float = 0.0,
    min_workers: int | None = None,
    residency: str = "any",
    node_selector: Mapping[str, str] | None = None,
    tolerations: tuple[Toleration, ...] = (),
    preemptible: bool = True,
) -> JobRequest:
    accepted = tuple(a if isinstance(a, AcceptedType) else AcceptedType(a) for a in accepts)
    return JobRequest(
        key=key,
        tenant=tenant,
        workers=workers,
        per_worker=Resources(gpus, cpu, memory),
        accepted=accepted,
        priority=priority,
        arrival=arrival,
        min_workers=min_workers,
        node_selector=dict(node_selector or {}),
        tolerations=tolerations,
        residency=residency,
        preemptible=preemptible,
    )


def run(
    job: JobRequest, pool: str, nodes: Iterable[str], started: float = 0.0, terminating: bool = False
) -> RunningJob:
    return RunningJob(job, Assignment(pool, tuple(nodes)), started, terminating)


def snapshot(
    pools: Iterable[PoolSpec],
    nodes: Iterable[NodeInfo],
    running: Iterable[RunningJob] = (),
    foreign: Mapping[str, Mapping[str, int]] | None = None,
    jurisdiction: str | None = None,
) -> Snapshot:
    return Snapshot(
        pools={p.name: p for p in pools},
        nodes={n.name: n for n in nodes},
        running={r.job.key: r for r in running},
        foreign_usage=dict(foreign or {}),
        jurisdiction=jurisdiction,
    )


def cycle(
    snap: Snapshot, *pending: JobRequest, now: float = 0.0, policy: Policy | None = None
) -> CycleResult:
    return run_cycle(snap, list(pending), now, policy or Policy())


def admitted(result: CycleResult) -> dict[str, tuple[str, tuple[str, ...]]]:
    """job key -> (pool, nodes per rank)."""
    return {a.job_key: (a.assignment.pool, a.assignment.nodes) for a in result.admissions}


def apply(snap: Snapshot, result: CycleResult, now: float, pending: Iterable[JobRequest]) -> Snapshot:
    """The next snapshot: admissions start, victims become terminating (tests remove them)."""
    jobs = {j.key: j for j in pending}
    running = dict(snap.running)
    for a in result.admissions:
        running[a.job_key] = RunningJob(jobs[a.job_key], a.assignment, now)
    for p in result.preemptions:
        old = running[p.victim_key]
        running[p.victim_key] = RunningJob(old.job, old.assignment, old.started, terminating=True)
    return Snapshot(snap.pools, snap.nodes, running, snap.foreign_usage, snap.jurisdiction)


def finish(snap: Snapshot, *keys: str) -> Snapshot:
    running = {k: v for k, v in snap.running.items() if k not in keys}
    return Snapshot(snap.pools, snap.nodes, running, snap.foreign_usage, snap.jurisdiction)
