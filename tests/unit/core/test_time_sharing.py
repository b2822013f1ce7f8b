"""Time-sharing by attained service (core/attained.py) and migration to faster types (core/migrate.py)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from estuary.core import Policy, TimeSharing
from estuary.model import AcceptedType, JobRequest, Reason, RunningJob

from .builders import admitted, cycle, make_job, make_nodes, make_pool, quota, run, snapshot

HOUR = 3600.0
SHARING = Policy(time_sharing=TimeSharing(thresholds=(1 * HOUR, 10 * HOUR), min_slice_s=1200.0))
K80 = make_pool("k80", model="K80", throughput=0.25)
V100 = make_pool("v100", model="V100", throughput=1.0)


def shared(key: str, **kwargs: object) -> JobRequest:
    return replace(make_job(key, gpus=1, **kwargs), time_sharing=True)  # type: ignore[arg-type]


def one_v100_node() -> list:  # type: ignore[type-arg]
    return make_nodes("v", 1, gpus=1, pool="v100")


def test_a_new_job_takes_its_turn_from_a_long_one_with_the_numbers() -> None:
    long = run(shared("ns/long"), "v100", ["v1"], started=0.0)
    snap = snapshot([V100], one_v100_node(), [long])
    result = cycle(snap, shared("ns/short", arrival=2 * HOUR), now=2 * HOUR, policy=SHARING)
    assert [(p.victim_key, p.preemptor_key, p.reason) for p in result.preemptions] == [
        ("ns/long", "ns/short", "Service")
    ]
    message = result.preemptions[0].message
    assert "ns/short (queue 0, 0.00 h attained)" in message
    assert "(queue 1, 2.00 h attained; ran 2.00 h since its last start)" in message
    assert result.waiting["ns/short"].reason == Reason.PREEMPTING


def test_without_time_sharing_the_long_job_runs_to_completion() -> None:
    long = run(shared("ns/long"), "v100", ["v1"], started=0.0)
    snap = snapshot([V100], one_v100_node(), [long])
    result = cycle(snap, shared("ns/short", arrival=2 * HOUR), now=2 * HOUR)
    assert not result.preemptions
    assert result.waiting["ns/short"].reason == Reason.CAPACITY


def test_a_job_keeps_its_slice_and_its_level() -> None:
    # Ran 10 minutes (under the 20-minute slice), then: same level as the newcomer.
    snap = snapshot([V100], one_v100_node(), [run(shared("ns/a"), "v100", ["v1"], started=0.0)])
    assert not cycle(snap, shared("ns/b"), now=600.0, policy=SHARING).preemptions
    # Past its slice but still in queue 0 (under 1 h of service): no turn is taken either.
    assert not cycle(snap, shared("ns/b"), now=1800.0, policy=SHARING).preemptions


def test_jobs_that_did_not_opt_in_or_are_not_preemptible_are_never_touched() -> None:
    for job in (make_job("ns/long", gpus=1), replace(shared("ns/long"), preemptible=False)):
        snap = snapshot([V100], one_v100_node(), [run(job, "v100", ["v1"], started=0.0)])
        result = cycle(snap, shared("ns/short"), now=20 * HOUR, policy=SHARING)
        assert not result.preemptions and not result.migrations


def test_reclaim_among_jobs_that_did_not_opt_in_evicts_as_without_time_sharing() -> None:
    """Quota reclaim picks the most recently started borrower whether or not the policy shares
    time: the Service rule's order (most served first) applies to opted-in jobs only."""
    pool = replace(V100, quotas={"physics": quota(0, borrowing_limit=3), "chem": quota(3)})
    borrowers = [
        run(make_job(f"ns/p{i}", gpus=1), "v100", [f"v{i + 1}"], started=100.0 * i) for i in range(3)
    ]
    snap = snapshot([pool], make_nodes("v", 3, gpus=1, pool="v100"), borrowers)
    reclaimer = make_job("ns/c0", gpus=1, tenant="chem", arrival=1000.0)
    for policy in (Policy(), SHARING):
        result = cycle(snap, reclaimer, now=20 * HOUR, policy=policy)
        assert [(p.victim_key, p.reason) for p in result.preemptions] == [("ns/p2", "Reclaim")], policy


def test_turns_stay_within_a_tenant_where_the_pool_has_quotas_and_within_a_priority() -> None:
    pool = replace(V100, quotas={"physics": quota(1), "chem": quota(1)})
    long = run(shared("ns/long", tenant="chem"), "v100", ["v1"], started=0.0)
    snap = snapshot([pool], one_v100_node(), [long])
    assert not cycle(snap, shared("ns/short"), now=20 * HOUR, policy=SHARING).preemptions
    snap = snapshot([V100], one_v100_node(), [run(shared("ns/long", priority=1), "v100", ["v1"])])
    assert not cycle(snap, shared("ns/short"), now=20 * HOUR, policy=SHARING).preemptions


def test_the_least_served_job_comes_first_and_a_starving_one_is_promoted() -> None:
    snap = snapshot([V100], one_v100_node())
    served = replace(shared("ns/old", arrival=0.0), attained=2 * HOUR, queued_since=10 * HOUR)
    fresh = shared("ns/new", arrival=5 * HOUR)
    result = cycle(snap, served, fresh, now=10 * HOUR, policy=SHARING)
    assert admitted(result) == {"ns/new": ("v100", ("v1",))}
    # It has waited 4x its 2 h of run time since it queued: back to queue 0, first by arrival.
    result = cycle(snap, served, fresh, now=18 * HOUR, policy=SHARING)
    assert admitted(result) == {"ns/old": ("v100", ("v1",))}


def _on_k80(attained: float, started: float = 0.0) -> RunningJob:
    job = replace(
        make_job("ns/slow", gpus=1, accepts=(AcceptedType("nvidia", "K80"), AcceptedType("nvidia", "V100"))),
        time_sharing=True,
        attained=attained,
    )
    return run(job, "k80", ["k1"], started=started)


def test_a_long_job_moves_to_the_fast_type_when_it_frees_and_says_why() -> None:
    nodes = make_nodes("k", 1, gpus=1, pool="k80") + one_v100_node()
    snap = snapshot([K80, V100], nodes, [_on_k80(attained=0.0)])
    result = cycle(snap, now=4 * HOUR, policy=SHARING)
    assert [(m.job_key, m.source_pool, m.assignment.pool) for m in result.migrations] == [
        ("ns/slow", "k80", "v100")
    ]
    # 1 h of service at speed 0.25 in 4 h; as much again is expected: 4 h left on k80, 1 h on v100.
    assert result.migrations[0].message.startswith(
        "moves from k80 to v100: 4.00 h left on k80 vs 1.00 h on v100, the move costs 0.03 h"
    )


def test_no_move_when_it_does_not_pay_or_within_the_slice_or_into_a_busy_pool() -> None:
    nodes = make_nodes("k", 1, gpus=1, pool="k80") + one_v100_node()
    barely = TimeSharing(min_slice_s=60.0, checkpoint_interval_s=600.0)
    snap = snapshot([K80, V100], nodes, [_on_k80(attained=0.0)])
    # 2 minutes on k80: 0.5 service-minutes; saves ~1.5 min, costs 1.5 min + the lost 2 min.
    assert not cycle(snap, now=120.0, policy=Policy(time_sharing=barely)).migrations
    assert not cycle(snap, now=600.0, policy=SHARING).migrations  # within its 20-minute slice
    busy = run(make_job("ns/v", gpus=1), "v100", ["v1"])
    snap = snapshot([K80, V100], nodes, [_on_k80(attained=0.0), busy])
    assert not cycle(snap, now=4 * HOUR, policy=SHARING).migrations


def test_a_pending_job_takes_free_room_before_any_move() -> None:
    nodes = make_nodes("k", 1, gpus=1, pool="k80") + one_v100_node()
    snap = snapshot([K80, V100], nodes, [_on_k80(attained=0.0)])
    result = cycle(snap, shared("ns/new"), now=4 * HOUR, policy=SHARING)
    assert admitted(result) == {"ns/new": ("v100", ("v1",))}
    assert not result.migrations


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.booleans(),
            st.integers(0, 1),
            st.floats(0, 30 * HOUR),
            st.sampled_from(["a", "b"]),
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(1, 4),
    st.booleans(),
)
def test_guarantees_hold_under_time_sharing(
    running: list[tuple[bool, bool, int, float, str]], newcomers: int, quotas: bool
) -> None:
    """Non-opted-in and non-preemptible jobs are never victims nor moved; a Service turn never
    crosses priorities, nor tenants in a pool with quotas; every move is to a faster type."""
    pools = [K80, replace(V100, quotas={"a": quota(2), "b": quota(2)} if quotas else {})]
    nodes = make_nodes("k", 3, gpus=2, pool="k80") + make_nodes("v", 2, gpus=2, pool="v100")
    names = [n.name for n in nodes]
    jobs = []
    for i, (opted, preemptible, priority, started, tenant) in enumerate(running):
        job = make_job(f"ns/r{i}", gpus=1, tenant=tenant, priority=priority, preemptible=preemptible)
        job = replace(job, time_sharing=opted, accepted=(AcceptedType("nvidia"),))
        node = names[i % len(names)]
        jobs.append(run(job, "k80" if node.startswith("k") else "v100", [node], started=started))
    snap = snapshot(pools, nodes, jobs)
    pending = [shared(f"ns/p{i}", tenant="ab"[i % 2], arrival=float(i)) for i in range(newcomers)]
    now = 40 * HOUR
    result = cycle(snap, *pending, now=now, policy=SHARING)
    by_key = {r.job.key: r for r in jobs}
    by_pending = {p.key: p for p in pending}
    for p in result.preemptions:
        victim = by_key[p.victim_key]
        assert victim.job.preemptible
        if p.reason == "Service":
            assert victim.job.time_sharing
            assert victim.job.priority == by_pending[p.preemptor_key].priority
            if victim.assignment.pool == "v100" and quotas:
                assert victim.job.tenant == by_pending[p.preemptor_key].tenant
    moved = {m.job_key for m in result.migrations}
    assert moved.isdisjoint(p.victim_key for p in result.preemptions)
    for m in result.migrations:
        mover = by_key[m.job_key]
        assert mover.job.time_sharing and mover.job.preemptible
        assert (m.source_pool, m.assignment.pool) == ("k80", "v100")


def test_a_job_takes_its_turn_where_its_advantage_is_largest_not_simply_on_the_fastest_type() -> None:
    nodes = make_nodes("k", 1, gpus=1, pool="k80") + one_v100_node()
    long_k80 = run(shared("ns/long-k80"), "k80", ["k1"], started=0.0)
    long_v100 = run(shared("ns/long-v100"), "v100", ["v1"], started=0.0)
    snap = snapshot([K80, V100], nodes, [long_k80, long_v100])

    def newcomer(k80_speed: float) -> JobRequest:
        accepts = (AcceptedType("nvidia", "K80", k80_speed), AcceptedType("nvidia", "V100", 1.0))
        return replace(make_job("ns/new", gpus=1, accepts=accepts, arrival=20 * HOUR), time_sharing=True)

    # K80s typically run at 0.25 of a V100; this job runs at 0.8 there: its turn goes on the K80,
    # leaving the V100 to a job that gains more from it.
    result = cycle(snap, newcomer(0.8), now=20 * HOUR, policy=SHARING)
    assert [(p.victim_key, p.reason) for p in result.preemptions] == [("ns/long-k80", "Service")]
    # A typical job (0.2 on a K80) takes its turn on the V100, as before.
    result = cycle(snap, newcomer(0.2), now=20 * HOUR, policy=SHARING)
    assert [(p.victim_key, p.reason) for p in result.preemptions] == [("ns/long-v100", "Service")]
