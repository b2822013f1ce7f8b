"""ComputePool status and the operator's gauges, from the snapshot after this step's decisions.

Pool status says what `kubectl get cpool` shows: capacity, healthy, allocated and free
accelerators, the same in PFLOPS where the vendor profiles know the model's figure (pflops.py),
and per-tenant usage, from the same working view the scheduler uses (core/usage.py),
and a `Ready` condition that says what to fix when the pool cannot be used or counts no node
(state/pools.py judges each pool alone), plus an `Overlap` condition while its selector picks
nodes another pool also selects.

Every field is written every time (conditions as a whole list), so a condition whose cause went
away goes away; a status is compared with the pool's own status as the API server last returned
it, and nothing is written when nothing changed. A warning event marks each change to Ready=False.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from estuary import metrics, pflops
from estuary.api.aijob import Phase
from estuary.api.base import Condition, drop_condition, set_condition
from estuary.api.computepool import ComputePoolStatus, TenantUsage
from estuary.core import PoolUsage, pool_usage
from estuary.core.workspace import Workspace
from estuary.kube.client import KubeApi
from estuary.kube.status import StatusWriter, changes, patch
from estuary.model import JobRequest, Snapshot, Waiting
from estuary.state import codec
from estuary.state.pools import PoolJudgement
from estuary.state.snapshot import ParsedJob

READY, OVERLAP = "Ready", "Overlap"
PFLOPS_FIELDS = ("tflops_per_accelerator", "capacity_pflops", "allocated_pflops", "free_pflops")
log = logging.getLogger("estuary.pools")


def _nodes(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def readiness(judged: PoolJudgement, usage: PoolUsage | None) -> tuple[bool, str, str]:
    """(ready, reason, message) of the pool's Ready condition."""
    if judged.problem is not None:
        return False, judged.problem.reason, judged.problem.message
    spec = judged.spec
    assert spec is not None
    selector = ",".join(f"{k}={v}" for k, v in sorted(spec.node_selector.items()))
    if not judged.selected:
        return (
            False,
            "NoNodes",
            f"no node has the labels {selector} and allocatable {spec.resource}; label the pool's "
            "nodes or fix spec.nodeSelector",
        )
    if not judged.counted:
        others = sorted(judged.shared)
        return (
            False,
            "NodesCountedElsewhere",
            f"every node it selects ({_nodes(judged.selected)}) counts in the older pool(s) "
            f"{', '.join(others)}; give this pool a selector that picks its own nodes",
        )
    if usage is None or usage.capacity == 0:
        return False, "NoReadyNodes", f"none of its {len(judged.counted)} node(s) is Ready"
    return True, "Ready", f"counts {len(judged.counted)} node(s)"


def overlap_message(judged: PoolJudgement) -> str:
    parts = []
    for other, shared in sorted(judged.shared.items()):
        here = sum(1 for n in shared if n in judged.counted)
        parts.append(
            f"{len(shared)} node(s) ({_nodes(shared)}) are also selected by pool {other} and "
            f"{here} of them count here"
        )
    return (
        "; ".join(parts) + "; a node counts in the oldest pool that selects it: make the selectors disjoint"
    )


def conditions(judged: PoolJudgement, usage: PoolUsage | None, now: float) -> list[Condition]:
    current = ComputePoolStatus.model_validate(judged.raw.get("status") or {}).conditions
    stamp, generation = codec.rfc3339(now), judged.raw["metadata"].get("generation")
    ready, reason, message = readiness(judged, usage)
    out = set_condition(current, READY, ready, reason, message, stamp, generation)
    if judged.shared:
        return set_condition(
            out, OVERLAP, True, "SelectorOverlap", overlap_message(judged), stamp, generation
        )
    return drop_condition(out, OVERLAP)


def pool_status(judged: PoolJudgement, usage: PoolUsage | None, now: float) -> ComputePoolStatus:
    """What a pool's status should say; every field set, so stale ones are replaced."""
    spec = judged.spec
    figures: dict[str, Any] = dict.fromkeys(PFLOPS_FIELDS)  # None: a stale figure is deleted
    if spec is not None and usage is not None:
        figures.update(
            pflops.pool_status_fields(spec.vendor, spec.model, usage.capacity, usage.allocated, usage.free)
        )
    return ComputePoolStatus(
        resource_name=spec.resource if spec is not None else None,
        nodes=usage.nodes if usage else 0,
        capacity=usage.capacity if usage else 0,
        healthy=usage.healthy if usage else 0,
        allocated=usage.allocated if usage else 0,
        free=usage.free if usage else 0,
        **figures,
        tenants=[
            TenantUsage(tenant=tenant, used=t.used, nominal=t.nominal, borrowed=t.borrowed, lent=t.lent)
            for tenant, t in sorted((usage.tenants if usage else {}).items())
        ],
        conditions=conditions(judged, usage, now),
        observed_generation=judged.raw["metadata"].get("generation"),
    )


def _ready_status(raw: Mapping[str, Any]) -> str | None:
    for condition in (raw.get("status") or {}).get("conditions") or []:
        if condition.get("type") == READY:
            return str(condition.get("status"))
    return None


class PoolStatus:
    """Writes each pool's status in the background (`later`, control/writes.py `latest`): a step
    never waits for the API server, and a status not yet sent is replaced by a newer one."""

    def __init__(
        self, api: KubeApi, writer: StatusWriter, later: Callable[[str, Callable[[], None]], None]
    ) -> None:
        self.api, self.writer, self.later = api, writer, later

    def write(
        self,
        snapshot: Snapshot,
        judged: Mapping[str, PoolJudgement],
        now: float,
        workspace: Workspace | None = None,
    ) -> None:
        usage = pool_usage(snapshot, workspace)
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
        for name, pool in sorted(judged.items()):
            status = pool_status(pool, usage.get(name) if pool.spec else None, now)
            if not changes(pool.raw.get("status"), patch(status)):
                continue  # as written (or as an earlier write in flight will leave it)
            self.later(f"ComputePool {name}", partial(self._write_one, name, status))

    def _write_one(self, name: str, status: ComputePoolStatus) -> None:
        """Write what differs from the pool as the cache holds it when the write starts."""
        raw = self.writer.cache.get("computepools", name)
        if raw is None:  # deleted meanwhile
            return
        try:
            if not self.writer.pool(raw, status):
                return
        except Exception as err:  # judged alone: the next step writes it again
            metrics.record_reconcile_error("computepool")
            log.warning("ComputePool %s: could not write its status (%s); retrying next step", name, err)
            return
        ready = next(c for c in status.conditions if c.type == READY)
        if ready.status == "False" and _ready_status(raw) != "False":
            log.warning("ComputePool %s: not ready: %s: %s", name, ready.reason, ready.message)
            self.api.event(raw, "ComputePool", True, ready.reason, ready.message)


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
