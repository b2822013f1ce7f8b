"""One scheduling cycle: snapshot and queue in, admissions, preemptions and reasons out.

Why it exists: this is the single entry point the operator's scheduling loop and the simulator
call. It reads like a numbered list:
  1. bring the working view up to date with the snapshot (free maps per pool, quota usage): only
     the running jobs that started, ended or changed since the caller's last cycle are applied
     (state.py, workspace.py);
  2. order the queue (queue.py): priority, arrival, key, with fair sharing of borrowed capacity;
     find each job's class of identical jobs (classes.py);
  3. for each job (those that chose victims earlier first, nomination.py): residency; strict FIFO
     behind a blocked job; the verdict its class got earlier in this cycle, if nothing that
     verdict read has changed since (verdicts.py); otherwise decide:
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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from estuary.core import attained, messages, migrate, nomination, preemption, reservation, residency
from estuary.core.candidates import Candidate, in_policy_order
from estuary.core.classes import JobClass
from estuary.core.evaluate import Failure, FitCache, Outcome, evaluate
from estuary.core.nomination import Firsts
from estuary.core.policy import Policy
from estuary.core.queue import processing_order
from estuary.core.slowstart import wait_instead
from estuary.core.state import CycleState, Queue
from estuary.core.sweep import in_queue_order
from estuary.core.verdicts import NEVER_HERE, Assembled, Tried, Verdict, assemble
from estuary.core.waiting import Entry, WaitingList
from estuary.core.workspace import Workspace
from estuary.model import (
    Admission,
    Assignment,
    CycleResult,
    JobRequest,
    Preemption,
    Reason,
    Snapshot,
)


class _Cycle:
    def __init__(self, ws: Workspace, snapshot: Snapshot, now: float, policy: Policy) -> None:
        self.ws = ws
        self.class_of: dict[str, JobClass] = {}  # by job key; filled for fair sharing's questions
        self.jurisdiction = snapshot.jurisdiction
        self.now = now
        self.policy = policy
        self.cache = FitCache()
        self.admissions: list[Admission] = []
        self.preemptions: list[Preemption] = []
        self.claimed: set[str] = set()  # victims chosen and terminating jobs awaited this cycle
        self.blockers: list[str] = []  # strict FIFO: jobs that block everything behind them
        self._no_plan: set[tuple[object, ...]] = set()
        self.verdicts: dict[JobClass, Verdict] = {}  # each class's latest verdict this cycle
        self.shared: dict[int, Verdict] = {}  # by `JobClass.decision`
        self._failures: dict[tuple[str, int, bool], tuple[int, Failure]] = {}
        self._within: dict[JobClass, tuple[int, bool]] = {}
        self._shares: dict[str, float] = {}
        self._shares_at = -1
        self._behind: tuple[int, Entry] | None = None
        self._any_free = policy.type_choice == "any_free"
        self.reserve_after = policy.reserve_after_s if policy.backfill else math.inf  # no guard without
        self._ranking = self._rank()
        self._rank_version = 0
        self.epoch = 0
        self.validity = self._validity()

    # -- what a verdict depends on --------------------------------------------------------------
    def _rank(self) -> tuple[str, ...]:
        pools = self.ws.pools
        return tuple(sorted(pools, key=lambda p: (-pools[p].free_accelerators(), p)))

    def changed(self) -> None:
        """Called after every move of this cycle (admission, hold, reservation, blocker)."""
        self.epoch += 1
        if self._any_free:
            ranking = self._rank()
            if ranking != self._ranking:
                self._ranking = ranking
                self._rank_version += 1
        self.validity = self._validity()

    def _validity(self) -> int:
        """Grows whenever something that some waiting verdict read may have changed (verdicts.py):
        a quota book with quotas, the pools' order, a new blocker. Every part only grows."""
        return self._rank_version + self.ws.quota.enforced_changes + len(self.blockers)

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
        return self.now - job.arrival >= self.reserve_after

    # -- fair sharing's questions (queue.py) ----------------------------------------------------
    def job_within_nominal(self, job: JobRequest) -> bool:
        return self.within_nominal(self.class_of[job.key])

    def within_nominal(self, cls: JobClass) -> bool:
        """Whether taking the smallest gang keeps the tenant within its nominal quota in some
        pool the policy allows (always so in a pool without quotas)."""
        if not cls.quota_pools:  # no quota anywhere it may run: within nominal if it may run
            return bool(cls.candidates)
        stamp = self.quota_stamp(cls)
        cached = self._within.get(cls)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        pools = cls.candidates if self._any_free else self.allowed(cls)
        quota = self.ws.quota
        within = any(quota.within_nominal(c.pool.name, cls.job.tenant, cls.need) for c in pools)
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
    def decide(self, job: JobRequest, cls: JobClass) -> Entry | None:
        """Why the job waits, or None when it was admitted (step 3)."""
        verdict = self.verdicts.get(cls)
        if verdict is None:  # the verdict of an identical class, if one was decided
            verdict = self.shared.get(cls.decision(self.policy))
        if verdict is not None and self.holds(verdict, cls, job):
            if verdict.valid != self.validity or self.verdicts.get(cls) is not verdict:
                # It holds now: the class's next jobs take the fast path (sweep.py).
                self.verdicts[cls] = Verdict(
                    verdict.entry,
                    verdict.stamp,
                    verdict.tried_reserving,
                    self.epoch,
                    self.validity,
                    verdict.always,
                )
            return verdict.entry
        entry = self.never_here(cls)
        if entry is not None:
            return entry
        if self.blockers:  # the same for every job until the next blocker
            entry = self.behind()
            self.remember(cls, Verdict(entry, self.stamp(cls), True, self.epoch, self.validity))
            return entry
        found = self.try_pools(job, cls)
        if isinstance(found, Outcome):  # a job that cannot move may rather wait for its fastest type
            ts, chosen = self.policy.time_sharing, found.candidate
            held = wait_instead(self.ws, job, chosen, cls.candidates, self.now, ts)
            if held is None:
                self.admit(job, found)
            return held
        assembled = cls.assembled = assemble(found, cls.assembled)
        preempting = self.try_preemption(job, cls, assembled) if self.policy.preemption else None
        return preempting if preempting is not None else self.wait(job, cls, found, assembled)

    def remember(self, cls: JobClass, verdict: Verdict) -> None:
        """The class's verdict, and that of every class that decides like it (classes.py)."""
        self.verdicts[cls] = verdict
        self.shared[cls.decision(self.policy)] = verdict

    def holds(self, verdict: Verdict, cls: JobClass, job: JobRequest) -> bool:
        """Whether the class's verdict answers for `job` too (verdicts.py)."""
        if verdict.always:
            return True
        if verdict.epoch != self.epoch and (self.blockers or verdict.stamp != self.stamp(cls)):
            return False
        return verdict.tried_reserving or self.now - job.arrival < self.reserve_after

    def never_here(self, cls: JobClass) -> Entry | None:
        """RESIDENCY or NO_POOL: the same for every job of the class, all cycle long."""
        entry = residency.never_here(cls.job, cls.candidates, self.jurisdiction)
        if entry is not None:
            self.verdicts[cls] = Verdict(entry, 0, True, self.epoch, self.validity, always=True)
        return entry

    def block(self, job: JobRequest) -> None:
        """Strict FIFO: every job behind this one waits."""
        self.blockers.append(job.key)
        self.changed()

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

    def try_pools(self, job: JobRequest, cls: JobClass) -> Outcome | Tried:
        """The first pool, in policy order, where the job fits (the full gang anywhere beats a
        smaller one); else every pool's failure."""
        allowed = self.allowed(cls)
        if cls.elastic:
            for cand in allowed:
                found = self.pool_result(job, cls, cand, full_only=True)
                if isinstance(found, Outcome):
                    return found
        tried: Tried = []
        for cand in allowed:
            found = self.pool_result(job, cls, cand, full_only=False)
            if isinstance(found, Outcome):
                return found
            tried.append((cand, found))
        return tried

    def pool_result(
        self, job: JobRequest, cls: JobClass, cand: Candidate, full_only: bool
    ) -> Outcome | Failure:
        """`evaluate`, remembered per pool and gang for the cycle: a failure stays a failure
        (free capacity only shrinks) until the pool's quota book changes."""
        pool = cand.pool.name
        stamp = self.ws.quota.version.get(pool, 0) if cand.pool.quotas else 0
        key = (pool, cls.gang, full_only)
        known = self._failures.get(key)
        if known is not None and known[0] == stamp:
            return known[1]
        outcome = evaluate(self.ws, job, cand, self.cache, full_only)
        if outcome.placement is not None:
            return outcome
        self._failures[key] = (stamp, outcome.failure)
        return outcome.failure

    def admit(self, job: JobRequest, outcome: Outcome) -> None:
        assert outcome.placement is not None
        cand = outcome.candidate
        placement = outcome.placement
        self.ws.assume(job, cand.pool.name, placement.nodes)
        self.changed()
        phrase = messages.POLICY_PHRASE[self.policy.type_choice]
        why = (
            f"{phrase}: {cand.pool.vendor}/{cand.pool.model} in pool "
            f"{cand.pool.name} (runtime factor {cand.factor:.3g}); {outcome.message.removeprefix('fits: ')}"
        )
        self.admissions.append(Admission(job.key, Assignment(cand.pool.name, placement.nodes), why))

    def wait(self, job: JobRequest, cls: JobClass, tried: Tried, assembled: Assembled) -> Entry:
        """Wait with the reason of the pool closest to running; maybe reserve; maybe block."""
        reason, message, verdicts = assembled.reason, assembled.message, assembled.verdicts
        # Before a reservation (under "any_free" it may reorder the pools) or a new blocker.
        stamp, epoch, validity = self.stamp(cls), self.epoch, self.validity
        tried_reserving = self.old_enough(job)
        pool = reservation.reserve(self.ws, job, tried) if tried_reserving else None
        if not self.policy.backfill and reason not in NEVER_HERE:
            self.block(job)
        # The next job of the class finds the pool reserved (by this one, or an earlier one): it
        # waits with the plain message.
        entry = (reason, message, verdicts)
        self.remember(cls, Verdict(entry, stamp, tried_reserving, epoch, validity))
        if pool is None:
            return entry
        self.changed()
        reserved = messages.plural(len(pool.reserved), "node")
        waited = f"waited {self.now - job.arrival:g}s, so {reserved} of pool {pool.name} are reserved for it"
        return (reason, f"{message}; {waited}", verdicts)

    # -- preemption -----------------------------------------------------------------------------
    def try_preemption(self, job: JobRequest, cls: JobClass, assembled: Assembled) -> Entry | None:
        """PREEMPTING, with victims chosen (or terminating jobs awaited) and room held; None if
        preemption cannot help."""
        if not assembled.helps:
            return None
        memo = (cls.preemption_key, assembled.helps_names, self.within_nominal(cls), job.level)
        if memo in self._no_plan:
            return None
        rule = attained.rule(self.policy.time_sharing, self.ws, job, self.now)
        # Comparative advantage for jobs that take turns; others try pools as without time-sharing.
        pools = attained.by_advantage(assembled.helps) if rule and job.time_sharing else assembled.helps
        plan = preemption.plan(self.ws, job, pools, self.claimed, rule)
        if plan is None:
            self._no_plan.add(memo)
            return None
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
                explained = attained.explain(rule, running, why, pool) or preemption.message(
                    self.ws, job, running.job, why, pool
                )
                self.preemptions.append(Preemption(running.job.key, job.key, why, explained))
            message = f"preempting {messages.keys(names)} in pool {pool} to start {size}"
        else:
            names = [r.job.key for r in plan.waiting_on]
            message = (
                f"waiting for {messages.keys(names)} to finish terminating in pool {pool} to start {size}"
            )
        if not self.policy.backfill:
            self.block(job)
        return (Reason.PREEMPTING, message, assembled.verdicts)


def _fairly(cycle: _Cycle, queue: Queue, first: Firsts) -> WaitingList:
    """Step 3 in fair-sharing order, then step 4: the waiting jobs numbered in queue order."""
    ordered = [job for job, _ in queue]
    cycle.class_of = {job.key: cls for job, cls in queue}
    entries = {key: entry for key, entry in first.items() if entry is not None}
    for job in processing_order(ordered, True, cycle.job_within_nominal, cycle.share):
        entry = first[job.key] if job.key in first else cycle.decide(job, cycle.class_of[job.key])
        if entry is not None:
            entries[job.key] = entry
    keys = [job.key for job in ordered if job.key in entries]
    return WaitingList(keys, [entries[key] for key in keys])


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
        queue = state.queue(state.ranker.rank(pending, now, policy.time_sharing))  # core/attained.py
        cycle = _Cycle(ws, snapshot, now, policy)
        fair = policy.fair_sharing and ws.quota.enforced_anywhere()  # else the queue order (queue.py)
        first = nomination.decide_first(queue, snapshot.nominated, cycle.decide)
        waiting = (_fairly if fair else in_queue_order)(cycle, queue, first)
        moves = migrate.plan(ws, snapshot.pools, now, policy.time_sharing, cycle.claimed)
        result = CycleResult(tuple(cycle.admissions), tuple(cycle.preemptions), waiting, tuple(moves))
    except BaseException:
        state.forget()
        raise
    ws.rollback()
    return result
