"""Queue order, backfill, strict FIFO, positions and the starvation guard."""

from __future__ import annotations

from estuary.core import Policy
from estuary.model import Reason, RunningJob

from .builders import admitted, cycle, make_job, make_nodes, make_pool, run, snapshot

FIFO = Policy(backfill=False, fair_sharing=False)


def test_higher_priority_goes_first_then_earlier_arrival_then_key() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 1))
    jobs = [
        make_job("ns/late-urgent", priority=5, arrival=9),
        make_job("ns/b", arrival=1),
        make_job("ns/a", arrival=1),
        make_job("ns/early", arrival=0),
    ]
    result = cycle(snap, *jobs)
    assert list(admitted(result)) == ["ns/late-urgent"]
    assert [(k, w.position) for k, w in result.waiting.items()] == [("ns/early", 1), ("ns/a", 2), ("ns/b", 3)]


def test_every_pending_job_not_admitted_has_a_waiting_entry() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 2))
    jobs = [make_job(f"ns/j{i}", arrival=i) for i in range(5)]
    result = cycle(snap, *jobs)
    assert set(admitted(result)) | set(result.waiting) == {j.key for j in jobs}
    assert not set(admitted(result)) & set(result.waiting)


def test_a_key_listed_twice_counts_once() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 2))
    result = cycle(snap, make_job("ns/a"), make_job("ns/a"))
    assert [a.job_key for a in result.admissions] == ["ns/a"]


def test_backfill_lets_a_small_job_pass_a_blocked_big_one() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 2), [run(make_job("ns/x", tenant="chem"), "h800", ["n1"])])
    result = cycle(snap, make_job("ns/big", workers=2, priority=1), make_job("ns/small", arrival=1))
    assert admitted(result) == {"ns/small": ("h800", ("n2",))}
    assert result.waiting["ns/big"].reason == Reason.CAPACITY


def test_strict_fifo_blocks_everything_behind_a_blocked_job() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 2), [run(make_job("ns/x", tenant="chem"), "h800", ["n1"])])
    result = cycle(
        snap,
        make_job("ns/big", workers=2),
        make_job("ns/s1", arrival=1),
        make_job("ns/s2", arrival=2),
        policy=FIFO,
    )
    assert not result.admissions
    assert result.waiting["ns/s2"].reason == Reason.PRIORITY
    assert result.waiting["ns/s2"].message.startswith(
        "behind 1 job ahead in the queue that cannot start (first: ns/big)"
    )


def test_strict_fifo_does_not_block_on_jobs_that_can_never_run_here() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 2))
    result = cycle(snap, make_job("ns/huge", workers=3), make_job("ns/ok", arrival=1), policy=FIFO)
    assert result.waiting["ns/huge"].reason == Reason.NEVER_FITS
    assert "ns/ok" in admitted(result)


def _busy_cluster() -> list[RunningJob]:
    # n1..n4: n1 and n2 full, n3 and n4 half used; a gang of 2 whole nodes cannot start
    return [
        run(make_job("ns/f1", tenant="chem"), "h800", ["n1"]),
        run(make_job("ns/f2", tenant="chem"), "h800", ["n2"]),
        run(make_job("ns/h3", gpus=4, tenant="chem"), "h800", ["n3"]),
        run(make_job("ns/h4", gpus=4, tenant="chem", arrival=1), "h800", ["n4"], started=5.0),
    ]


def test_before_the_starvation_threshold_small_jobs_backfill_freely() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 4), _busy_cluster())
    head = make_job("ns/gang", workers=2, arrival=0)
    result = cycle(snap, head, make_job("ns/small", gpus=4, arrival=1), now=299.0)
    assert "ns/small" in admitted(result)


def test_a_starving_head_reserves_nodes_and_later_jobs_wait_behind_it() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 4), _busy_cluster())
    head = make_job("ns/gang", workers=2, arrival=0)
    result = cycle(snap, head, make_job("ns/small", gpus=4, arrival=1), now=300.0)
    assert not result.admissions
    assert "2 nodes of pool h800 are reserved for it" in result.waiting["ns/gang"].message
    small = result.waiting["ns/small"]
    assert small.reason == Reason.PRIORITY
    assert "reserved for ns/gang" in small.message


def test_a_reservation_leaves_other_nodes_to_backfill() -> None:
    nodes = make_nodes("n", 5)
    snap = snapshot([make_pool()], nodes, _busy_cluster())
    # n5 is empty: the head reserves the emptiest nodes (n5, then n3 by name), n4 stays usable
    result = cycle(snap, make_job("ns/gang", workers=2), make_job("ns/small", gpus=4, arrival=1), now=1000.0)
    assert admitted(result) == {"ns/small": ("h800", ("n4",))}


def test_only_the_first_starving_job_reserves_in_a_pool() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 4), _busy_cluster())
    first = make_job("ns/gang1", workers=2, arrival=0)
    second = make_job("ns/gang2", workers=2, arrival=1)
    result = cycle(snap, first, second, now=1000.0)
    assert "reserved for it" in result.waiting["ns/gang1"].message
    assert "reserved for it" not in result.waiting["ns/gang2"].message
    assert result.waiting["ns/gang2"].reason == Reason.CAPACITY  # it would not fit without it either


def test_strict_fifo_makes_no_reservations() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 4), _busy_cluster())
    result = cycle(snap, make_job("ns/gang", workers=2), now=1000.0, policy=FIFO)
    assert "reserved" not in result.waiting["ns/gang"].message


def test_quota_blocked_jobs_do_not_reserve() -> None:
    from .builders import quota

    pool = make_pool(quotas={"physics": quota(0, borrowing_limit=0), "*": quota(64)})
    snap = snapshot([pool], make_nodes("n", 4), _busy_cluster())
    result = cycle(
        snap,
        make_job("ns/gang", workers=2),
        make_job("ns/small", gpus=4, tenant="chem", arrival=1),
        now=1000.0,
    )
    assert result.waiting["ns/gang"].reason == Reason.QUOTA
    assert "ns/small" in admitted(result)
