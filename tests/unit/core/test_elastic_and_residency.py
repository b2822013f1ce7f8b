"""Elastic jobs start smaller rather than wait; residency keeps data where it must stay."""

from __future__ import annotations

from estuary.core import explain
from estuary.model import Reason

from .builders import admitted, cycle, make_job, make_nodes, make_pool, quota, run, snapshot


def test_an_elastic_job_starts_with_the_largest_count_that_fits() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 3))
    result = cycle(snap, make_job("ns/e", workers=4, min_workers=2))
    assert admitted(result)["ns/e"][1] == ("n1", "n2", "n3")
    assert "elastic: 3 of 4" in result.admissions[0].reason


def test_an_elastic_job_waits_when_not_even_min_workers_fit() -> None:
    busy = [run(make_job(f"ns/b{i}", tenant="chem"), "h800", [f"n{i}"]) for i in (1, 2)]
    snap = snapshot([make_pool()], make_nodes("n", 3), busy)
    result = cycle(snap, make_job("ns/e", workers=4, min_workers=2))
    assert (
        result.waiting["ns/e"].message == "needs at least 2 nodes with 8 free nvidia.com/gpu; pool h800 has 1"
    )


def test_quota_caps_an_elastic_job_and_never_is_exceeded() -> None:
    pool = make_pool(quotas={"physics": quota(16, borrowing_limit=0)})
    result = cycle(snapshot([pool], make_nodes("n", 4)), make_job("ns/e", workers=4, min_workers=1))
    assert len(admitted(result)["ns/e"][1]) == 2


def test_a_full_gang_is_preferred_to_a_partial_one() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 4))
    assert len(admitted(cycle(snap, make_job("ns/e", workers=4, min_workers=1)))["ns/e"][1]) == 4


def test_residency_forbids_running_outside_the_jurisdiction() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 2), jurisdiction="hk")
    result = cycle(
        snap,
        make_job("ns/m", residency="mainland"),
        make_job("ns/h", residency="hk", arrival=1),
        make_job("ns/any", arrival=2),
    )
    assert set(admitted(result)) == {"ns/h", "ns/any"}
    assert result.waiting["ns/m"].reason == Reason.RESIDENCY
    assert result.waiting["ns/m"].message == "data must stay in mainland; this cluster is in hk"
    assert explain(snap, make_job("ns/m", residency="mainland"), 0.0)[0].reason == Reason.RESIDENCY


def test_without_a_jurisdiction_residency_is_not_checked() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 1))
    assert admitted(cycle(snap, make_job("ns/m", residency="mainland")))


def test_an_elastic_job_takes_its_full_gang_on_a_slower_pool_before_shrinking_on_a_faster_one() -> None:
    pools = [make_pool("h800", throughput=2.0), make_pool("a800", model="A800")]
    nodes = make_nodes("h", 2, pool="h800") + make_nodes("a", 4, pool="a800")
    result = cycle(snapshot(pools, nodes), make_job("ns/e", workers=4, min_workers=2))
    assert admitted(result)["ns/e"] == ("a800", ("a1", "a2", "a3", "a4"))


def test_residency_verdicts_cover_every_accepted_pool() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 1), jurisdiction="hk")
    verdicts = cycle(snap, make_job("ns/m", residency="mainland")).waiting["ns/m"].verdicts
    assert [(v.pool, v.reason) for v in verdicts] == [("h800", Reason.RESIDENCY)]
