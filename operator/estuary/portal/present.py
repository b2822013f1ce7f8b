"""What the pages show, computed from API objects: pure functions, no I/O, no clock.

Objects are parsed with the CRD models (`AIJob.model_validate`, ...) so the portal reads them the way
the operator does; an object that does not parse (someone's invalid spec, an older version) becomes a
row marked invalid with the parser's complaint, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from estuary.api.aijob import AIJob
from estuary.api.computepool import ComputePool
from estuary.api.federationlink import FederationLink
from estuary.model.decisions import Reason
from estuary.vendors.loader import tflops_per_accelerator

# Why a job waits, in the words a researcher would use; the status message adds the numbers.
HEADLINES: dict[str, str] = {
    Reason.QUOTA.value: "Waiting: your tenant's quota in the pool is in use",
    Reason.CAPACITY.value: "Waiting for accelerators to become free",
    Reason.FRAGMENTED.value: "Waiting: enough accelerators in total, but not on few enough nodes",
    Reason.SELECTOR.value: "Waiting: no node passes the job's node selector, taints or CPU and memory needs",
    Reason.NO_POOL.value: "Cannot run here: no pool offers an accelerator type the job accepts",
    Reason.NEVER_FITS.value: "Cannot run here: the job is larger than any pool, even an empty one",
    Reason.UNHEALTHY.value: "Waiting: the free accelerators are reported unhealthy",
    Reason.RESIDENCY.value: "Cannot run here: the job's data may not be processed in this jurisdiction",
    Reason.PRIORITY.value: "Waiting behind a job ahead of it in the queue",
    Reason.PREEMPTING.value: "Starting soon: lower-priority or borrowing jobs are being stopped to make room",
    "InvalidSpec": "Cannot run as written: fix the spec and create the job again",
    "UnknownVendor": "Cannot run: an accepted vendor is unknown to this cluster",
    "WorkerFailed": "Failed: a worker failed more often than the restart policy allows",
    "Preempted": "Stopped to make room for another job; queued again",
    "Yielded": "Took turns: stopped for a job that has had less time; resumes from its checkpoint",
    "Migrating": "Moving to a faster accelerator type; resumes there from its checkpoint",
}
PHASE_WORDS: dict[str, str] = {
    "Queued": "Queued",
    "Admitted": "Starting: accelerators reserved, workers being created",
    "Running": "Running",
    "Succeeded": "Finished successfully",
    "Failed": "Failed",
    "Suspended": "Suspended: holds no accelerators",
}


@dataclass(frozen=True)
class JobRow:
    namespace: str
    name: str
    phase: str  # "New" until the operator first writes status
    headline: str  # plain words
    message: str  # the operator's own sentence, with numbers
    queue_position: int | None = None
    accelerator: str = ""
    workers: int | None = None
    accelerators_per_worker: int | None = None
    where: str = ""  # pool and cluster, once placed
    created: str = ""
    problems: tuple[str, ...] = ()  # why the object does not parse; empty when valid

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def problems_of(err: ValidationError) -> tuple[str, ...]:
    return tuple(f"{'.'.join(map(str, e['loc'])) or 'object'}: {e['msg']}" for e in err.errors())


def headline(phase: str, reason: str | None) -> str:
    if reason and reason in HEADLINES and phase not in ("Running", "Succeeded", "Admitted"):
        return HEADLINES[reason]
    if phase == "New":
        return "Submitted: the operator has not looked at it yet"
    return PHASE_WORDS.get(phase, phase)


def job_row(raw: dict[str, Any]) -> JobRow:
    """One AIJob as a list row; an invalid object gives a row with `problems` set."""
    meta = raw.get("metadata") or {}
    found = raw.get("status")
    status: dict[str, Any] = found if isinstance(found, dict) else {}
    phase, reason = str(status.get("phase") or "New"), status.get("reason")
    base: dict[str, Any] = {
        "namespace": str(meta.get("namespace", "")),
        "name": str(meta.get("name", "")),
        "phase": phase,
        "headline": headline(phase, reason),
        "message": str(status.get("message") or ""),
        "created": str(meta.get("creationTimestamp") or ""),
    }
    try:
        job = AIJob.model_validate(raw)
    except ValidationError as err:
        return JobRow(**base, problems=problems_of(err))
    st, placement = job.status, job.status.placement if job.status else None
    return JobRow(
        **base,
        queue_position=st.queue_position if st and phase == "Queued" else None,
        accelerator=(st.accelerator if st else None) or "",
        workers=job.spec.workers,
        accelerators_per_worker=job.spec.accelerators_per_worker,
        where=f"pool {placement.pool}, cluster {placement.cluster}" if placement else "",
    )


def queue_order(rows: list[JobRow]) -> list[JobRow]:
    """Queued jobs by queue position (jobs without one last, by age)."""
    queued = [r for r in rows if r.phase == "Queued"]
    return sorted(queued, key=lambda r: (r.queue_position is None, r.queue_position or 0, r.created))


@dataclass(frozen=True)
class PoolRow:
    name: str
    accelerator: str  # vendor/model
    nodes: int = 0
    capacity: int = 0
    healthy: int = 0
    allocated: int = 0
    free: int = 0
    cost_per_accelerator_hour: float = 0.0
    tflops_per_accelerator: float | None = None  # None: the vendor profiles have no figure
    tenants: tuple[dict[str, Any], ...] = ()
    problems: tuple[str, ...] = ()

    def pflops(self, accelerators: int) -> float | None:
        """Dense FP16/BF16 PFLOPS of that many accelerators of this pool's model."""
        if self.tflops_per_accelerator is None:
            return None
        return accelerators * self.tflops_per_accelerator / 1000.0


def pool_row(raw: dict[str, Any]) -> PoolRow:
    name = str((raw.get("metadata") or {}).get("name", ""))
    try:
        pool = ComputePool.model_validate(raw)
    except ValidationError as err:
        return PoolRow(name=name, accelerator="", problems=problems_of(err))
    st = pool.status
    return PoolRow(
        name=name,
        accelerator=f"{pool.spec.vendor}/{pool.spec.model}",
        nodes=st.nodes if st else 0,
        capacity=st.capacity if st else 0,
        healthy=st.healthy if st else 0,
        allocated=st.allocated if st else 0,
        free=st.free if st else 0,
        cost_per_accelerator_hour=pool.spec.cost_per_accelerator_hour,
        tflops_per_accelerator=(st.tflops_per_accelerator if st else None)
        or tflops_per_accelerator(pool.spec.vendor, pool.spec.model),
        tenants=tuple(t.model_dump() for t in st.tenants) if st else (),
    )


@dataclass
class TenantQuota:
    """One tenant's quota and use, summed over the pools (and per pool)."""

    tenant: str
    used: int = 0
    nominal: int = 0
    borrowed: int = 0
    lent: int = 0
    pools: list[dict[str, Any]] = field(default_factory=list)


def tenant_quotas(pools: list[PoolRow]) -> list[TenantQuota]:
    by_tenant: dict[str, TenantQuota] = {}
    for pool in pools:
        for t in pool.tenants:
            quota = by_tenant.setdefault(t["tenant"], TenantQuota(tenant=t["tenant"]))
            quota.used += t["used"]
            quota.nominal += t["nominal"]
            quota.borrowed += t["borrowed"]
            quota.lent += t["lent"]
            quota.pools.append({**t, "pool": pool.name, "accelerator": pool.accelerator})
    return sorted(by_tenant.values(), key=lambda q: q.tenant)


@dataclass(frozen=True)
class LinkRow:
    name: str
    jurisdiction: str = ""
    reachable: bool = False
    last_heartbeat: str = ""
    capacity: tuple[dict[str, Any], ...] = ()
    jobs: int = 0
    spend: tuple[dict[str, Any], ...] = ()
    budgets: dict[str, float] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def link_row(raw: dict[str, Any]) -> LinkRow:
    name = str((raw.get("metadata") or {}).get("name", ""))
    try:
        link = FederationLink.model_validate(raw)
    except ValidationError as err:
        return LinkRow(name=name, problems=problems_of(err))
    st = link.status
    return LinkRow(
        name=name,
        jurisdiction=link.spec.jurisdiction,
        reachable=bool(st and st.reachable),
        last_heartbeat=(st.last_heartbeat if st else None) or "",
        capacity=tuple(c.model_dump() for c in st.capacity) if st else (),
        jobs=len(st.jobs) if st else 0,
        spend=tuple(s.model_dump() for s in st.spend) if st else (),
        budgets={b.tenant: b.budget for b in link.spec.budgets},
    )
