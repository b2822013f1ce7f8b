"""ComputePool status and the operator's gauges, from the snapshot after this step's decisions.

Pool status says what `kubectl get cpool` shows: capacity, healthy, allocated and free
accelerators, the same in PFLOPS where the vendor profiles know the model's figure (pflops.py),
and per-tenant usage, from the same working view the scheduler uses (core/usage.py); a pool of an
unknown vendor says what to fix instead. A status is written only when it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from estuary import metrics, pflops
from estuary.api.aijob import Phase
from estuary.api.base import Condition
from estuary.api.computepool import ComputePoolStatus, TenantUsage
from estuary.core import PoolUsage, pool_usage
from estuary.kube.status import StatusWriter, patch
from estuary.model import JobRequest, PoolSpec, Snapshot, Waiting
from estuary.state import codec
from estuary.state.cache import ClusterCache
from estuary.state.snapshot import ParsedJob


def pool_status(
    raw: Mapping[str, Any], usage: PoolUsage | None, spec: PoolSpec | None, now: float
) -> ComputePoolStatus:
    """What a pool's status should say (`spec` None: the pool's vendor is unknown)."""
    if usage is None or spec is None:
        message = (
            f"vendor {raw['spec'].get('vendor')!r} has no vendor profile and the pool names no "
            "resourceName; add a profile or set spec.resourceName"
        )
        ready = Condition(
            type="Ready",
            status="False",
            reason="UnknownVendor",
            message=message,
            last_transition_time=codec.rfc3339(now),
        )
        return ComputePoolStatus(conditions=[ready])
    return ComputePoolStatus(
        resource_name=spec.resource,
        nodes=usage.nodes,
        capacity=usage.capacity,
        healthy=usage.healthy,
        allocated=usage.allocated,
        free=usage.free,
        **pflops.pool_status_fields(spec.vendor, spec.model, usage.capacity, usage.allocated, usage.free),
        tenants=[
            TenantUsage(tenant=tenant, used=t.used, nominal=t.nominal, borrowed=t.borrowed, lent=t.lent)
            for tenant, t in sorted(usage.tenants.items())
        ],
        observed_generation=raw["metadata"].get("generation"),
    )


class PoolStatus:
    def __init__(self, cache: ClusterCache, writer: StatusWriter, clock: Callable[[], float]) -> None:
        self.cache, self.writer, self.clock = cache, writer, clock
        self._written: dict[str, dict[str, Any]] = {}

    def write(self, snapshot: Snapshot) -> None:
        usage = pool_usage(snapshot)
        metrics.set_pool_usage(
            {
                name: metrics.PoolUsage(
                    u.capacity,
                    u.healthy,
                    u.allocated,
                    {t: tu.used for t, tu in u.tenants.items()},
                    pflops.tflops_per_accelerator(snapshot.pools[name].vendor, snapshot.pools[name].model),
                )
                for name, u in usage.items()
            }
        )
        for name, raw in self.cache.items("computepools").items():
            spec = snapshot.pools.get(name)
            status = pool_status(raw, usage.get(name), spec, self.clock())
            if self._written.get(name) == patch(status):
                continue
            self.writer.pool(name, status)
            self._written[name] = patch(status)


def export(jobs: Mapping[str, ParsedJob], pending: list[JobRequest], waiting: Mapping[str, Waiting]) -> None:
    """Jobs by phase and the queue by tenant and first accepted type, as gauges."""
    by_phase: dict[str, int] = {}
    for job in jobs.values():
        phase = job.phase or Phase.QUEUED
        by_phase[phase] = by_phase.get(phase, 0) + 1
    metrics.set_jobs_by_phase(by_phase)
    queue: dict[tuple[str, str], int] = {}
    for request in pending:
        if request.key in waiting:
            first = request.accepted[0] if request.accepted else None
            accel = f"{first.vendor}/{first.model or '*'}" if first else "none"
            queue[(request.tenant, accel)] = queue.get((request.tenant, accel), 0) + 1
    metrics.set_queue(queue)
