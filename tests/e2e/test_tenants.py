"""Tenants share pools by quota: borrowing, reclaim and priority preemption of whole gangs, fair
shares, and `estuary explain` naming the limit that binds."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devcluster.clusters import Cluster
from tests.e2e.kube_helpers import ASCEND, GROUP, NVIDIA, VERSION, Kube, aijob, pools
from tests.e2e.operator_process import OperatorProcess, wait_for

TENANTS = ("physics", "chemistry", "biology")


@pytest.fixture
def tenants(cluster: Cluster, kube: Kube, estuary: OperatorProcess) -> Iterator[dict[str, str]]:
    """One namespace per tenant (labelled), removed afterwards with their jobs and pods."""
    names: dict[str, str] = {}
    for tenant in TENANTS:
        ns = f"{tenant}-{id(names) % 100000}"
        cluster.kubectl("create", "namespace", ns)
        cluster.kubectl("label", "namespace", ns, f"estuary.dev/tenant={tenant}")
        names[tenant] = ns
    yield names
    for ns in names.values():
        cluster.kubectl("delete", "aij", "--all", "-n", ns, "--wait=false")
    for ns in names.values():
        wait_for(lambda ns=ns: not kube.pods(ns), timeout=90, what=f"pods of {ns} gone")
        cluster.kubectl("delete", "namespace", ns, "--wait=false")
    for pool in pools():  # back to the shared pools without quotas
        kube.apply(pool)
    wait_observed(kube)


def set_quotas(kube: Kube, quotas: dict[str, list[dict[str, Any]]]) -> None:
    """Apply the quotas and wait until the operator has acted on exactly this version of each pool."""
    for pool in pools(quotas):
        kube.apply(pool)
    wait_observed(kube)


def wait_observed(kube: Kube) -> None:
    def observed() -> bool:
        for name in ("h800", "ascend"):
            obj = kube.custom.get_cluster_custom_object(GROUP, VERSION, "computepools", name)
            if (obj.get("status") or {}).get("observedGeneration") != obj["metadata"]["generation"]:
                return False
        return True

    wait_for(observed, timeout=30, what="the operator to observe the pools' current spec")


def _pool(kube: Kube, name: str) -> dict[str, Any]:
    obj = kube.custom.get_cluster_custom_object(GROUP, VERSION, "computepools", name)
    return dict(obj.get("status") or {})


def _usage(kube: Kube, pool: str) -> dict[str, dict[str, int]]:
    return {t["tenant"]: t for t in _pool(kube, pool).get("tenants", [])}


def _running(kube: Kube, ns: str, name: str, timeout: float = 60) -> None:
    wait_for(lambda: kube.phase(ns, name) == "Running", timeout=timeout, what=f"{ns}/{name} Running")


def test_borrowing_then_reclaim_evicts_a_whole_borrowing_gang(kube: Kube, tenants: dict[str, str]) -> None:
    physics, chemistry = tenants["physics"], tenants["chemistry"]
    set_quotas(
        kube,
        {
            "h800": [
                {"tenant": "physics", "nominal": 8, "borrowingLimit": 16},
                {"tenant": "chemistry", "nominal": 8},
                {"tenant": "biology", "nominal": 8},
            ]
        },
    )
    for i in range(3):  # 3 gangs of 2 x 4: one within nominal, two on borrowed quota
        kube.apply(aijob(f"p{i}", physics, [NVIDIA], workers=2, per_worker=4))
        _running(kube, physics, f"p{i}")
        time.sleep(1.1)  # admission times have one-second resolution: keep the order unambiguous
    wait_for(
        lambda: _usage(kube, "h800")["physics"]["used"] == 24,
        timeout=30,
        what="pool status to show physics using 24",
    )
    usage = _usage(kube, "h800")
    assert (usage["physics"]["nominal"], usage["physics"]["borrowed"]) == (8, 16)
    assert usage["chemistry"]["lent"] > 0
    kube.apply(aijob("c0", chemistry, [NVIDIA], workers=2, per_worker=4))
    _running(kube, chemistry, "c0", timeout=90)
    evictions = {
        f"p{i}": [e["message"] for e in kube.events(physics, f"p{i}") if e["reason"] == "Preempted"]
        for i in range(3)
    }
    preempted = [name for name, messages in evictions.items() if messages]
    assert preempted == ["p2"], "one whole gang, the most recently started borrower, is evicted"
    assert "Reclaim" in evictions["p2"][0] and f"{chemistry}/c0" in evictions["p2"][0]
    victim = kube.status(physics, "p2")
    assert victim["phase"] == "Queued" and victim["restarts"] == 0
    assert kube.pods(physics, "p2") == []  # whole gang, no worker left behind
    running = next(c for c in victim["conditions"] if c["type"] == "Running")
    assert running["reason"] == "Preempted"
    # no flapping: the victim cannot take its capacity back while chemistry is within nominal
    wait_for(
        lambda: kube.status(physics, "p2").get("reason") in ("QuotaExceeded", "InsufficientCapacity"),
        timeout=30,
        what="the victim to wait with a quota or capacity reason",
    )
    assert kube.phase(chemistry, "c0") == "Running"


def test_higher_priority_job_of_the_same_tenant_evicts_a_lower_one(
    kube: Kube, tenants: dict[str, str]
) -> None:
    biology = tenants["biology"]
    kube.apply(aijob("low", biology, [ASCEND], workers=3, priority=0))
    _running(kube, biology, "low")
    kube.apply(aijob("high", biology, [ASCEND], workers=1, priority=100))
    _running(kube, biology, "high", timeout=90)
    low = kube.status(biology, "low")
    assert low["phase"] == "Queued" and low["reason"] in ("Preempted", "InsufficientCapacity")
    events = {e["reason"]: e["message"] for e in kube.events(biology, "low")}
    assert "Priority" in events["Preempted"]


def test_borrowed_capacity_is_shared_by_weight(kube: Kube, tenants: dict[str, str]) -> None:
    physics, chemistry, biology = tenants["physics"], tenants["chemistry"], tenants["biology"]
    set_quotas(
        kube,
        {
            "h800": [
                {"tenant": "physics", "nominal": 0, "weight": 2},
                {"tenant": "chemistry", "nominal": 0, "weight": 1},
                {"tenant": "biology", "nominal": 24},
            ]
        },
    )
    kube.apply(aijob("filler", biology, [NVIDIA], workers=3))  # holds the pool while the queue fills
    _running(kube, biology, "filler")
    names = [f"{t}{i}" for i in range(8) for t in ("p", "c")]
    for name in names:  # a backlog from both tenants: 16 single-node gangs for 6 slots
        kube.apply(
            aijob(
                name,
                physics if name[0] == "p" else chemistry,
                [NVIDIA],
                workers=1,
                per_worker=4,
                annotations={"estuary.dev/sim-duration-ms": "30000"},
            )
        )
    wait_for(
        lambda: all(kube.status(physics if n[0] == "p" else chemistry, n).get("reason") for n in names),
        timeout=60,
        what="the whole backlog queued",
    )
    kube.delete_job(biology, "filler")  # idle biology quota becomes borrowable all at once

    def full() -> tuple[int, int] | None:
        usage = _usage(kube, "h800")
        p, c = usage.get("physics", {}).get("used", 0), usage.get("chemistry", {}).get("used", 0)
        return (p, c) if p + c == 24 else None

    assert wait_for(full, timeout=60, what="the pool full of borrowed gangs") == (16, 8), (
        "weights 2:1 split the 24 borrowed accelerators 16:8"
    )


def test_estuary_explain_names_the_quota_that_binds(
    cluster: Cluster,
    kube: Kube,
    tenants: dict[str, str],
) -> None:
    chemistry = tenants["chemistry"]
    set_quotas(
        kube,
        {
            "h800": [{"tenant": "chemistry", "nominal": 8, "borrowingLimit": 0}],
            "ascend": [{"tenant": "chemistry", "nominal": 0, "borrowingLimit": 0}],
        },
    )
    kube.apply(aijob("capped", chemistry, [NVIDIA, ASCEND], workers=2, per_worker=8))
    wait_for(
        lambda: kube.status(chemistry, "capped").get("reason") == "QuotaExceeded",
        timeout=30,
        what="capped to wait on quota",
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "estuary.cli",
            "explain",
            "capped",
            "-n",
            chemistry,
            "--kubeconfig",
            str(cluster.kubeconfig),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"AIJob {chemistry}/capped (tenant chemistry" in out
    assert "nvidia/H800 in pool h800: QuotaExceeded" in out
    assert "used 0 of nominal 8" in out and "needs 16" in out
    assert "huawei/Ascend910B in pool ascend: QuotaExceeded" in out


def test_a_reclaimer_wins_over_a_higher_priority_borrower_with_one_eviction(
    kube: Kube, tenants: dict[str, str]
) -> None:
    """Issue 17's minimal case: chemistry (nominal 0) borrows the whole H800 pool at priority 100;
    physics, whose nominal is the whole pool, submits a priority-0 job. The borrower is evicted
    once, backs off while the reclaimer runs on the room freed for it, and then runs too."""
    physics, chemistry = tenants["physics"], tenants["chemistry"]
    set_quotas(kube, {"h800": [{"tenant": "physics", "nominal": 24}, {"tenant": "chemistry", "nominal": 0}]})
    quick = {"gracePeriodSeconds": 0}
    kube.apply(
        aijob(
            "borrower",
            chemistry,
            [NVIDIA],
            workers=3,
            priority=100,
            preemption=quick,
            annotations={"estuary.dev/sim-duration-ms": "20000"},
        )
    )
    _running(kube, chemistry, "borrower")
    wait_for(
        lambda: _usage(kube, "h800").get("chemistry", {}).get("borrowed") == 24,
        timeout=30,
        what="pool status to show chemistry borrowing 24",
    )
    started = time.monotonic()
    kube.apply(
        aijob(
            "reclaimer",
            physics,
            [NVIDIA],
            workers=3,
            priority=0,
            preemption=quick,
            annotations={"estuary.dev/sim-duration-ms": "10000"},
        )
    )
    _running(kube, physics, "reclaimer", timeout=60)
    reclaimer_running = time.monotonic() - started
    victim = kube.status(chemistry, "borrower")
    assert victim["phase"] == "Queued" and "placement" not in victim, victim
    wait_for(lambda: kube.phase(physics, "reclaimer") == "Succeeded", timeout=60, what="reclaimer Succeeded")
    wait_for(lambda: kube.phase(chemistry, "borrower") == "Succeeded", timeout=120, what="borrower Succeeded")
    both_done = time.monotonic() - started
    evicted = [e for e in kube.events(chemistry, "borrower") if e["reason"] == "Preempted"]
    assert sum(int(e.get("count") or 1) for e in evicted) == 1, evicted
    assert "(Reclaim)" in evicted[0]["message"] and "eligible again in 15s" in evicted[0]["message"]
    outcomes = [run["outcome"] for run in kube.status(chemistry, "borrower")["runs"]]
    assert outcomes == ["Preempted", "Succeeded"], outcomes
    assert not [e for e in kube.events(physics, "reclaimer") if e["reason"] == "Preempted"]
    print(
        f"reclaimer Running after {reclaimer_running:.1f}s; both Succeeded after {both_done:.1f}s; 1 eviction"
    )
