"""ComputePool status numbers (`pool_usage`) and per-pool verdicts for one job (`explain`)."""

from __future__ import annotations

from estuary.core import PoolUsage, TenantUsage, explain, pool_usage
from estuary.model import AcceptedType, Reason

from .builders import (
    ASCEND,
    GPU,
    ascend_pool,
    make_job,
    make_node,
    make_nodes,
    make_pool,
    quota,
    run,
    snapshot,
)


def test_pool_usage_counts_capacity_health_allocation_and_tenants() -> None:
    pool = make_pool(quotas={"physics": quota(8), "chem": quota(16), "bio": quota(0)})
    nodes = [*make_nodes("n", 3), make_node("sick", unhealthy=2), make_node("down", ready=False)]
    running = [
        run(make_job("ns/p", workers=2, tenant="physics"), "h800", ["n1", "n2"]),  # borrows 8
        run(make_job("ns/c", gpus=4, tenant="chem"), "h800", ["n3"]),
    ]
    snap = snapshot([pool], nodes, running, foreign={"sick": {GPU: 1}})
    usage = pool_usage(snap)["h800"]
    assert usage == PoolUsage(
        pool="h800",
        nodes=5,
        capacity=32,
        healthy=30,
        allocated=21,
        free=9,
        tenants={
            # unassigned = 30 - 24 = 6 covers 6 of physics' 8 borrowed; chem lends the other 2
            "bio": TenantUsage(used=0, nominal=0, borrowed=0, lent=0),
            "chem": TenantUsage(used=4, nominal=16, borrowed=0, lent=2),
            "physics": TenantUsage(used=16, nominal=8, borrowed=8, lent=0),
        },
    )


def test_pool_usage_without_quotas_reports_plain_use() -> None:
    running = [run(make_job("ns/p", tenant="physics"), "h800", ["n1"])]
    usage = pool_usage(snapshot([make_pool()], make_nodes("n", 2), running))["h800"]
    assert usage.tenants == {"physics": TenantUsage(8, 0, 0, 0)}
    assert (usage.allocated, usage.free) == (8, 8)


def test_explain_gives_a_verdict_for_every_matching_pool_including_those_that_fit() -> None:
    pools = [
        make_pool("h800", throughput=2.0, quotas={"physics": quota(8, borrowing_limit=0)}),
        make_pool("a800", model="A800"),
        ascend_pool(),
    ]
    nodes = (
        make_nodes("h", 2, pool="h800")
        + make_nodes("a", 1, pool="a800")
        + make_nodes("c", 2, pool="ascend-910b", resource=ASCEND)
    )
    job = make_job("ns/x", workers=2, accepts=(AcceptedType("nvidia"), AcceptedType("huawei")))
    verdicts = explain(snapshot(pools, nodes), job, 0.0)
    assert [(v.pool, v.fits, v.reason) for v in verdicts] == [
        ("a800", False, Reason.NEVER_FITS),
        ("h800", False, Reason.QUOTA),
        ("ascend-910b", True, None),
    ]
    assert verdicts[1].message == (
        "tenant physics in pool h800: used 0 of nominal 8, may borrow 0 more (borrowing limit 0); needs 16"
    )
    assert verdicts[1].est_runtime_factor == 0.5
    assert verdicts[2].message == "fits: 2 workers on 2 nodes in pool ascend-910b"


def test_explain_without_matching_pools_is_empty() -> None:
    assert (
        explain(snapshot([make_pool()], make_nodes("n", 1)), make_job("ns/x", accepts=("kunlunxin",)), 0.0)
        == ()
    )
