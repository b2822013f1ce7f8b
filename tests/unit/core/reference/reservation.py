"""The starvation guard: a job that has waited too long reserves the nodes it needs.

Why it exists: with backfill, small jobs keep slipping into capacity a large gang cannot use yet,
and the gang could wait forever. Rule: when a blocked job (capacity, fragmentation or unhealthy
accelerators bind, quota does not) has waited at least `Policy.reserve_after_s` (now - arrival),
it reserves nodes in its best pool (the first node-blocked pool in policy order): the eligible
nodes with the most free accelerators (ties by name), as many as it needs to fit once the Estuary
jobs running on them end. Later jobs in the cycle may not be placed on reserved nodes, so those
nodes drain. One reservation per pool per cycle: the first such job in queue order gets it; the
choice is recomputed every cycle and stays stable because reserved nodes only drain.
"""

from __future__ import annotations

from collections.abc import Sequence

from estuary.model import JobRequest, Reason

from .capacity import PoolState, slots
from .evaluate import Outcome
from .workspace import Workspace

NODE_BLOCKED = frozenset({Reason.CAPACITY, Reason.FRAGMENTED, Reason.UNHEALTHY})


def _pick(pool: PoolState, job: JobRequest, eligible: frozenset[str] | None) -> tuple[str, ...]:
    workers = max(job.workers, 1)
    names = [n for n in pool.free if n not in pool.reserved and (eligible is None or n in eligible)]
    names.sort(key=lambda n: (-pool.level(n), n))
    chosen: list[str] = []
    total = 0
    for name in names:
        k = slots(pool.base[name], job.per_worker, workers)
        if k > 0:
            chosen.append(name)
            total += k
            if total >= workers:
                return tuple(chosen)
    return ()


def reserve(ws: Workspace, job: JobRequest, outcomes: Sequence[Outcome]) -> PoolState | None:
    """Reserve nodes for `job` in its best node-blocked pool; the pool, or None if none was free."""
    for outcome in outcomes:
        if outcome.reason not in NODE_BLOCKED:
            continue
        pool = ws.pools[outcome.candidate.pool.name]
        if pool.reserved_for is not None:
            return None
        nodes = _pick(pool, job, ws.eligible(pool.name, job))
        if not nodes:
            return None
        pool.reserve(nodes, job.key)
        return pool
    return None
