"""Placement across accepted types: which pool a job lands on under each `Policy.type_choice`."""

from __future__ import annotations

import pytest

from estuary.core import Policy
from estuary.core.policy import TypeChoice
from estuary.model import AcceptedType, PoolSpec, Reason

from .builders import ASCEND, admitted, ascend_pool, cycle, make_job, make_nodes, make_pool, run, snapshot

POOLS = [
    make_pool("h800", model="H800", throughput=2.0, cost=3.0),
    make_pool("a800", model="A800", throughput=1.0, cost=1.0),
    ascend_pool("ascend-910b", throughput=1.5),
]
NODES = (
    make_nodes("h", 1, pool="h800")
    + make_nodes("a", 3, pool="a800")
    + make_nodes("c", 2, pool="ascend-910b", resource=ASCEND)
)
ACCEPTS = (AcceptedType("huawei"), AcceptedType("nvidia"))
H800_BUSY = [run(make_job("ns/busy", tenant="chem"), "h800", ["h1"])]


@pytest.mark.parametrize(
    ("choice", "h800_busy", "expected"),
    [
        ("fastest", False, "h800"),
        ("fastest", True, "ascend-910b"),
        ("preference", False, "ascend-910b"),
        ("any_free", False, "a800"),
        ("wait_fastest", False, "h800"),
        ("wait_fastest", True, None),
    ],
)
def test_each_type_choice_picks_its_pool(choice: TypeChoice, h800_busy: bool, expected: str | None) -> None:
    snap = snapshot(POOLS, NODES, H800_BUSY if h800_busy else [])
    result = cycle(snap, make_job("ns/a", accepts=ACCEPTS), policy=Policy(type_choice=choice))
    if expected is None:
        assert not result.admissions
        assert result.waiting["ns/a"].reason == Reason.CAPACITY
        assert [v.pool for v in result.waiting["ns/a"].verdicts] == ["h800"]
    else:
        assert admitted(result)["ns/a"][0] == expected


def test_a_throughput_hint_on_the_job_overrides_the_pool_figure() -> None:
    accepts = (AcceptedType("nvidia"), AcceptedType("huawei", throughput=4.0))
    result = cycle(snapshot(POOLS, NODES), make_job("ns/a", accepts=accepts))
    assert admitted(result)["ns/a"][0] == "ascend-910b"


def test_an_accepted_model_restricts_the_vendor_to_that_model() -> None:
    accepts = (AcceptedType("nvidia", "a800"),)
    result = cycle(snapshot(POOLS, NODES), make_job("ns/a", accepts=accepts))
    assert admitted(result)["ns/a"][0] == "a800"


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        (make_pool("b-pool", model="H800", throughput=2.0, cost=1.0), "b-pool"),  # cheaper wins the tie
        (make_pool("b-pool", model="H800", throughput=2.0, cost=3.0), "b-pool"),  # same cost: "b" < "h"
        (make_pool("z-pool", model="H800", throughput=2.0, cost=3.0), "h800"),
    ],
)
def test_equal_runtimes_are_broken_by_cost_then_pool_name(second: PoolSpec, expected: str) -> None:
    pools = [POOLS[0], second]
    nodes = make_nodes("h", 1, pool="h800") + make_nodes("x", 1, pool=second.name)
    result = cycle(snapshot(pools, nodes), make_job("ns/a"))
    assert admitted(result)["ns/a"][0] == expected


def test_equal_runtimes_prefer_the_users_order_before_cost() -> None:
    pools = [make_pool("h800", throughput=1.0, cost=5.0), ascend_pool(throughput=1.0, cost=1.0)]
    nodes = make_nodes("h", 1, pool="h800") + make_nodes("c", 1, pool="ascend-910b", resource=ASCEND)
    accepts = (AcceptedType("nvidia"), AcceptedType("huawei"))
    assert admitted(cycle(snapshot(pools, nodes), make_job("ns/a", accepts=accepts)))["ns/a"][0] == "h800"


def test_no_pool_for_any_accepted_type_says_so() -> None:
    result = cycle(snapshot(POOLS, NODES), make_job("ns/a", accepts=("cambricon",)))
    assert result.waiting["ns/a"].reason == Reason.NO_POOL
    assert "cambricon/any" in result.waiting["ns/a"].message


def test_verdicts_list_every_allowed_pool_with_its_runtime_factor() -> None:
    full = [
        run(make_job(f"ns/b{i}", tenant="chem"), p, [n])
        for i, (p, n) in enumerate(
            [
                ("h800", "h1"),
                ("a800", "a1"),
                ("a800", "a2"),
                ("a800", "a3"),
                ("ascend-910b", "c1"),
                ("ascend-910b", "c2"),
            ]
        )
    ]
    result = cycle(snapshot(POOLS, NODES, full), make_job("ns/a", accepts=ACCEPTS))
    verdicts = result.waiting["ns/a"].verdicts
    assert [(v.pool, round(v.est_runtime_factor, 3)) for v in verdicts] == [
        ("h800", 0.5),
        ("ascend-910b", 0.667),
        ("a800", 1.0),
    ]
    assert all(not v.fits and v.reason == Reason.CAPACITY for v in verdicts)
