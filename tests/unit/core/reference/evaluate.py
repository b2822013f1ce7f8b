"""One job against one pool right now: where it would go, or which limit binds, with numbers.

Why it exists: the cycle, preemption's what-ifs and `explain` all ask the same question of a pool,
and the answer must carry a reason a person can act on ("needs 4 nodes with 8 free
huawei.com/Ascend910; pool ascend-910b has 2"). Checks run cheapest first:
  1. static (memoised per shape for the cycle): taints and node selector leave no node (SELECTOR),
     CPU/memory exceed every node (SELECTOR), the gang exceeds the pool even when empty (NEVER_FITS);
  2. the tenant's quota in the pool (QUOTA), which also caps an elastic job's size;
  3. node-level gang placement (placement.py), full size first, then for an elastic job the
     largest size >= min_workers that fits (the cycle first asks every pool for the full gang);
  4. on failure only, one pass over the pool to name the binding limit: capacity reserved for a
     starving job (PRIORITY), unhealthy accelerators (UNHEALTHY), too few free (CAPACITY), or
     enough in total but spread too thin (FRAGMENTED).
Failures of step 3 are cached per shape for the cycle: within a cycle free capacity only shrinks,
so a shape that did not fit cannot fit later in the same cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from estuary.model import JobRequest, Reason, Resources, TypeVerdict
from estuary.model.cluster import tolerated

from . import messages
from .candidates import Candidate
from .capacity import WHOLE_POOL, PoolState, slots
from .placement import Eligible, Placement, place, room
from .workspace import Workspace

Failure = tuple[Reason, str]


@dataclass(frozen=True, slots=True)
class Outcome:
    candidate: Candidate
    placement: Placement | None
    reason: Reason | None
    message: str

    @property
    def fits(self) -> bool:
        return self.placement is not None

    def verdict(self) -> TypeVerdict:
        pool = self.candidate.pool
        return TypeVerdict(
            pool.name, pool.vendor, pool.model, self.fits, self.reason, self.message, self.candidate.factor
        )


@dataclass(slots=True)
class FitCache:
    """Node-level failures of this cycle, by (pool, shape, eligibility, size)."""

    failed: dict[tuple[object, ...], Failure] = field(default_factory=dict)


def gang_bounds(job: JobRequest) -> tuple[int, int]:
    """(full gang size, smallest acceptable size)."""
    workers = max(job.workers, 1)
    smallest = workers if job.min_workers is None else min(max(job.min_workers, 1), workers)
    return workers, smallest


def _shape_key(pool: str, job: JobRequest, smallest: int) -> tuple[object, ...]:
    return (pool, job.per_worker, smallest, job.tolerations, tuple(sorted(job.node_selector.items())))


def _selector_message(pool: PoolState, job: JobRequest) -> str:
    selector = sorted(job.node_selector.items())
    matching = [
        node for _, node in sorted(pool.members.items()) if all(node.labels.get(k) == v for k, v in selector)
    ]
    if not matching:
        wanted = ",".join(f"{k}={v}" for k, v in selector)
        return f"no node in pool {pool.name} has the labels {wanted} the job's node selector asks for"
    tolerations = pool.spec.tolerations + job.tolerations
    for node in matching:
        for taint in node.taints:
            if not tolerated((taint,), tolerations):
                return (
                    f"all {messages.plural(len(matching), 'matching node')} in pool {pool.name} carry taints "
                    f"neither the pool nor the job tolerates (e.g. {taint.key}={taint.value}:{taint.effect} "
                    f"on {node.name})"
                )
    return f"no node in pool {pool.name} matches the job's node selector and tolerations"


def _static(pool: PoolState, job: JobRequest, smallest: int, eligible: Eligible) -> Failure | None:
    if not pool.members:
        return Reason.NEVER_FITS, f"pool {pool.name} has no nodes"
    names = sorted(pool.members) if eligible is None else sorted(eligible)
    if not names:
        return Reason.SELECTOR, _selector_message(pool, job)
    per_worker = job.per_worker
    accel_only = Resources(per_worker.accelerators)
    total = sum(slots(pool.allocatable[n], per_worker, smallest) for n in names)
    if total >= smallest:
        return None
    what = messages.worker(per_worker, pool.resource)
    if total == 0 and any(slots(pool.allocatable[n], accel_only, 1) for n in names):
        largest = max((pool.allocatable[n] for n in names), key=lambda r: (r.cpu_milli, r.memory))
        return Reason.SELECTOR, (
            f"each worker asks {what}; no eligible node in pool {pool.name} has that much CPU and memory "
            f"(largest: {messages.cpu(largest.cpu_milli)}, {messages.memory(largest.memory)})"
        )
    biggest = max(pool.allocatable[n].accelerators for n in names)
    return Reason.NEVER_FITS, (
        f"needs {smallest} workers with {what}; pool {pool.name} holds at most {total} even when empty "
        f"({messages.plural(len(names), 'eligible node')}, up to {biggest} {pool.resource} each)"
    )


def _classify(pool: PoolState, job: JobRequest, smallest: int, eligible: Eligible) -> Failure:
    """Name what binds, after placement failed. One pass over the pool's schedulable nodes."""
    per_worker = job.per_worker
    per_accel = per_worker.accelerators
    accel_only = Resources(per_accel)
    free = max_free = fits = fits_accel_only = fits_reserved = fits_if_healthy = nodes = unhealthy = 0
    for name, node_free in pool.free.items():
        if eligible is not None and name not in eligible:
            continue
        k = slots(node_free, per_worker, smallest)
        if name in pool.reserved:
            fits_reserved += k
            continue
        level = max(node_free.accelerators, 0)
        free += level
        max_free = max(max_free, level)
        fits += k
        nodes += k > 0
        fits_accel_only += slots(Resources(level), accel_only, smallest)
        sick = pool.members[name].unhealthy_accelerators
        unhealthy += sick
        fits_if_healthy += slots(node_free + Resources(sick), per_worker, smallest) if sick else k
    res = pool.resource
    need = f"at least {smallest}" if smallest < max(job.workers, 1) else str(smallest)
    whole_nodes = per_accel > 0 and pool.max_level // per_accel <= 1
    if pool.reserved and fits + fits_reserved >= smallest:
        return Reason.PRIORITY, (
            f"capacity in pool {pool.name} is reserved for {pool.reserved_for}, ahead in the queue "
            f"({messages.plural(len(pool.reserved), 'node')} held by the starvation guard)"
        )
    if fits_if_healthy >= smallest:
        return Reason.UNHEALTHY, (
            f"pool {pool.name} has room for {fits} of {need} workers with {per_accel} {res}; "
            f"{unhealthy} unhealthy {res} on its nodes hold the rest"
        )
    if fits_accel_only >= smallest:
        return Reason.CAPACITY, (
            f"pool {pool.name} has free {res} for {need} workers but not the CPU and memory: "
            f"each worker asks {messages.worker(per_worker, res)}"
        )
    noun = "node" if smallest == 1 else "nodes"
    per_node = f"needs {need} {noun} with {per_accel} free {res}; pool {pool.name} has {nodes}"
    if free >= smallest * per_accel:
        if max_free < per_accel:
            return Reason.FRAGMENTED, (
                f"{free} free {res} in pool {pool.name} but at most {max_free} on any node; "
                f"each worker needs {per_accel}"
            )
        if whole_nodes:
            return Reason.FRAGMENTED, per_node
        return Reason.FRAGMENTED, (
            f"{free} free {res} in pool {pool.name}, but room for only {fits} of {need} workers "
            f"with {per_accel} each"
        )
    if whole_nodes:
        return Reason.CAPACITY, per_node
    return Reason.CAPACITY, (
        f"needs {smallest * per_accel} free {res} ({need} workers x {per_accel}); pool {pool.name} has {free}"
    )


def evaluate(
    ws: Workspace, job: JobRequest, cand: Candidate, cache: FitCache | None, full_only: bool = False
) -> Outcome:
    """Does `job` fit in `cand`'s pool now? `cache` None: uncached (what-ifs, explain).
    `full_only`: an elastic job's full gang only (the cycle tries every pool so before shrinking)."""
    pool = ws.pools[cand.pool.name]
    workers, smallest = gang_bounds(job)
    if full_only:
        smallest = workers
    eligible = ws.eligible(pool.name, job)
    shape = _shape_key(pool.name, job, smallest)
    if shape not in ws.static_memo:
        ws.static_memo[shape] = _static(pool, job, smallest, eligible)
    static = ws.static_memo[shape]
    if static is not None:
        return Outcome(cand, None, *static)
    per_accel = job.per_worker.accelerators
    check = ws.quota.check(pool.name, job.tenant)
    allowed = workers if per_accel == 0 else min(workers, check.room // per_accel)
    if allowed < smallest:
        return Outcome(cand, None, Reason.QUOTA, check.message(job.tenant, pool.name, smallest * per_accel))
    key = (*shape, allowed)
    if cache is not None and key in cache.failed:
        return Outcome(cand, None, *cache.failed[key])
    placement = place(pool, job.per_worker, allowed, eligible)
    if placement is None and smallest < allowed:
        size = min(allowed - 1, room(pool, job.per_worker, allowed, eligible))
        if size >= smallest:
            placement = place(pool, job.per_worker, size, eligible)
    if placement is not None:
        size = len(placement.nodes)
        elastic = f" (elastic: {size} of {workers})" if size < workers else ""
        nodes = messages.plural(placement.node_count, "node")
        workers_on = f"{messages.plural(size, 'worker')}{elastic} on {nodes}"
        where = f"pool {pool.name}"
        if placement.domain != WHOLE_POOL:
            where = f"{placement.domain} of {where}"
        return Outcome(cand, placement, None, f"fits: {workers_on} in {where}")
    failure = _classify(pool, job, smallest, eligible)
    if cache is not None:
        cache.failed[key] = failure
    return Outcome(cand, None, *failure)
