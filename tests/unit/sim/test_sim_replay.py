"""Replays small enough to compute by hand, through the real scheduling core."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from estuary.model import Admission, Assignment, CycleResult, JobRequest, Preemption, Snapshot
from estuary.sim.cluster import SimCluster, pool_decl
from estuary.sim.engine import Assumptions, JobRecord, SimResult, Simulator
from estuary.sim.metrics import lower_bound, summarize
from estuary.sim.policies import POLICIES
from estuary.sim.throughputs import ThroughputTable
from estuary.sim.traces import TraceJob, job_key
from estuary.sim.workload import gang_shape, to_sim_job

# One job type "A": 2 steps/s on a "fast" accelerator, 1 step/s on a "slow" one.
TABLE = ThroughputTable(
    {("fast", "A", 1): 2.0, ("slow", "A", 1): 1.0, ("fast", "A", 2): 4.0, ("slow", "A", 2): 2.0}
)


def cluster(fast_nodes: int, slow_nodes: int, per_node: int = 1) -> SimCluster:
    return SimCluster(
        "tiny",
        (pool_decl("fast", "fast", fast_nodes, per_node), pool_decl("slow", "slow", slow_nodes, per_node)),
    )


def stream(*jobs: tuple[float, float]) -> list[TraceJob]:
    """(arrival s, steps) per job, one accelerator each."""
    return [
        TraceJob(i, job_key("t", i), "t", arrival, "A", 1, 1, steps)
        for i, (arrival, steps) in enumerate(jobs)
    ]


def replay(c: SimCluster, jobs: list[TraceJob], policy: str) -> SimResult:
    p = POLICIES[policy]
    sims = [s for s in (to_sim_job(j, c, TABLE) for j in jobs) if s is not None]
    return Simulator(
        c, TABLE, p.schedule(), policy_name=policy, wake_after=p.wake_after, reference="slow"
    ).run(sims)


def jcts(result: SimResult) -> list[float | None]:
    return [r.jct for r in sorted(result.records.values(), key=lambda r: r.index)]


JOBS_2_NODES = stream((0, 7200), (10, 3600), (100, 720))


def test_estuary_puts_each_job_on_the_fastest_free_type_and_backfills() -> None:
    # j0 -> fast (3600 s); j1 -> slow, the fastest that fits now (3600 s); j2 waits for the
    # fast node, free at 3600, and runs 360 s there.
    result = replay(cluster(1, 1), JOBS_2_NODES, "estuary")
    assert jcts(result) == [3600, 3600, 3860]
    assert [r.pool for r in sorted(result.records.values(), key=lambda r: r.index)] == [
        "fast",
        "slow",
        "fast",
    ]
    assert [r.queueing for r in sorted(result.records.values(), key=lambda r: r.index)] == [0, 0, 3500]


def test_fifo_waiting_for_the_fastest_type_serializes_on_it() -> None:
    # j1 waits for fast (free at 3600, 1800 s there); j2 waits behind it until 5400 (360 s).
    result = replay(cluster(1, 1), JOBS_2_NODES, "fifo-fastest")
    assert jcts(result) == [3600, 5390, 5660]


def test_agnostic_takes_the_pool_with_most_free_accelerators() -> None:
    # One fast node, two slow ones: the agnostic choice runs each job on slow (3600 s), Estuary
    # on fast (1800 s). The jobs never overlap, so there is no queueing either way.
    jobs = stream((0, 3600), (5000, 3600))
    aware = replay(cluster(1, 2), jobs, "estuary")
    agnostic = replay(cluster(1, 2), jobs, "fifo-agnostic")
    assert jcts(aware) == [1800, 1800]
    assert jcts(agnostic) == [3600, 3600]
    assert summarize(aware).avg_jct_h < summarize(agnostic).avg_jct_h


def test_lower_bound_is_each_job_alone_on_its_fastest_type() -> None:
    result = replay(cluster(1, 1), JOBS_2_NODES, "estuary")
    lb = lower_bound(result.records.values(), accelerators=2)
    assert lb.avg_jct_h == pytest.approx((3600 + 1800 + 360) / 3 / 3600)
    assert summarize(result).avg_jct_h >= lb.avg_jct_h


def test_utilization_counts_busy_accelerators_over_the_measured_span() -> None:
    result = replay(cluster(1, 1), JOBS_2_NODES, "estuary")
    # busy: fast 0-3600 and 3600-3960, slow 10-3610 -> 3960 + 3600 accelerator-seconds in 3960 s x 2
    assert summarize(result).utilization == pytest.approx((3960 + 3600) / (3960 * 2))
    assert summarize(result).makespan_h == pytest.approx(3960 / 3600)


def test_a_job_type_with_no_rate_on_a_pool_is_never_offered_that_pool() -> None:
    table = ThroughputTable({("fast", "A", 1): 2.0, ("slow", "A", 1): 0.0})
    sim = to_sim_job(stream((0, 100))[0], cluster(1, 1), table)
    assert sim is not None
    assert [(a.model, a.throughput) for a in sim.request.accepted] == [("FAST", 1.0)]
    none = to_sim_job(stream((0, 100))[0], cluster(1, 1), ThroughputTable({("slow", "A", 1): 0.0}))
    assert none is None


def test_throughput_hints_are_relative_to_the_jobs_fastest_type() -> None:
    sim = to_sim_job(stream((0, 100))[0], cluster(1, 1), TABLE)
    assert sim is not None
    assert sorted((a.model, a.throughput) for a in sim.request.accepted) == [("FAST", 1.0), ("SLOW", 0.5)]


def test_gang_shapes() -> None:
    assert gang_shape(1, 4) == (1, 1)
    assert gang_shape(4, 4) == (1, 4)
    assert gang_shape(8, 4) == (2, 4)
    assert gang_shape(12, 8) == (2, 6)


def test_a_gang_larger_than_every_pool_is_reported_unschedulable_and_the_replay_ends() -> None:
    jobs = [TraceJob(0, job_key("t", 0), "t", 0.0, "A", 2, 2, 100.0)]  # 2 workers x 1, pools of 1 node
    result = replay(cluster(1, 1), jobs, "estuary")
    rec = result.records[job_key("t", 0)]
    assert rec.end is None and rec.unschedulable is not None


class Scripted:
    """A stand-in schedule for checking the engine's own bookkeeping: admits the head of the
    queue when the node is free; preempts a running "a" as soon as "b" is pending."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, snapshot: Snapshot, pending: Sequence[JobRequest], now: float) -> CycleResult:
        self.calls.append(now)
        keys = {j.key for j in pending}
        if "t/b" in keys and "t/a" in snapshot.running and not snapshot.running["t/a"].terminating:
            return CycleResult(preemptions=(Preemption("t/a", "t/b", "Priority", ""),))
        if snapshot.running:
            return CycleResult()
        head = sorted(pending, key=lambda j: j.key)[-1] if "t/b" in keys else pending[0]
        return CycleResult(admissions=(Admission(head.key, Assignment("slow", ("slow-000",))),))


def test_preempted_job_loses_work_since_its_checkpoint_and_pays_the_restart() -> None:
    c = SimCluster("one", (pool_decl("slow", "slow", 1, 1),))
    a = TraceJob(0, "t/a", "t", 0.0, "A", 1, 1, 3000.0)
    b = TraceJob(1, "t/b", "t", 1000.0, "A", 1, 1, 500.0)
    sims = [s for s in (to_sim_job(j, c, TABLE) for j in (a, b)) if s is not None]
    schedule = Scripted()
    result = Simulator(
        c,
        TABLE,
        schedule,
        reference="slow",
        assumptions=Assumptions(checkpoint_interval_s=600, restart_overhead_s=60, termination_grace_s=30),
    ).run(sims)
    ra: JobRecord = result.records["t/a"]
    rb: JobRecord = result.records["t/b"]
    # a: 1000 s run, checkpoint at 600 kept; stops at 1030. b runs 1030-1530. a restarts at 1530:
    # 60 s overhead + 2400 steps left at 1 step/s -> ends at 3990.
    assert rb.first_start == 1030 and rb.end == 1530
    assert ra.end == 3990 and ra.preemptions == 1
    assert ra.run_seconds == pytest.approx(1030 + 2460)
    # The core ran only when something changed: arrivals (0, 1000), a's pods gone (1030), b done (1530).
    assert schedule.calls == [0, 1000, 1030, 1530]


def test_a_job_preempted_just_before_it_would_finish_does_not_finish_while_terminating() -> None:
    c = SimCluster("one", (pool_decl("slow", "slow", 1, 1),))
    a = TraceJob(0, "t/a", "t", 0.0, "A", 1, 1, 1010.0)  # would finish at 1010, inside the grace
    b = TraceJob(1, "t/b", "t", 1000.0, "A", 1, 1, 500.0)
    sims = [s for s in (to_sim_job(j, c, TABLE) for j in (a, b)) if s is not None]
    result = Simulator(
        c,
        TABLE,
        Scripted(),
        reference="slow",
        assumptions=Assumptions(checkpoint_interval_s=600, restart_overhead_s=60, termination_grace_s=30),
    ).run(sims)
    # a stops at 1030 having saved 600 steps; b runs 1030-1530; a restarts: 60 + 410 s -> 2000.
    assert result.records["t/b"].end == 1530
    assert result.records["t/a"].end == 2000


def replay_sharing(c: SimCluster, jobs: list[TraceJob]) -> SimResult:
    p = POLICIES["preemptive"].with_costs(Assumptions())
    sims = [s for s in (to_sim_job(j, c, TABLE) for j in jobs) if s is not None]
    return Simulator(
        c,
        TABLE,
        p.schedule(),
        policy_name=p.name,
        wake_after=p.wake_after,
        slice_s=p.slice_s,
        reference="slow",
    ).run(sims)


def test_time_sharing_moves_a_long_job_to_the_fast_type_when_it_frees() -> None:
    # j0 takes the fast node (3600 s); j1 starts on the slow one (36,000 steps: 10 h there). At
    # 3600 s the fast node frees: j1 keeps its checkpoint at 3000 s (3000 steps), its old pods
    # leave after 30 s, it restarts (60 s) and does 33,000 steps at 2/s: ends at 3690 + 16,500.
    result = replay_sharing(cluster(1, 1), stream((0, 7200), (10, 36_000)))
    records = sorted(result.records.values(), key=lambda r: r.index)
    assert [r.migrations for r in records] == [0, 1]
    assert [r.pool for r in records] == ["fast", "fast"]
    assert jcts(result) == [3600, 3690 + 16_500 - 10]
    assert result.migrations == 1


def test_time_sharing_lets_a_short_job_overtake_a_long_one() -> None:
    # One node. j0 (10 h) runs; j1 (10 min) arrives at 2 h: j0 has 2 h of service (queue 1) and
    # ran its 20-minute slice, so it yields (30 s grace); j1 runs 600 s; j0 resumes from 7200 s.
    result = replay_sharing(cluster(1, 0), stream((0, 72_000), (7200, 1200)))
    records = sorted(result.records.values(), key=lambda r: r.index)
    assert [r.preemptions for r in records] == [1, 0]
    assert jcts(result)[1] == 30 + 600
    assert jcts(result)[0] == 7200 + 30 + 600 + 60 + (72_000 - 14_400) / 2
