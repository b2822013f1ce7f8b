"""A job that cannot move: start now on a slow type, or wait for its fastest (core/slowstart.py)."""

from __future__ import annotations

from dataclasses import replace

from estuary.core import Policy, TimeSharing
from estuary.core.slowstart import expected_wait
from estuary.model import Reason, Snapshot

from .builders import admitted, cycle, make_job, make_nodes, make_pool, run, snapshot

HOUR = 3600.0
SHARING = Policy(time_sharing=TimeSharing(thresholds=(1 * HOUR, 10 * HOUR)))
KNOWN = Policy(time_sharing=TimeSharing(thresholds=(1 * HOUR, 10 * HOUR), known_work=True))
K80 = make_pool("k80", model="K80", throughput=0.25)
V100 = make_pool("v100", model="V100", throughput=1.0)
NODES = make_nodes("k", 1, gpus=1, pool="k80") + make_nodes("v", 1, gpus=1, pool="v100")


def _v100_busy_for(ran_h: float, now: float) -> Snapshot:
    """The single V100 runs a job that started `ran_h` hours before `now`."""
    busy = run(make_job("ns/busy", gpus=1), "v100", ["v1"], started=now - ran_h * HOUR)
    return snapshot([K80, V100], NODES, [busy])


def test_a_job_that_cannot_move_waits_for_its_fast_type_when_that_finishes_sooner() -> None:
    now = 10 * HOUR
    stuck = make_job("ns/stuck", gpus=1, preemptible=False, arrival=now)
    result = cycle(_v100_busy_for(2.0, now), stuck, now=now, policy=SHARING)
    assert admitted(result) == {}
    waiting = result.waiting["ns/stuck"]
    assert waiting.reason == Reason.CAPACITY
    # Its work is not known: 1 h of service (the first threshold), 4 h on a K80, 1 h on the V100,
    # which is expected free in 2 h (the busy job is expected to run as long again as it ran).
    assert waiting.message.startswith(
        "cannot move once started, so waits for V100 in pool v100 rather than start on K80 in pool "
        "k80: expected done in 3.00 h there (2.00 h wait, as its running jobs are expected to end, "
        "+ 1.00 h) vs 4.00 h here; work estimated as the first queue's threshold"
    )


def test_it_starts_on_the_slow_type_when_the_wait_would_cost_more() -> None:
    now = 10 * HOUR
    stuck = make_job("ns/stuck", gpus=1, preemptible=False, arrival=now)
    result = cycle(_v100_busy_for(5.0, now), stuck, now=now, policy=SHARING)
    assert admitted(result) == {"ns/stuck": ("k80", ("k1",))}  # 5 h + 1 h there > 4 h here


def test_declared_work_decides_when_the_policy_may_use_it() -> None:
    now = 10 * HOUR
    stuck = replace(make_job("ns/stuck", gpus=1, preemptible=False, arrival=now), work=10 * HOUR)
    busy = replace(make_job("ns/busy", gpus=1), work=6 * HOUR)
    snap = snapshot([K80, V100], NODES, [run(busy, "v100", ["v1"], started=now - HOUR)])
    result = cycle(snap, stuck, now=now, policy=KNOWN)
    # 40 h on the K80 against 5 h of wait (6 h declared, 1 h done) + 10 h on the V100.
    assert admitted(result) == {}
    assert "expected done in 15.00 h there (5.00 h wait" in result.waiting["ns/stuck"].message
    assert "vs 40.00 h here; work estimated as its declared work" in result.waiting["ns/stuck"].message


def test_jobs_that_can_move_and_policies_without_time_sharing_start_on_what_is_free() -> None:
    now = 10 * HOUR
    movable = replace(make_job("ns/movable", gpus=1, arrival=now), time_sharing=True)
    snap = _v100_busy_for(2.0, now)
    assert admitted(cycle(snap, movable, now=now, policy=SHARING)) == {"ns/movable": ("k80", ("k1",))}
    stuck = make_job("ns/stuck", gpus=1, preemptible=False, arrival=now)
    assert admitted(cycle(snap, stuck, now=now)) == {"ns/stuck": ("k80", ("k1",))}


def test_the_expected_wait_counts_free_accelerators_and_the_earliest_ends() -> None:
    ts = TimeSharing(thresholds=(1 * HOUR,))
    now = 10 * HOUR
    jobs = [
        run(make_job(f"ns/r{i}", gpus=1), "v100", [f"v{i}"], started=now - ran * HOUR)
        for i, ran in enumerate([3.0, 2.0, 8.0])
    ]
    assert expected_wait(1, 1, jobs, V100, now, ts) == 0.0  # one free already
    assert expected_wait(2, 1, jobs, V100, now, ts) == 2 * HOUR  # the earliest end: 2 h
    assert expected_wait(2, 0, jobs, V100, now, ts) == 3 * HOUR  # the two earliest: 2 h, 3 h
    assert expected_wait(3, 0, jobs, V100, now, ts) == 8 * HOUR
    assert expected_wait(4, 0, jobs, V100, now, ts) == float("inf")  # never, from these
    stopping = [replace(jobs[2], terminating=True)]
    assert expected_wait(1, 0, stopping, V100, now, ts) == ts.grace_s  # leaves within its grace
