"""The event-driven virtual clock that replays a job stream through the scheduling core.

Time jumps from event to event (an arrival, a completion, a preempted job's pods gone, a queued
job reaching the core's reservation age); after each instant at which something changed, the
engine builds a ``Snapshot`` and calls the core once — the same call the operator makes — and
applies its decisions: admitted jobs start on their assigned pool and finish after their steps at
that pool's measured rate; preempted jobs stop, lose the work since their last checkpoint, and
queue again with the service they attained; a migrating job (a policy with time-sharing) stops the
same way and restarts on its new pool once its old pods are gone, holding the new pool from the
decision on.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from estuary.core.waiting import keys_with
from estuary.model import Assignment, CycleResult, JobRequest, Migration, Reason, RunningJob, Snapshot
from estuary.sim.cluster import SimCluster
from estuary.sim.records import JobRecord, SimResult
from estuary.sim.throughputs import ThroughputTable
from estuary.sim.workload import SimJob

__all__ = ["PERMANENT", "Assumptions", "JobRecord", "Progress", "Schedule", "SimResult", "Simulator"]

Schedule = Callable[[Snapshot, Sequence[JobRequest], float], CycleResult]

# Waiting reasons that no later cycle can change in a static cluster: the job is dropped.
PERMANENT = frozenset({Reason.NEVER_FITS, Reason.NO_POOL, Reason.RESIDENCY, Reason.SELECTOR})

_COMPLETE, _TERMINATED, _ARRIVAL, _WAKE, _MOVED_OUT, _SLICE_END = 0, 1, 2, 3, 4, 5
_PREEMPTING = frozenset({Reason.PREEMPTING})


@dataclass(frozen=True)
class Assumptions:
    """What the simulator assumes about stopping and restarting a job (Gavel assumes it is free).

    A preempted job keeps its accelerators for ``termination_grace_s`` (pods terminating), loses
    the progress since its last checkpoint (one every ``checkpoint_interval_s`` of running; 0 =
    nothing lost), and pays ``restart_overhead_s`` (re-scheduling, image start, checkpoint load)
    each time it starts again. A job's first start is immediate.
    """

    checkpoint_interval_s: float = 600.0
    restart_overhead_s: float = 60.0
    termination_grace_s: float = 30.0


class Burst(Protocol):
    """Sends waiting jobs to partner clusters (sim/bursting.py): yields (key, what was sent) and
    removes each job sent from `pending`."""

    def take(
        self,
        pending: dict[str, JobRequest],
        states: Mapping[str, Any],
        waiting: Mapping[str, Any],
        now: float,
    ) -> Iterator[tuple[str, Any]]: ...


class Progress(Protocol):
    def update(self, done: int, now: float) -> None: ...

    def finish(self, done: int, now: float) -> None: ...


@dataclass
class _Run:
    pool: str
    start: float
    overhead: float
    rate: float  # steps/s of the admitted gang
    accelerators: int  # held by the admitted gang


@dataclass
class _State:
    job: SimJob
    record: JobRecord
    done_steps: float = 0.0
    token: int = 0
    runs: int = 0
    attained: float = 0.0  # accelerator-seconds x the type's speed for the job (core/attained.py)


@dataclass(order=True)
class _Event:
    time: float
    kind: int
    seq: int
    key: str = field(compare=False)
    token: int = field(compare=False, default=0)


class Simulator:
    """Replays jobs through ``schedule`` (the core's ``run_cycle`` bound to a policy)."""

    def __init__(
        self,
        cluster: SimCluster,
        table: ThroughputTable,
        schedule: Schedule,
        *,
        policy_name: str = "policy",
        assumptions: Assumptions | None = None,
        wake_after: float | None = None,
        slice_s: float | None = None,
        reference: str = "v100",
        progress: Progress | None = None,
        burst: Burst | None = None,
    ) -> None:
        self.burst = burst  # bursting to partner clusters (sim/bursting.py), or None
        self.cluster = cluster
        self.schedule = schedule
        self.policy_name = policy_name
        self.assumptions = assumptions or Assumptions()
        self.wake_after = wake_after
        # Time-sharing: a job's minimum slice ending may let it yield or move, so it is an event,
        # and cycles run even with nothing pending (a move needs no pending job).
        self.slice_s = slice_s
        self.progress = progress
        self.pools = cluster.pool_specs(table, reference)
        self.nodes = cluster.nodes()

    def run(
        self, jobs: Iterable[SimJob], until_done: Collection[str] | None = None, max_time: float = math.inf
    ) -> SimResult:
        """Replay ``jobs`` (in arrival order). With ``until_done``, stop once those keys finished
        (or were found unschedulable) — for endless generated streams; else when nothing is left.
        Progress reports jobs finished (of ``until_done`` when given)."""
        return _Replay(self, jobs, until_done).run(max_time)


class _Replay:
    """One replay: the clock, the events still to come, and the jobs pending and running.

    ``run`` reads as the loop it is: 1. take the first arrival; 2. at each instant, apply every
    event of that instant (arrivals, completions, terminations, wake-ups); 3. if something changed
    and some job is pending, run one scheduling cycle and apply its decisions (preemptions,
    admissions, jobs that can never run here); 4. stop when the jobs waited for are done, nothing
    is left, or ``max_time`` is passed.
    """

    def __init__(self, sim: Simulator, jobs: Iterable[SimJob], until_done: Collection[str] | None) -> None:
        self.sim = sim
        self.wall0 = time.perf_counter()
        self.arrivals: Iterator[SimJob] = iter(jobs)
        self.next_arrival: SimJob | None = None
        self.last_arrival = -math.inf
        self.events: list[_Event] = []
        self.seq = 0
        self.now = 0.0
        self.states: dict[str, _State] = {}
        self.pending: dict[str, JobRequest] = {}
        self.running: dict[str, RunningJob] = {}
        self.runs: dict[str, _Run] = {}
        self.nominated: frozenset[str] = frozenset()  # jobs the last cycle left preempting
        self.waiting_for = set(until_done) if until_done is not None else None
        self.finished = 0
        pools = {p.name: 0.0 for p in sim.cluster.pools}
        self.result = SimResult(sim.policy_name, sim.cluster, {}, [(0.0, 0)], {}, pools, 0.0)

    def run(self, max_time: float) -> SimResult:
        self.pull()
        while self.events:
            if self.waiting_for is not None and not self.waiting_for:
                break
            self.now = self.events[0].time
            if self.now > max_time:
                break
            changed = self.apply_events()
            if changed and (self.pending or self.sim.slice_s is not None):
                self.cycle()
        self.result.end_time = self.now
        self.result.wall_seconds = time.perf_counter() - self.wall0
        if self.sim.progress is not None:
            self.sim.progress.finish(self.finished, self.now)
        return self.result

    # -- events ---------------------------------------------------------------------------------
    def push(self, t: float, kind: int, key: str, token: int = 0) -> None:
        heapq.heappush(self.events, _Event(t, kind, self.seq, key, token))
        self.seq += 1

    def pull(self) -> None:
        """Queue the next arrival of the stream (one at a time: streams may be endless)."""
        self.next_arrival = next(self.arrivals, None)
        if self.next_arrival is not None:
            t = self.next_arrival.request.arrival
            if t < self.last_arrival:
                raise ValueError(f"jobs out of arrival order at {self.next_arrival.key}")
            self.last_arrival = t
            self.push(t, _ARRIVAL, self.next_arrival.key)

    def apply_events(self) -> bool:
        """Apply every event at `now`; whether anything a cycle would see changed."""
        changed = False
        while self.events and self.events[0].time == self.now:
            ev = heapq.heappop(self.events)
            if ev.kind == _ARRIVAL:
                self.arrive(ev.key)
                changed = True
            elif ev.kind == _COMPLETE:
                changed = self.complete(ev) or changed
            elif ev.kind == _TERMINATED:
                st = self.release(ev.key)
                self.pending[ev.key] = replace(st.job.request, attained=st.attained, queued_since=self.now)
                changed = True
            elif ev.kind == _MOVED_OUT:
                self.moved_out(ev.key)
                changed = True
            elif ev.kind == _SLICE_END:
                changed = changed or (ev.key in self.runs and self.states[ev.key].token == ev.token)
            elif ev.kind == _WAKE:
                changed = changed or ev.key in self.pending
        return changed

    def arrive(self, key: str) -> None:
        job = self.next_arrival
        assert job is not None and job.key == key
        rec = JobRecord(
            job.key,
            job.trace.index,
            job.request.tenant,
            job.trace.job_type,
            job.accelerators,
            job.request.arrival,
            job.fastest_runtime,
        )
        self.result.records[job.key] = rec
        self.states[job.key] = _State(job, rec)
        self.pending[job.key] = job.request
        if self.sim.wake_after is not None and self.sim.wake_after > 0:
            self.push(self.now + self.sim.wake_after, _WAKE, job.key)
        self.pull()

    def complete(self, ev: _Event) -> bool:
        if ev.key not in self.runs or self.states[ev.key].token != ev.token:
            return False  # preempted after this completion was scheduled
        st = self.release(ev.key)
        st.record.end = self.now
        st.done_steps = st.job.trace.steps
        self.finish(st)
        return True

    def release(self, key: str) -> _State:
        """The job's gang stops holding its accelerators now (completed or terminated)."""
        run = self.runs.pop(key)
        del self.running[key]
        st = self.states[key]
        held = self.now - run.start
        st.record.run_seconds += held
        st.attained += held * run.accelerators * st.job.rates[run.pool] / max(st.job.rates.values())
        tenant = st.job.request.tenant
        uses = self.result.tenant_accel_seconds
        uses[tenant] = uses.get(tenant, 0.0) + held * run.accelerators
        self.result.pool_accel_seconds[run.pool] += held * run.accelerators
        self.result.busy(self.now, -run.accelerators)
        return st

    def finish(self, st: _State) -> None:
        if self.waiting_for is None:
            self.finished += 1
        elif st.job.key in self.waiting_for:
            self.waiting_for.remove(st.job.key)
            self.finished += 1
        if self.sim.progress is not None:
            self.sim.progress.update(self.finished, self.now)

    # -- one scheduling cycle -------------------------------------------------------------------
    def cycle(self) -> None:
        """Run the core once on the cluster as it is now, and apply what it decided."""
        snapshot = Snapshot(
            pools=self.sim.pools, nodes=self.sim.nodes, running=dict(self.running), nominated=self.nominated
        )
        queue = list(self.pending.values())
        result = self.result
        result.max_pending = max(result.max_pending, len(queue))
        t0 = time.perf_counter()
        decisions = self.sim.schedule(snapshot, queue, self.now)
        result.core_seconds += time.perf_counter() - t0
        result.cycles += 1
        # As the operator does from status: who waits for its victims is decided first next time.
        waiting = decisions.waiting
        self.nominated = frozenset(keys_with(waiting, _PREEMPTING))
        dropped = [(key, waiting[key]) for key in keys_with(waiting, PERMANENT)]
        for p in decisions.preemptions:
            self.preempt(p.victim_key)
        for a in decisions.admissions:
            self.start(a.job_key, a.assignment)
        for m in decisions.migrations:
            self.migrate(m)
        sent = (
            self.sim.burst.take(self.pending, self.states, decisions.waiting, self.now)
            if self.sim.burst
            else ()
        )
        for key, to in sent:
            record = self.states[key].record
            record.first_start, record.end, record.pool = to.start, to.end, f"partner:{to.partner}"
            self.finish(self.states[key])
        for key, w in dropped:
            if key in self.pending:
                del self.pending[key]
                st = self.states[key]
                st.record.unschedulable = f"{w.reason.value}: {w.message}"
                self.finish(st)

    def preempt(self, key: str) -> None:
        """The victim's pods terminate (it holds its accelerators for the grace period) and it
        keeps the progress of its last checkpoint."""
        run = self.runs.get(key)
        if run is None or self.running[key].terminating:
            return
        st = self.states[key]
        st.record.preemptions += 1
        self.result.preemptions += 1
        self.checkpoint(st, run)
        old = self.running[key]
        self.running[key] = RunningJob(old.job, old.assignment, old.started, terminating=True)
        self.push(self.now + self.sim.assumptions.termination_grace_s, _TERMINATED, key)

    def checkpoint(self, st: _State, run: _Run) -> None:
        """The job stops: it keeps the progress of its last checkpoint; its completion is void."""
        st.token += 1
        progress = max(0.0, self.now - run.start - run.overhead)
        ckpt = self.sim.assumptions.checkpoint_interval_s
        saved = progress if ckpt <= 0 else math.floor(progress / ckpt) * ckpt
        st.done_steps = min(st.job.trace.steps, st.done_steps + saved * run.rate)

    def migrate(self, move: Migration) -> None:
        """The job stops on its old pool (whose accelerators its terminating pods hold for the
        grace period, as a separate gang) and holds its new assignment at once; it runs there
        once the old pods are gone and it has restarted."""
        key = move.job_key
        run = self.runs.get(key)
        if run is None or self.running[key].terminating:
            raise RuntimeError(f"core moved {key}, which is not running")
        st = self.states[key]
        st.record.migrations += 1
        self.result.migrations += 1
        self.checkpoint(st, run)
        old = self.running[key]
        self.release(key)
        gone = f"{key}@{run.pool}~moving"
        self.runs[gone] = _Run(run.pool, self.now, 0.0, 0.0, run.accelerators)
        self.running[gone] = RunningJob(
            replace(old.job, key=gone), old.assignment, self.now, terminating=True
        )
        self.result.busy(self.now, run.accelerators)
        grace = self.sim.assumptions.termination_grace_s
        self.push(self.now + grace, _MOVED_OUT, gone)
        request = replace(st.job.request, attained=st.attained, queued_since=self.now)
        self.start(key, move.assignment, request, grace + self.sim.assumptions.restart_overhead_s)

    def moved_out(self, gone: str) -> None:
        """A migrated job's old pods are gone: their accelerators are free."""
        run = self.runs.pop(gone)
        del self.running[gone]
        self.result.pool_accel_seconds[run.pool] += (self.now - run.start) * run.accelerators
        self.result.busy(self.now, -run.accelerators)

    def start(
        self,
        key: str,
        assignment: Assignment,
        request: JobRequest | None = None,
        overhead: float | None = None,
    ) -> None:
        """The admitted gang starts at once and runs at its pool's rate until its steps are done."""
        request = request or self.pending.pop(key, None)
        if request is None:
            raise RuntimeError(f"core admitted {key}, which is not pending")
        st = self.states[key]
        pool = assignment.pool
        if pool not in st.job.rates:
            raise RuntimeError(f"core put {key} on pool {pool}, which it cannot run on")
        rate = st.job.rates[pool] * assignment.workers / request.workers
        if overhead is None:
            overhead = self.sim.assumptions.restart_overhead_s if st.runs else 0.0
        st.runs += 1
        st.token += 1
        remaining = st.job.trace.steps - st.done_steps
        accel = assignment.workers * request.per_worker.accelerators
        self.runs[key] = _Run(pool, self.now, overhead, rate, accel)
        self.running[key] = RunningJob(request, assignment, self.now)
        if st.record.first_start is None:
            st.record.first_start = self.now
        st.record.pool = pool
        self.result.busy(self.now, accel)
        self.push(self.now + overhead + remaining / rate, _COMPLETE, key, st.token)
        if self.sim.slice_s is not None:
            self.push(self.now + self.sim.slice_s, _SLICE_END, key, st.token)
