"""The chaos tier's measures fire on what they are meant to find (tests/chaos/measures.py), so a
zero in its figures means nothing was found, not that nothing could be; and its workload and
fault schedule are the same for the same seed."""

from __future__ import annotations

import itertools
from typing import Any

from tests.chaos import measures, workload

GPU = "nvidia.com/gpu"


def node(name: str, gpus: int) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"allocatable": {GPU: str(gpus), "cpu": "64"}}}


def pod(
    name: str,
    node_name: str | None,
    gpus: int,
    phase: str = "Running",
    job: str = "j",
    rank: str = "0",
    owner: str = "uid-j",
    namespace: str = "physics",
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {measures.JOB_LABEL: job, measures.RANK_LABEL: rank},
            "ownerReferences": [{"uid": owner, "controller": True}],
        },
        "spec": {"nodeName": node_name, "containers": [{"resources": {"requests": {GPU: str(gpus)}}}]},
        "status": {"phase": phase},
    }


def job(
    name: str,
    nodes: list[str],
    per_worker: int,
    phase: str = "Running",
    link: str | None = None,
    **status: Any,
) -> dict[str, Any]:
    placement = {"nodes": nodes, "resource": GPU, "link": link} if nodes else None
    return {
        "metadata": {"name": name, "namespace": "physics"},
        "spec": {"acceleratorsPerWorker": per_worker},
        "status": {"phase": phase, "placement": placement, **status},
    }


CAPACITY = measures.allocatable([node("n1", 8), node("n2", 8)])


def test_capacity_is_read_from_allocatable_accelerators_only() -> None:
    assert CAPACITY == {("n1", GPU): 8, ("n2", GPU): 8}


def test_bound_pods_beyond_allocatable_are_over_allocation_and_finished_or_unbound_pods_are_not() -> None:
    pods = [pod("a", "n1", 8), pod("b", "n1", 4), pod("c", "n2", 8, phase="Succeeded"), pod("d", None, 8)]
    assert measures.bound_overallocation(pods, CAPACITY) == {("n1", GPU): 4}
    assert measures.bound_overallocation(pods[2:], CAPACITY) == {}


def test_bookings_of_unfinished_local_jobs_beyond_capacity_are_over_booking() -> None:
    jobs = [
        job("a", ["n1", "n1"], 4),
        job("released", ["n1"], 2, phase="Queued"),  # still holds until its pods are gone
        job("done", ["n2"], 8, phase="Succeeded"),
        job("away", ["n2", "n2"], 8, link="gz"),  # the partner's nodes
        job("waiting", [], 8, phase="Queued"),
    ]
    assert measures.booking_overallocation(jobs, CAPACITY) == {("n1", GPU): 2}
    assert measures.booking_overallocation(jobs[2:], CAPACITY) == {}


def test_two_live_pods_for_one_rank_of_one_job_are_a_duplicate() -> None:
    pods = [
        pod("j-worker-0", "n1", 1),
        pod("j-worker-0-again", "n2", 1),
        pod("j-worker-1", "n1", 1, rank="1"),
        pod("j-worker-1-old", "n1", 1, rank="1", phase="Failed"),
        pod("other", "n1", 1, owner="uid-k", job="k"),
    ]
    assert measures.duplicate_workers(pods) == ["physics/j#0"]
    assert measures.duplicate_workers(pods[2:]) == []


def test_running_at_home_and_in_a_copy_at_the_partner_is_a_double_run() -> None:
    copy = {
        "metadata": {
            "name": "physics-j-1a2b",
            "namespace": "estuary-burst",
            "labels": {measures.ORIGIN_NAME: "j", measures.ORIGIN_NAMESPACE: "physics"},
        }
    }
    away = [pod("physics-j-1a2b-worker-0", "g1", 8, job="physics-j-1a2b", namespace="estuary-burst")]
    home = [pod("j-worker-0", "n1", 8)]
    assert measures.double_runs(home, away, [copy]) == ["physics/j"]
    assert measures.double_runs([pod("j-worker-0", "n1", 8, phase="Pending")], away, [copy]) == []
    second = {"metadata": {**copy["metadata"], "name": "physics-j-3c4d"}}
    away2 = [*away, pod("physics-j-3c4d-worker-0", "g2", 8, job="physics-j-3c4d", namespace="estuary-burst")]
    assert measures.double_runs([], away2, [copy, second]) == ["physics/j"]


def test_a_job_holding_accelerators_unchanged_past_the_limit_is_stuck_and_a_waiting_one_is_not() -> None:
    watch = measures.StuckWatch(limit_s=60)
    holding = job("held", ["n1"], 8, phase="Queued", reason="Restarting", attempt=1)
    waiting = job("waiting", [], 8, phase="Queued", reason="QuotaExceeded")
    moving = job("moving", ["n2"], 1, phase="Running", attempt=1)
    assert watch.observe([holding, waiting, moving], now=0) == []
    moving["status"]["attempt"] = 2
    assert watch.observe([holding, waiting, moving], now=59) == []
    assert watch.observe([holding, waiting, moving], now=61) == ["physics/held"]
    assert watch.stuck == {"physics/held": "Queued/Restarting on ['n1']"}


def test_the_same_seed_gives_the_same_workload_and_faults_and_every_job_can_fit() -> None:
    assert workload.jobs(3) == workload.jobs(3) and workload.faults(3) == workload.faults(3)
    assert workload.jobs(3) != workload.jobs(4)
    plans = workload.jobs(2026)
    assert len(plans) == 152 and {p.tenant for p in plans} == set(workload.TENANTS)
    kills = [f.at for f in workload.faults(2026) if f.action == "kill"]
    assert len(kills) == 5 and all(b - a >= 20 for a, b in itertools.pairwise(kills))
    for plan in plans:
        if plan.name in workload.NEVER_FITS:
            continue
        models = {a["model"] for a in plan.accelerators}
        room = workload.TENANTS[plan.tenant]
        home = [room["h800"]] * ("H800" in models) + [room["ascend"]] * ("Ascend910B" in models)
        assert plan.workers * plan.per_worker <= max(home + [16] * ("A800" in models)), plan
