"""The event-driven virtual clock that replays a job stream through the scheduling core.

Time jumps from event to event (an arrival, a completion, a preempted job's pods gone, a queued
job reaching the core's reservation age); after each instant at which something changed, the
engine builds a ``Snapshot`` and calls the core once — the same call the operator makes — and
applies its decisions: admitted jobs start on their assigned pool and finish after their steps at
that pool's measured rate; preempted jobs stop, lose the work since their last checkpoint, and
queue again. Jobs run to completion on one type: gangs start whole and never migrate.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from estuary.model import CycleResult, JobRequest, Reason, RunningJob, Snapshot
from estuary.sim.cluster import SimCluster
from estuary.sim.throughputs import ThroughputTable
from estuary.sim.workload import SimJob

Schedule = Callable[[Snapshot, Sequence[JobRequest], float], CycleResult]

# Waiting reasons that no later cycle can change in a static cluster: the job is dropped.
PERMANENT = frozenset({Reason.NEVER_FITS, Reason.NO_POOL, Reason.RESIDENCY, Reason.SELECTOR})

_COMPLETE, _TERMINATED, _ARRIVAL, _WAKE = 0, 1, 2, 3


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
class JobRecord:
    """What happened to one job. Times in seconds on the simulated clock."""

    key: str
    index: int
    tenant: str
    job_type: str
    accelerators: int
    arrival: float
    fastest_runtime: float
    first_start: float | None = None
    end: float | None = None
    pool: str | None = None  # where it ran (last start)
    run_seconds: float = 0.0  # wall time holding accelerators, all starts together
    preemptions: int = 0
    unschedulable: str | None = None  # reason message when the core said it can never run

    @property
    def jct(self) -> float | None:
        return None if self.end is None else self.end - self.arrival

    @property
    def queueing(self) -> float | None:
        return None if self.first_start is None else self.first_start - self.arrival


@dataclass
class SimResult:
    policy: str
    cluster: SimCluster
    records: dict[str, JobRecord]
    timeline: list[tuple[float, int]]  # (time, busy accelerators) after each change
    tenant_accel_seconds: dict[str, float]
    pool_accel_seconds: dict[str, float]
    end_time: float
    cycles: int = 0
    core_seconds: float = 0.0
    wall_seconds: float = 0.0
    max_pending: int = 0
    preemptions: int = 0


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
        self.progress = progress
        self.pools = cluster.pool_specs(table, reference)
        self.nodes = cluster.nodes()

    def run(
        self, jobs: Iterable[SimJob], until_done: Collection[str] | None = None, max_time: float = math.inf
    ) -> SimResult:
        """Replay ``jobs`` (in arrival order). With ``until_done``, stop once those keys finished
        (or were found unschedulable) — for endless generated streams; else when nothing is left.
        Progress reports jobs finished (of ``until_done`` when given)."""
        wall0 = time.perf_counter()
        arrivals: Iterator[SimJob] = iter(jobs)
        events: list[_Event] = []
        seq = 0

        def push(t: float, kind: int, key: str, token: int = 0) -> None:
            nonlocal seq
            heapq.heappush(events, _Event(t, kind, seq, key, token))
            seq += 1

        states: dict[str, _State] = {}
        pending: dict[str, JobRequest] = {}
        running: dict[str, RunningJob] = {}
        runs: dict[str, _Run] = {}
        busy = 0
        timeline: list[tuple[float, int]] = [(0.0, 0)]
        tenant_use: dict[str, float] = {}
        pool_use: dict[str, float] = {p.name: 0.0 for p in self.cluster.pools}
        waiting_for = set(until_done) if until_done is not None else None
        finished = 0
        result = SimResult(self.policy_name, self.cluster, {}, timeline, tenant_use, pool_use, 0.0)
        next_arrival: SimJob | None = None
        last_arrival = -math.inf

        def pull() -> None:
            nonlocal next_arrival, last_arrival
            next_arrival = next(arrivals, None)
            if next_arrival is not None:
                t = next_arrival.request.arrival
                if t < last_arrival:
                    raise ValueError(f"jobs out of arrival order at {next_arrival.key}")
                last_arrival = t
                push(t, _ARRIVAL, next_arrival.key)

        def set_busy(t: float, delta: int) -> None:
            nonlocal busy
            busy += delta
            if timeline[-1][0] == t:
                timeline[-1] = (t, busy)
            else:
                timeline.append((t, busy))

        def release(key: str, t: float) -> _State:
            run = runs.pop(key)
            del running[key]
            st = states[key]
            held = t - run.start
            st.record.run_seconds += held
            accel = run.accelerators
            tenant_use[st.job.request.tenant] = tenant_use.get(st.job.request.tenant, 0.0) + held * accel
            pool_use[run.pool] += held * accel
            set_busy(t, -accel)
            return st

        def finish(st: _State) -> None:
            nonlocal finished
            if waiting_for is None:
                finished += 1
            elif st.job.key in waiting_for:
                waiting_for.remove(st.job.key)
                finished += 1
            if self.progress is not None:
                self.progress.update(finished, now)

        pull()
        now = 0.0
        while events:
            if waiting_for is not None and not waiting_for:
                break
            now = events[0].time
            if now > max_time:
                break
            dirty = False
            while events and events[0].time == now:
                ev = heapq.heappop(events)
                if ev.kind == _ARRIVAL:
                    assert next_arrival is not None and next_arrival.key == ev.key
                    job = next_arrival
                    rec = JobRecord(
                        job.key,
                        job.trace.index,
                        job.request.tenant,
                        job.trace.job_type,
                        job.accelerators,
                        job.request.arrival,
                        job.fastest_runtime,
                    )
                    result.records[job.key] = rec
                    states[job.key] = _State(job, rec)
                    pending[job.key] = job.request
                    if self.wake_after is not None and self.wake_after > 0:
                        push(now + self.wake_after, _WAKE, job.key)
                    dirty = True
                    pull()
                elif ev.kind == _COMPLETE:
                    if ev.key not in runs or states[ev.key].token != ev.token:
                        continue  # preempted after this completion was scheduled
                    st = release(ev.key, now)
                    st.record.end = now
                    st.done_steps = st.job.trace.steps
                    finish(st)
                    dirty = True
                elif ev.kind == _TERMINATED:
                    st = release(ev.key, now)
                    pending[ev.key] = st.job.request
                    dirty = True
                elif ev.kind == _WAKE:
                    dirty = dirty or ev.key in pending
            if not dirty or not pending:
                continue

            snapshot = Snapshot(pools=self.pools, nodes=self.nodes, running=dict(running))
            queue = list(pending.values())
            result.max_pending = max(result.max_pending, len(queue))
            t0 = time.perf_counter()
            decisions = self.schedule(snapshot, queue, now)
            result.core_seconds += time.perf_counter() - t0
            result.cycles += 1

            for p in decisions.preemptions:
                run = runs.get(p.victim_key)
                if run is None or running[p.victim_key].terminating:
                    continue
                st = states[p.victim_key]
                st.token += 1
                st.record.preemptions += 1
                result.preemptions += 1
                progress = max(0.0, now - run.start - run.overhead)
                ckpt = self.assumptions.checkpoint_interval_s
                saved = progress if ckpt <= 0 else math.floor(progress / ckpt) * ckpt
                st.done_steps = min(st.job.trace.steps, st.done_steps + saved * run.rate)
                old = running[p.victim_key]
                running[p.victim_key] = RunningJob(old.job, old.assignment, old.started, terminating=True)
                push(now + self.assumptions.termination_grace_s, _TERMINATED, p.victim_key)

            for a in decisions.admissions:
                request = pending.pop(a.job_key, None)
                if request is None:
                    raise RuntimeError(f"core admitted {a.job_key}, which is not pending")
                st = states[a.job_key]
                pool = a.assignment.pool
                if pool not in st.job.rates:
                    raise RuntimeError(f"core put {a.job_key} on pool {pool}, which it cannot run on")
                rate = st.job.rates[pool] * a.assignment.workers / request.workers
                overhead = self.assumptions.restart_overhead_s if st.runs else 0.0
                st.runs += 1
                st.token += 1
                remaining = st.job.trace.steps - st.done_steps
                accel = a.assignment.workers * request.per_worker.accelerators
                runs[a.job_key] = _Run(pool, now, overhead, rate, accel)
                running[a.job_key] = RunningJob(request, a.assignment, now)
                if st.record.first_start is None:
                    st.record.first_start = now
                st.record.pool = pool
                set_busy(now, accel)
                push(now + overhead + remaining / rate, _COMPLETE, a.job_key, st.token)

            for key, sent in self.burst.take(pending, states, decisions.waiting, now) if self.burst else ():
                states[key].record.first_start, states[key].record.end = sent.start, sent.end
                states[key].record.pool = f"partner:{sent.partner}"
                finish(states[key])
            for key, w in decisions.waiting.items():
                if w.reason in PERMANENT and key in pending:
                    del pending[key]
                    st = states[key]
                    st.record.unschedulable = f"{w.reason.value}: {w.message}"
                    finish(st)

        result.end_time = now
        result.wall_seconds = time.perf_counter() - wall0
        if self.progress is not None:
            self.progress.finish(finished, now)
        return result
