"""One scheduling cycle: snapshot and queue in, admissions, preemptions and reasons out.

Why it exists: this is the single entry point the operator's scheduling loop and the simulator
call. It reads like a numbered list:
  1. bring the working view up to date with the snapshot (free maps per pool, quota usage): only
     the running jobs that started, ended or changed since the caller's last cycle are applied
     (state.py, workspace.py);
  2. order the queue (queue.py): priority, arrival, key, with fair sharing of borrowed capacity;
     find each job's class of identical jobs (classes.py);
  3. for each job: residency; strict FIFO behind a blocked job; the verdict its class got earlier
     in this cycle, if nothing that verdict read has changed since (see below); otherwise decide:
     a. candidate pools in policy order, first pool where the whole gang fits is admitted and
        assumed in the working view (later jobs see it); an elastic job that fits nowhere whole
        takes the first pool, in the same order, where at least min_workers fit;
     b. otherwise preemption may make room (the job waits, PREEMPTING, holding its future place);
     c. otherwise it waits with the binding reason; a starving job reserves nodes (reservation.py);
        under strict FIFO (no backfill) it also blocks every job behind it;
  4. number the waiting jobs by queue order;
  5. undo this cycle's assumptions and reservations, so the view mirrors the snapshot again.
No I/O, no wall clock (`now` is a parameter), no randomness: the same inputs give the same result,
with or without a carried `CycleState`.

When a class's verdict still holds. A waiting job's verdict reads: static checks of each pool
(fixed for the view's life), node-level failures (cached per pool and shape for the whole cycle:
free capacity only shrinks within a cycle, so a shape that did not fit does not fit later), the
preemption memo (also per cycle), the quota books of its pools, the order of its pools under
"any_free" (follows free capacity), and the job's age (whether the starvation guard is tried). So
a verdict is reused while the quota version of each of the class's pools with quotas and the pool
ranking's version are unchanged (both only grow, so their sum is the stamp), and, for a job old
enough to reserve, the verdict already tried to. Anything else runs step 3a-c again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from estuary.core import messages, preemption, reservation, residency
from estuary.core.candidates import Candidate, in_policy_order
from estuary.core.classes import JobClass
from estuary.core.evaluate import FitCache, Outcome, evaluate
from estuary.core.policy import Policy
from estuary.core.queue import in_queue_order, processing_order
from estuary.core.state import CycleState
from estuary.core.workspace import Workspace
from estuary.model import (
    Admission,
    Assignment,
    CycleResult,
    JobRequest,
    Preemption,
    Reason,
    Snapshot,
    TypeVerdict,
    Waiting,
)

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

Entry = tuple[Reason, str, tuple[TypeVerdict, ...]]  # a Waiting without key and position


@dataclass(frozen=True, slots=True)
class _Verdict:
    """A class's latest verdict in this cycle, and what it takes to still hold."""

    entry: Entry
    stamp: int
    tried_reserving: bool


def _closest(outcome: Outcome) -> int:
    return _RANK.get(outcome.reason or Reason.CAPACITY, 9)


class _Cycle:
    def __init__(
        self, ws: Workspace, classes: Mapping[str, JobClass], snapshot: Snapshot, now: float, policy: Policy
    ) -> None:
        self.ws = ws
        self.classes = classes
        self.jurisdiction = snapshot.jurisdiction
        self.now = now
        self.policy = policy
        self.cache = FitCache()
        self.admissions: list[Admission] = []
        self.preemptions: list[Preemption] = []
        self.waiting: dict[str, Entry] = {}
        self.claimed: set[str] = set()  # victims chosen and terminating jobs awaited this cycle
        self.blockers: list[str] = []  # strict FIFO: jobs that block everything behind them
        self._no_plan: set[tuple[object, ...]] = set()
        self._verdicts: dict[JobClass, _Verdict] = {}
        self._never_here: dict[JobClass, Entry | None] = {}
        self._within: dict[JobClass, tuple[int, bool]] = {}
        self._shares: dict[str, float] = {}
        self._shares_at = -1
        self._behind: tuple[int, Entry] | None = None
        self._any_free = policy.type_choice == "any_free"
        self._ranking = self._rank()
        self._rank_version = 0

    # -- what a verdict depends on --------------------------------------------------------------
    def _rank(self) -> tuple[str, ...]:
        pools = self.ws.pools
        return tuple(sorted(pools, key=lambda p: (-pools[p].free_accelerators(), p)))

    def changed(self) -> None:
        """Called after every move of this cycle (admission, hold, reservation)."""
        if self._any_free:
            ranking = self._rank()
            if ranking != self._ranking:
                self._ranking = ranking
                self._rank_version += 1

    def quota_stamp(self, cls: JobClass) -> int:
        version = self.ws.quota.version
        return sum(version.get(pool, 0) for pool in cls.quota_pools)

    def stamp(self, cls: JobClass) -> int:
        return self._rank_version + (self.quota_stamp(cls) if cls.quota_pools else 0)

    def allowed(self, cls: JobClass) -> list[Candidate]:
        if not self._any_free:
            return cls.static_order(self.policy)
        pools = self.ws.pools
        return in_policy_order(cls.candidates, self.policy, lambda p: pools[p].free_accelerators())

    def old_enough(self, job: JobRequest) -> bool:
        """Whether the starvation guard applies to the job (it waited long enough)."""
        return self.policy.backfill and self.now - job.arrival >= self.policy.reserve_after_s

    # -- fair sharing's questions (queue.py) ----------------------------------------------------
    def within_nominal(self, job: JobRequest) -> bool:
        cls = self.classes[job.key]
        stamp = self.quota_stamp(cls)
        cached = self._within.get(cls)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        pools = cls.candidates if self._any_free else self.allowed(cls)
        quota = self.ws.quota
        within = any(quota.within_nominal(c.pool.name, job.tenant, cls.need) for c in pools)
        self._within[cls] = (stamp, within)
        return within

    def share(self, tenant: str) -> float:
        quota = self.ws.quota
        if self._shares_at != quota.changes:
            self._shares.clear()
            self._shares_at = quota.changes
        if tenant not in self._shares:
            self._shares[tenant] = quota.share(tenant)
        return self._shares[tenant]

    # -- one job --------------------------------------------------------------------------------
    def decide(self, job: JobRequest) -> None:
        cls = self.classes[job.key]
        entry = self.never_here(cls)
        if entry is None and self.blockers:
            entry = self.behind()
        if entry is None:
            entry = self.still_holds(cls, job)
        if entry is None:
            self.decide_afresh(job, cls)
        else:
            self.waiting[job.key] = entry

    def never_here(self, cls: JobClass) -> Entry | None:
        """RESIDENCY or NO_POOL: the same for every job of the class, all cycle long."""
        if cls not in self._never_here:
            job = cls.job
            forbidden = residency.forbids(job, self.jurisdiction)
            entry: Entry | None = None
            if forbidden is not None:
                entry = (Reason.RESIDENCY, forbidden, residency.verdicts(cls.candidates, forbidden))
            elif not cls.candidates:
                types = ", ".join(f"{a.vendor}/{a.model or 'any'}" for a in job.accepted) or "none"
                entry = (Reason.NO_POOL, f"no ComputePool offers an accepted type ({types})", ())
            self._never_here[cls] = entry
        return self._never_here[cls]

    def behind(self) -> Entry:
        """Strict FIFO: the job waits behind the blocked ones, unevaluated."""
        count = len(self.blockers)
        if self._behind is None or self._behind[0] != count:
            message = (
                f"behind {messages.plural(count, 'job')} ahead in the queue that cannot "
                f"start (first: {self.blockers[0]}); strict FIFO"
            )
            self._behind = (count, (Reason.PRIORITY, message, ()))
        return self._behind[1]

    def still_holds(self, cls: JobClass, job: JobRequest) -> Entry | None:
        """The class's verdict of this cycle, if nothing it read has changed since."""
        verdict = self._verdicts.get(cls)
        if verdict is None or verdict.stamp != self.stamp(cls):
            return None
        if not verdict.tried_reserving and self.old_enough(job):
            return None
        return verdict.entry

    def decide_afresh(self, job: JobRequest, cls: JobClass) -> None:
        found = self.try_pools(job, cls)
        if isinstance(found, Outcome):
            self.admit(job, found)
        elif not (self.policy.preemption and self.try_preemption(job, found)):
            self.wait(job, cls, found)

    def try_pools(self, job: JobRequest, cls: JobClass) -> Outcome | list[Outcome]:
        """The first pool, in policy order, where the job fits (the full gang anywhere beats a
        smaller one); else every pool's outcome."""
        allowed = self.allowed(cls)
        if cls.elastic:
            for cand in allowed:
                outcome = evaluate(self.ws, job, cand, self.cache, full_only=True)
                if outcome.placement is not None:
                    return outcome
        outcomes: list[Outcome] = []
        for cand in allowed:
            outcome = evaluate(self.ws, job, cand, self.cache)
            if outcome.placement is not None:
                return outcome
            outcomes.append(outcome)
        return outcomes

    def admit(self, job: JobRequest, outcome: Outcome) -> None:
        assert outcome.placement is not None
        cand = outcome.candidate
        placement = outcome.placement
        self.ws.assume(job, cand.pool.name, placement.nodes)
        self.changed()
        why = (
            f"{_PHRASE[self.policy.type_choice]}: {cand.pool.vendor}/{cand.pool.model} in pool "
            f"{cand.pool.name} (runtime factor {cand.factor:.3g}); {outcome.message.removeprefix('fits: ')}"
        )
        self.admissions.append(Admission(job.key, Assignment(cand.pool.name, placement.nodes), why))

    def wait(self, job: JobRequest, cls: JobClass, outcomes: Sequence[Outcome]) -> None:
        """Wait with the reason of the pool closest to running; maybe reserve; maybe block."""
        best = min(outcomes, key=_closest)
        reason = best.reason or Reason.CAPACITY
        message = best.message
        verdicts = tuple(o.verdict() for o in outcomes)
        stamp = self.stamp(cls)  # before a reservation: under "any_free" it may reorder the pools
        tried = self.old_enough(job)
        pool = reservation.reserve(self.ws, job, outcomes) if tried else None
        if not self.policy.backfill and reason not in _NEVER_HERE:
            self.blockers.append(job.key)
        if pool is None:
            self.waiting[job.key] = (reason, message, verdicts)
        else:
            self.changed()
            self.waiting[job.key] = (
                reason,
                f"{message}; waited {self.now - job.arrival:g}s, so "
                f"{messages.plural(len(pool.reserved), 'node')} of pool {pool.name} are reserved for it",
                verdicts,
            )
        # The next job of the class finds the pool reserved (by it, or by an earlier job): it
        # waits with the plain message.
        self._verdicts[cls] = _Verdict((reason, message, verdicts), stamp, tried)

    # -- preemption -----------------------------------------------------------------------------
    def try_preemption(self, job: JobRequest, outcomes: Sequence[Outcome]) -> bool:
        helps = [o.candidate for o in outcomes if o.reason in _PREEMPTION_HELPS]
        if not helps:
            return False
        cls = self.classes[job.key]
        memo = (
            job.tenant,
            job.priority,
            job.per_worker,
            cls.workers,
            cls.smallest,
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
        self.changed()
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
        self.waiting[job.key] = (Reason.PREEMPTING, message, tuple(o.verdict() for o in outcomes))
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

    # -- result ---------------------------------------------------------------------------------
    def result(self, ordered: Sequence[JobRequest]) -> CycleResult:
        waiting: dict[str, Waiting] = {}
        entries = self.waiting
        position = 0
        for job in ordered:
            entry = entries.get(job.key)
            if entry is not None:
                position += 1
                waiting[job.key] = Waiting(job.key, entry[0], entry[1], position, entry[2])
        return CycleResult(tuple(self.admissions), tuple(self.preemptions), waiting)


DEFAULT_POLICY = Policy()


def run_cycle(
    snapshot: Snapshot,
    pending: Sequence[JobRequest],
    now: float,
    policy: Policy = DEFAULT_POLICY,
    state: CycleState | None = None,
) -> CycleResult:
    """Decide, for one instant, which pending jobs start where, which running jobs are preempted,
    and why every other pending job waits (position 1-based in queue order among waiting jobs).

    `state`: the caller's `CycleState`, carried from cycle to cycle, makes the cycle cost what
    changed since the last one; it never changes the result (None: a fresh one)."""
    state = state if state is not None else CycleState()
    ws = state.workspace(snapshot)
    try:
        ordered = in_queue_order(pending)
        cycle = _Cycle(ws, state.classes(ordered), snapshot, now, policy)
        for job in processing_order(ordered, policy.fair_sharing, cycle.within_nominal, cycle.share):
            cycle.decide(job)
        result = cycle.result(ordered)
    except BaseException:
        state.forget()
        raise
    ws.rollback()
    return result
