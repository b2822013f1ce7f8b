"""Gang admission at node level: all workers on concrete nodes at once, or nothing."""

from __future__ import annotations

import pytest

from estuary.model import Reason, Taint, Toleration

from .builders import (
    GI,
    admitted,
    ascend_pool,
    cycle,
    make_job,
    make_node,
    make_nodes,
    make_pool,
    run,
    snapshot,
)

TAINT = Taint("estuary.dev/accelerator", "nvidia")


def test_gang_of_four_never_splits_across_pools() -> None:
    pools = [make_pool("h800"), make_pool("a800", model="A800")]
    nodes = make_nodes("h", 2, pool="h800") + make_nodes("a", 2, pool="a800")
    result = cycle(snapshot(pools, nodes), make_job("ns/four", workers=4))
    assert not result.admissions
    assert result.waiting["ns/four"].reason == Reason.NEVER_FITS
    assert len(result.waiting["ns/four"].verdicts) == 2


def test_a_gang_that_does_not_fit_holds_nothing_and_a_smaller_job_runs() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 3))
    busy = run(make_job("ns/busy", gpus=8, tenant="chem"), "h800", ["n1"])
    snap = snapshot([make_pool()], make_nodes("n", 3), [busy])
    result = cycle(snap, make_job("ns/gang", workers=3), make_job("ns/one", arrival=1))
    assert admitted(result) == {"ns/one": ("h800", ("n2",))}
    assert result.waiting["ns/gang"].message == "needs 3 nodes with 8 free nvidia.com/gpu; pool h800 has 2"


def test_several_workers_share_a_node_with_adjacent_ranks() -> None:
    result = cycle(snapshot([make_pool()], make_nodes("n", 2)), make_job("ns/a", workers=6, gpus=2))
    assert admitted(result)["ns/a"][1] == ("n1", "n1", "n1", "n1", "n2", "n2")


def test_later_jobs_in_a_cycle_see_earlier_admissions() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 2))
    jobs = [make_job(f"ns/j{i}", gpus=8, arrival=i) for i in range(3)]
    result = cycle(snap, *jobs)
    assert admitted(result) == {"ns/j0": ("h800", ("n1",)), "ns/j1": ("h800", ("n2",))}
    assert result.waiting["ns/j2"].message == "needs 1 node with 8 free nvidia.com/gpu; pool h800 has 0"


@pytest.mark.parametrize(
    ("pool_tolerates", "job_tolerates", "fits"),
    [(True, False, True), (False, True, True), (False, False, False)],
)
def test_node_taints_must_be_tolerated_by_the_pool_or_the_job(
    pool_tolerates: bool, job_tolerates: bool, fits: bool
) -> None:
    toleration = (Toleration(TAINT.key, "Equal", TAINT.value),)
    pool = make_pool(tolerations=toleration if pool_tolerates else ())
    job = make_job("ns/a", tolerations=toleration if job_tolerates else ())
    result = cycle(snapshot([pool], [make_node("n1", taints=(TAINT,))]), job)
    assert bool(result.admissions) is fits
    if not fits:
        assert result.waiting["ns/a"].reason == Reason.SELECTOR
        assert "estuary.dev/accelerator=nvidia:NoSchedule on n1" in result.waiting["ns/a"].message


def test_the_job_node_selector_must_match_node_labels() -> None:
    nodes = [make_node("n1"), make_node("n2", labels={"ib": "hdr"})]
    result = cycle(snapshot([make_pool()], nodes), make_job("ns/a", node_selector={"ib": "hdr"}))
    assert admitted(result) == {"ns/a": ("h800", ("n2",))}
    missing = cycle(snapshot([make_pool()], nodes), make_job("ns/b", node_selector={"ib": "ndr"}))
    assert missing.waiting["ns/b"].reason == Reason.SELECTOR
    assert "ib=ndr" in missing.waiting["ns/b"].message


def test_cpu_and_memory_must_fit_on_the_node_too() -> None:
    nodes = [make_node("n1", cpu=16_000), make_node("n2", cpu=64_000)]
    result = cycle(snapshot([make_pool()], nodes), make_job("ns/a", cpu=32_000, memory=64 * GI))
    assert admitted(result) == {"ns/a": ("h800", ("n2",))}


def test_cpu_beyond_every_node_is_reported_as_a_selector_problem() -> None:
    result = cycle(snapshot([make_pool()], [make_node("n1", cpu=16_000)]), make_job("ns/a", cpu=32_000))
    assert result.waiting["ns/a"].reason == Reason.SELECTOR
    assert "32 CPU" in result.waiting["ns/a"].message


def test_best_fit_fills_the_most_used_node_and_leaves_empty_nodes_empty() -> None:
    half = run(make_job("ns/half", gpus=4, tenant="chem"), "h800", ["n2"])
    snap = snapshot([make_pool()], make_nodes("n", 3), [half])
    result = cycle(snap, make_job("ns/small", gpus=2))
    assert admitted(result) == {"ns/small": ("h800", ("n2",))}


def test_a_gang_uses_the_fewest_nodes() -> None:
    half = run(make_job("ns/half", gpus=4, tenant="chem"), "h800", ["n1"])
    snap = snapshot([make_pool()], make_nodes("n", 3), [half])
    result = cycle(snap, make_job("ns/a", workers=4, gpus=2))
    assert admitted(result) == {"ns/a": ("h800", ("n1", "n1"))} or admitted(result)["ns/a"][1] == (
        "n2",
        "n2",
        "n2",
        "n2",
    )


def test_the_last_node_of_a_gang_is_the_tightest_fit() -> None:
    # n1 empty (room for 4), n2 has 4 free (room for 2), n3 has 2 free (room for 1): 5 workers of 2
    # take n1 whole and then the node that holds exactly one more, n3, leaving n2's 4 free.
    load = [
        run(make_job("ns/l2", gpus=4, tenant="chem"), "h800", ["n2"]),
        run(make_job("ns/l3", gpus=6, tenant="chem"), "h800", ["n3"]),
    ]
    snap = snapshot([make_pool()], make_nodes("n", 3), load)
    result = cycle(snap, make_job("ns/a", workers=5, gpus=2))
    assert admitted(result)["ns/a"][1] == ("n1", "n1", "n1", "n1", "n3")


def test_a_gang_prefers_a_single_rack() -> None:
    nodes = [
        make_node("a1", rack="r1"),
        make_node("b1", rack="r2"),
        make_node("b2", rack="r2"),
        make_node("c1", rack="r3"),
    ]
    result = cycle(snapshot([make_pool()], nodes), make_job("ns/a", workers=2))
    assert admitted(result)["ns/a"][1] == ("b1", "b2")


def test_among_racks_the_least_leftover_wins() -> None:
    nodes = [
        make_node("a1", rack="r1"),
        make_node("a2", rack="r1"),
        make_node("b1", rack="r2"),
        make_node("b2", rack="r2"),
    ]
    load = [run(make_job("ns/l", gpus=4, tenant="chem"), "h800", ["b1"])]
    result = cycle(snapshot([make_pool()], nodes, load), make_job("ns/a", workers=3, gpus=4))
    # both racks need 2 nodes; r1 would leave 4 free on a2, r2 fills b2 and b1 exactly
    assert admitted(result)["ns/a"][1] == ("b2", "b2", "b1")


def test_among_equal_racks_the_name_decides() -> None:
    nodes = [make_node(n, rack=r) for n, r in [("x1", "r2"), ("x2", "r2"), ("y1", "r1"), ("y2", "r1")]]
    result = cycle(snapshot([make_pool()], nodes), make_job("ns/a", workers=2))
    assert admitted(result)["ns/a"][1] == ("y1", "y2")


def test_a_gang_falls_back_to_a_single_zone_then_to_the_whole_pool() -> None:
    nodes = [
        make_node("a1", rack="r1", zone="z1"),
        make_node("a2", rack="r2", zone="z1"),
        make_node("b1", rack="r3", zone="z2"),
        make_node("c1", rack="r4", zone="z3"),
    ]
    zone = cycle(snapshot([make_pool()], nodes), make_job("ns/a", workers=2))
    assert admitted(zone)["ns/a"][1] == ("a1", "a2")
    whole = cycle(snapshot([make_pool()], nodes), make_job("ns/b", workers=3))
    assert admitted(whole)["ns/b"][1] == ("a1", "a2", "b1")


@pytest.mark.parametrize(
    ("workers", "gpus", "reason", "message"),
    [
        (
            2,
            8,
            Reason.FRAGMENTED,
            "18 free nvidia.com/gpu in pool h800 but at most 6 on any node; each worker needs 8",
        ),
        (
            1,
            7,
            Reason.FRAGMENTED,
            "18 free nvidia.com/gpu in pool h800 but at most 6 on any node; each worker needs 7",
        ),
        (3, 7, Reason.CAPACITY, "needs 3 nodes with 7 free nvidia.com/gpu; pool h800 has 0"),
        (6, 4, Reason.CAPACITY, "needs 24 free nvidia.com/gpu (6 workers x 4); pool h800 has 18"),
        (
            4,
            4,
            Reason.FRAGMENTED,
            "18 free nvidia.com/gpu in pool h800, but room for only 3 of 4 workers with 4 each",
        ),
        (
            7,
            3,
            Reason.NEVER_FITS,
            "needs 7 workers with 3 nvidia.com/gpu; pool h800 holds at most 6 even when "
            "empty (3 eligible nodes, up to 8 nvidia.com/gpu each)",
        ),
    ],
)
def test_waiting_messages_name_the_binding_limit_with_numbers(
    workers: int, gpus: int, reason: Reason, message: str
) -> None:
    load = [run(make_job(f"ns/l{i}", gpus=2, tenant="chem"), "h800", [f"n{i}"]) for i in (1, 2, 3)]
    snap = snapshot([make_pool(), ascend_pool()], make_nodes("n", 3), load)
    result = cycle(snap, make_job("ns/a", workers=workers, gpus=gpus))
    assert (result.waiting["ns/a"].reason, result.waiting["ns/a"].message) == (reason, message)
