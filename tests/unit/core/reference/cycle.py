"""One scheduling cycle: snapshot and queue in, admissions, preemptions and reasons out.

Why it exists: this is the single entry point the operator's scheduling loop and the simulator
call. It reads like a numbered list:
  1. build the working view (free maps per pool, quota usage) from the snapshot;
  2. order the queue (queue.py): priority, arrival, key, with fair sharing of borrowed capacity;
  3. for each job: residency, candidate pools in policy order, first pool where the whole gang fits
     is admitted and assumed in the working view (later jobs see it); an elastic job that fits
     nowhere whole takes the first pool, in the same order, where at least min_workers fit;
  4. otherwise preemption may make room (the job waits, PREEMPTING, holding its future place);
  5. otherwise it waits with the binding reason; a starving job reserves nodes (reservation.py);
     under strict FIFO (no backfill) it also blocks every job behind it;
  6. number the waiting jobs by queue order.
No I/O, no wall clock (`now` is a parameter), no randomness: the same inputs give the same result.
"""

from __future__ import annotations

from collections.abc import Sequence

from estuary.model import (
    Admission,
    Assignment,
    CycleResult,
    JobRequest,
    Preemption,
    Reason,
    Snapshot,
    Waiting,
)

from . import messages, preemption, reservation, residency
from .candidates import Candidate, candidates, in_policy_order
from .evaluate import FitCache, Outcome, evaluate, gang_bounds
from .policy import Policy
from .queue import in_queue_order, processing_order
from .workspace import Workspace

# Closest to running first: the reason a waiting job shows when its pools disagree.
_RANK = {
    Reason.PRIORITY: 0,
    Reason.FRAGMENTED: 1,
    Reason.CAPACITY: 2,
    Reason.UNHEALTHY: 3,
    Reason.QUOTA: 4,
    Reason.SELECTOR: 5,
    Reason.NEVER_FITS: 6,
}
_PREEMPTION_HELPS = frozenset(
    {Reason.CAPACITY, Reason.FRAGMENTED, Reason.UNHEALTHY, Reason.QUOTA, Reason.PRIORITY}
)
_NEVER_HERE = frozenset({Reason.RESIDENCY, Reason.NO_POOL, Reason.SELECTOR, Reason.NEVER_FITS})
_PHRASE = {
    "fastest": "fastest type that fits now",
    "preference": "first preferred type that fits now",
    "any_free": "pool with most free accelerators that fits now",
    "wait_fastest": "fastest type",
}


class _Cycle:
    def __init__(self, snapshot: Snapshot, now: float, policy: Policy) -> None:
        self.snapshot = snapshot
        self.now = now
        self.policy = policy
        self.ws = Workspace(snapshot)
        self.cache = FitCache()
        self.admissions: list[Admission] = []
        self.preemptions: list[Preemption] = []
        self.waiting: dict[str, Waiting] = {}
        self.claimed: set[str] = set()  # victims chosen and terminating jobs awaited this cycle
        self.blockers: list[str] = []  # strict FIFO: jobs that block everything behind them
        self._cands: dict[str, tuple[Candidate, ...]] = {}
        self._no_plan: set[tuple[object, ...]] = set()

    # -- helpers -------------------------------------------------------------------------------
    def candidates(self, job: JobRequest) -> tuple[Candidate, ...]:
        if job.key not in self._cands:
            self._cands[job.key] = candidates(job, self.snapshot.pools)
        return self._cands[job.key]

    def allowed(self, job: JobRequest) -> list[Candidate]:
        pools = self.ws.pools
        return in_policy_order(self.candidates(job), self.policy, lambda p: pools[p].free_accelerators())

    def within_nominal(self, job: JobRequest) -> bool:
        _, smallest = gang_bounds(job)
        need = smallest * job.per_worker.accelerators
        return any(self.ws.quota.within_nominal(c.pool.name, job.tenant, need) for c in self.allowed(job))

    def wait(self, job: JobRequest, reason: Reason, message: str, outcomes: Sequence[Outcome] = ()) -> None:
        verdicts = tuple(o.verdict() for o in outcomes)
        self.waiting[job.key] = Waiting(job.key, reason, message, 0, verdicts)

    # -- one job -------------------------------------------------------------------------------
    def decide(self, job: JobRequest) -> None:
        forbidden = residency.forbids(job, self.snapshot.jurisdiction)
        if forbidden is not None:
            verdicts = residency.verdicts(self.candidates(job), forbidden)
            self.waiting[job.key] = Waiting(job.key, Reason.RESIDENCY, forbidden, 0, verdicts)
            return
        if not self.candidates(job):
            types = ", ".join(f"{a.vendor}/{a.model or 'any'}" for a in job.accepted) or "none"
            self.wait(job, Reason.NO_POOL, f"no ComputePool offers an accepted type ({types})")
            return
        if self.blockers:
            self.wait(
                job,
                Reason.PRIORITY,
                (
                    f"behind {messages.plural(len(self.blockers), 'job')} ahead in the queue that cannot "
                    f"start (first: {self.blockers[0]}); strict FIFO"
                ),
            )
            return
        allowed = self.allowed(job)
        workers, smallest = gang_bounds(job)
        if smallest < workers:  # elastic: the full gang anywhere beats a smaller one
            for cand in allowed:
                outcome = evaluate(self.ws, job, cand, self.cache, full_only=True)
                if outcome.placement is not None:
                    self.admit(job, outcome)
                    return
        outcomes: list[Outcome] = []
        for cand in allowed:
            outcome = evaluate(self.ws, job, cand, self.cache)
            if outcome.placement is not None:
                self.admit(job, outcome)
                return
            outcomes.append(outcome)
        if self.policy.preemption and self.try_preemption(job, outcomes):
            return
        best = min(outcomes, key=lambda o: _RANK.get(o.reason or Reason.CAPACITY, 9))
        reason = best.reason or Reason.CAPACITY
        message = best.message
        if self.policy.backfill and self.now - job.arrival >= self.policy.reserve_after_s:
            pool = reservation.reserve(self.ws, job, outcomes)
            if pool is not None:
                message += (
                    f"; waited {self.now - job.arrival:g}s, so {messages.plural(len(pool.reserved), 'node')} "
                    f"of pool {pool.name} are reserved for it"
                )
        if not self.policy.backfill and reason not in _NEVER_HERE:
            self.blockers.append(job.key)
        self.wait(job, reason, message, outcomes)

    def admit(self, job: JobRequest, outcome: Outcome) -> None:
        assert outcome.placement is not None
        cand = outcome.candidate
        placement = outcome.placement
        self.ws.assume(job, cand.pool.name, placement.nodes)
        why = (
            f"{_PHRASE[self.policy.type_choice]}: {cand.pool.vendor}/{cand.pool.model} in pool "
            f"{cand.pool.name} (runtime factor {cand.factor:.3g}); {outcome.message.removeprefix('fits: ')}"
        )
        self.admissions.append(Admission(job.key, Assignment(cand.pool.name, placement.nodes), why))

    def try_preemption(self, job: JobRequest, outcomes: Sequence[Outcome]) -> bool:
        helps = [o.candidate for o in outcomes if o.reason in _PREEMPTION_HELPS]
        if not helps:
            return False
        workers, smallest = gang_bounds(job)
        memo = (
            job.tenant,
            job.priority,
            job.per_worker,
            workers,
            smallest,
            job.tolerations,
            tuple(sorted(job.node_selector.items())),
            tuple(c.pool.name for c in helps),
            self.within_nominal(job),
        )
        if memo in self._no_plan:
            return False
        plan = preemption.plan(self.ws, job, helps, self.claimed)
        if plan is None:
            self._no_plan.add(memo)
            return False
        pool = plan.candidate.pool.name
        # Hold the room the job will use, so later jobs of this cycle do not take it (Kueue does
        # the same); victims and awaited jobs cannot be chosen or counted on again this cycle.
        self.ws.assume(job, pool, plan.placement.nodes, hold=True)
        self.claimed.update(r.job.key for r in plan.waiting_on)
        self.claimed.update(r.job.key for r, _ in plan.victims)
        size = messages.plural(len(plan.placement.nodes), "worker")
        if plan.victims:
            names = [r.job.key for r, _ in plan.victims]
            for running, why in plan.victims:
                self.preemptions.append(
                    Preemption(
                        running.job.key, job.key, why, self._preempt_message(job, running.job, why, pool)
                    )
                )
            message = f"preempting {messages.keys(names)} in pool {pool} to start {size}"
        else:
            names = [r.job.key for r in plan.waiting_on]
            message = (
                f"waiting for {messages.keys(names)} to finish terminating in pool {pool} to start {size}"
            )
        if not self.policy.backfill:
            self.blockers.append(job.key)
        self.wait(job, Reason.PREEMPTING, message, outcomes)
        return True

    def _preempt_message(self, job: JobRequest, victim: JobRequest, why: str, pool: str) -> str:
        if why == preemption.RECLAIM:
            quota = self.ws.quota
            return (
                f"tenant {job.tenant} reclaims its nominal quota in pool {pool} for {job.key}; "
                f"tenant {victim.tenant} borrows {quota.borrowed(pool, victim.tenant)} above its nominal "
                f"{quota.entry(pool, victim.tenant).nominal}"
            )
        return (
            f"{job.key} (priority {job.priority}) of tenant {job.tenant} needs room in pool {pool}; "
            f"this job has lower priority {victim.priority}"
        )

    # -- result --------------------------------------------------------------------------------
    def result(self, ordered: Sequence[JobRequest]) -> CycleResult:
        waiting: dict[str, Waiting] = {}
        position = 0
        for job in ordered:
            entry = self.waiting.get(job.key)
            if entry is not None:
                position += 1
                waiting[job.key] = Waiting(
                    entry.job_key, entry.reason, entry.message, position, entry.verdicts
                )
        return CycleResult(tuple(self.admissions), tuple(self.preemptions), waiting)


DEFAULT_POLICY = Policy()


def run_cycle(
    snapshot: Snapshot, pending: Sequence[JobRequest], now: float, policy: Policy = DEFAULT_POLICY
) -> CycleResult:
    """Decide, for one instant, which pending jobs start where, which running jobs are preempted,
    and why every other pending job waits (position 1-based in queue order among waiting jobs)."""
    cycle = _Cycle(snapshot, now, policy)
    ordered = in_queue_order(pending)
    nominated = snapshot.nominated
    for job in ordered:  # the one change since it was frozen: nominated preemptors go first
        if job.key in nominated:
            cycle.decide(job)
    for job in processing_order(ordered, policy.fair_sharing, cycle.within_nominal, cycle.ws.quota.share):
        if job.key not in nominated:
            cycle.decide(job)
    return cycle.result(ordered)
