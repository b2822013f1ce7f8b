"""Fair sharing of borrowable capacity: nominal first, then the lowest weighted borrowed share."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from estuary.core import Policy, pool_usage
from estuary.model import JobRequest, RunningJob, Snapshot

from .builders import (
    admitted,
    apply,
    cycle,
    finish,
    make_job,
    make_nodes,
    make_pool,
    quota,
    run,
    snapshot,
)


def test_jobs_within_nominal_go_before_borrowers_of_equal_priority() -> None:
    pool = make_pool(quotas={"physics": quota(0), "chem": quota(8)})
    snap = snapshot([pool], make_nodes("n", 1))
    result = cycle(
        snap,
        make_job("ns/borrower", tenant="physics", arrival=0),
        make_job("ns/owner", tenant="chem", arrival=5),
    )
    assert set(admitted(result)) == {"ns/owner"}


def test_priority_still_comes_before_nominal() -> None:
    pool = make_pool(quotas={"physics": quota(0), "chem": quota(8)})
    snap = snapshot([pool], make_nodes("n", 1))
    result = cycle(
        snap,
        make_job("ns/urgent", tenant="physics", priority=1),
        make_job("ns/owner", tenant="chem"),
        policy=Policy(preemption=False),
    )
    assert set(admitted(result)) == {"ns/urgent"}


def test_the_tenant_that_borrows_least_goes_first() -> None:
    pool = make_pool(quotas={"physics": quota(0), "chem": quota(0)})
    busy = [run(make_job("ns/p0", tenant="physics"), "h800", ["n1"])]
    snap = snapshot([pool], make_nodes("n", 2), busy)
    result = cycle(
        snap, make_job("ns/p1", tenant="physics", arrival=0), make_job("ns/c1", tenant="chem", arrival=9)
    )
    assert set(admitted(result)) == {"ns/c1"}


def test_weights_scale_the_share() -> None:
    pool = make_pool(quotas={"physics": quota(0, weight=3.0), "chem": quota(0, weight=1.0)})
    busy = [
        run(make_job("ns/p0", tenant="physics"), "h800", ["n1"]),
        run(make_job("ns/p1", tenant="physics"), "h800", ["n2"]),
        run(make_job("ns/c0", tenant="chem"), "h800", ["n3"]),
    ]
    snap = snapshot([pool], make_nodes("n", 4), busy)
    # physics borrows 16 / 3 = 5.3, chem 8 / 1 = 8: physics goes first despite arriving later
    result = cycle(
        snap, make_job("ns/c1", tenant="chem", arrival=0), make_job("ns/p2", tenant="physics", arrival=9)
    )
    assert set(admitted(result)) == {"ns/p2"}


def test_borrowing_a_faster_accelerator_counts_for_more() -> None:
    fast = make_pool("h800", throughput=4.0, quotas={"physics": quota(0), "chem": quota(0)})
    slow = make_pool("a800", model="A800", throughput=1.0, quotas={"physics": quota(0), "chem": quota(0)})
    nodes = make_nodes("h", 1, pool="h800") + make_nodes("a", 3, pool="a800")
    busy = [
        run(make_job("ns/p0", tenant="physics"), "h800", ["h1"]),  # share 8 x 4 = 32
        run(make_job("ns/c0", tenant="chem"), "a800", ["a1"]),  # share 8 x 1 = 8
        run(make_job("ns/c1", tenant="chem"), "a800", ["a2"]),
    ]  # share 16
    snap = snapshot([fast, slow], nodes, busy)
    result = cycle(
        snap, make_job("ns/p1", tenant="physics", arrival=0), make_job("ns/c2", tenant="chem", arrival=9)
    )
    assert set(admitted(result)) == {"ns/c2"}


def test_without_fair_sharing_the_queue_order_decides() -> None:
    pool = make_pool(quotas={"physics": quota(0), "chem": quota(8)})
    snap = snapshot([pool], make_nodes("n", 1))
    result = cycle(
        snap,
        make_job("ns/borrower", tenant="physics", arrival=0),
        make_job("ns/owner", tenant="chem", arrival=5),
        policy=Policy(fair_sharing=False, preemption=False),
    )
    assert set(admitted(result)) == {"ns/borrower"}


def _step(snap: Snapshot, pending: list[JobRequest], now: float) -> tuple[Snapshot, list[JobRequest]]:
    result = cycle(snap, *pending, now=now)
    snap = apply(snap, result, now, pending)
    done = {a.job_key for a in result.admissions}
    gone = [k for k, r in snap.running.items() if r.terminating]
    requeued = [snap.running[k].job for k in gone]
    snap = finish(snap, *gone)  # victims stop before the next cycle and go back to the queue
    return snap, [j for j in pending if j.key not in done] + requeued


@settings(max_examples=25, deadline=None)
@given(
    borrower_sizes=st.lists(st.sampled_from([1, 2, 4, 8]), min_size=4, max_size=12),
    owner_gpus=st.sampled_from([1, 2, 4, 8, 16]),
)
def test_no_tenant_starves_while_it_has_nominal_quota(borrower_sizes: list[int], owner_gpus: int) -> None:
    pool = make_pool(quotas={"owner": quota(16), "greedy": quota(0)})
    snap = snapshot([pool], make_nodes("n", 4))
    greedy = [make_job(f"ns/g{i}", gpus=g, tenant="greedy", arrival=i) for i, g in enumerate(borrower_sizes)]
    snap, pending = _step(snap, greedy, 0.0)
    workers, per = (owner_gpus // 8, 8) if owner_gpus > 8 else (1, owner_gpus)
    owner = make_job("ns/owner", workers=workers, gpus=per, tenant="owner", arrival=100.0)
    pending = [*pending, owner]
    for step in range(1, 4):
        snap, pending = _step(snap, pending, float(step))
        if "ns/owner" in snap.running:
            return
    raise AssertionError("the owner's job within its nominal quota never started")


@settings(max_examples=10, deadline=None)
@given(finish_order=st.lists(st.integers(min_value=0, max_value=1000), min_size=60, max_size=60))
def test_borrowed_shares_converge_toward_the_weights(finish_order: list[int]) -> None:
    pool = make_pool(quotas={"heavy": quota(0, weight=2.0), "light": quota(0, weight=1.0)})
    snap = snapshot([pool], make_nodes("n", 6))
    counter = 0

    def fresh(tenant: str, count: int) -> list[JobRequest]:
        nonlocal counter
        jobs = [
            make_job(f"ns/{tenant}{counter + i:03d}", tenant=tenant, arrival=float(counter + i))
            for i in range(count)
        ]
        counter += count
        return jobs

    pending = fresh("heavy", 6) + fresh("light", 6)
    ratios = []
    for step, pick in enumerate(finish_order):
        snap, pending = _step(snap, pending, float(step))
        usage = pool_usage(snap)["h800"].tenants
        heavy, light = usage["heavy"].borrowed, usage["light"].borrowed
        ratios.append(heavy / max(light, 1))
        running: list[RunningJob] = sorted(snap.running.values(), key=lambda r: r.job.key)
        done = running[pick % len(running)]
        snap = finish(snap, done.job.key)
        pending += fresh(done.job.tenant, 1)  # keep both tenants' queues full
    tail = ratios[20:]
    assert all(1.0 <= r <= 4.0 for r in tail)
    assert abs(sum(tail) / len(tail) - 2.0) < 0.5
