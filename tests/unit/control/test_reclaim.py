"""Reclaim wins in the shell too: the evicted borrower backs off, the reclaimer keeps its room.

Issue 17's minimal case through the job controller and the fake API: tenant chemistry borrows
all 16 GPUs at priority 100, tenant physics (nominal 16) submits a priority-0 job. Ticks every
half second, as the operator's loop does when things change.
"""

from __future__ import annotations

from typing import Any

from tests.unit.control.harness import Harness

from estuary.control.decisions import EVICTION_BACKOFF_S, eviction_backoff


def tenant_job(name: str, namespace: str, priority: int) -> dict[str, Any]:
    return {
        "apiVersion": "estuary.dev/v1alpha1",
        "kind": "AIJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "workers": 2,
            "acceleratorsPerWorker": 8,
            "accelerators": [{"vendor": "nvidia", "image": "img"}],
            "preemption": {"gracePeriodSeconds": 0},
            "priority": priority,
        },
    }


def two_tenants() -> Harness:
    h = Harness()
    for tenant in ("physics", "chemistry"):
        h.server.put(
            {"kind": "Namespace", "metadata": {"name": tenant, "labels": {"estuary.dev/tenant": tenant}}}
        )
    pool = h.server.get("computepools", "h800")
    assert pool is not None
    pool["spec"]["quotas"] = [{"tenant": "physics", "nominal": 16}, {"tenant": "chemistry", "nominal": 0}]
    h.server.put(pool)
    return h


def status(h: Harness, key: str) -> dict[str, Any]:
    obj = h.server.get("aijobs", key)
    assert obj is not None
    return dict(obj.get("status") or {})


def tick(h: Harness, seconds: float, times: int) -> None:
    for _ in range(times):
        h.step(seconds=seconds)
        for pod in h.server.items("pods"):  # the kubelet: a new pod starts running
            if not (pod.get("status") or {}).get("phase"):
                h.server.set_pods("Running", pod["metadata"]["labels"]["estuary.dev/job-name"])


def test_the_reclaimer_runs_and_the_borrower_is_evicted_once_then_backs_off() -> None:
    h = two_tenants()
    h.server.put(tenant_job("borrower", "chemistry", 100))
    tick(h, 0.5, 3)
    assert status(h, "chemistry/borrower")["phase"] == "Running"
    h.server.put(tenant_job("reclaimer", "physics", 0))
    tick(h, 0.5, 60)  # 30 s: the issue saw about 150 evictions in this time
    assert status(h, "physics/reclaimer")["phase"] == "Running"
    victim = status(h, "chemistry/borrower")
    assert [run["outcome"] for run in victim["runs"]] == ["Preempted"]
    evicted = [c for c in h.server.calls if c == ("delete_pod", "borrower-worker-0")]
    assert len(evicted) == 1, "the borrower's gang was stopped once"
    # After its backoff the victim queues again and waits, its room taken back by the owner.
    assert victim["phase"] == "Queued" and victim["reason"] == "QuotaExceeded", victim
    assert "placement" not in victim or victim["placement"] is None


def test_the_victim_says_when_it_may_run_again() -> None:
    h = two_tenants()
    h.server.put(tenant_job("borrower", "chemistry", 100))
    tick(h, 0.5, 3)
    h.server.put(tenant_job("reclaimer", "physics", 0))
    tick(h, 0.5, 2)
    victim = status(h, "chemistry/borrower")
    assert victim["reason"] == "Preempted" and victim["retryAfter"]
    assert f"eligible again in {EVICTION_BACKOFF_S}s (eviction 1" in victim["message"]
    assert "evicted by physics/reclaimer (Reclaim)" in victim["message"]


def test_the_wait_after_an_eviction_doubles_up_to_a_limit() -> None:
    assert [eviction_backoff(n) for n in (1, 2, 3)] == [
        EVICTION_BACKOFF_S,
        2 * EVICTION_BACKOFF_S,
        4 * EVICTION_BACKOFF_S,
    ]
    assert eviction_backoff(40) == 600


def test_a_second_eviction_waits_twice_as_long() -> None:
    h = two_tenants()
    h.server.put(tenant_job("borrower", "chemistry", 100))
    tick(h, 0.5, 3)
    h.server.put(tenant_job("reclaimer", "physics", 0))
    tick(h, 0.5, 40)  # evicted, backed off for 15 s, then waits for the reclaimer to finish
    h.server.set_pods("Succeeded", "reclaimer")
    tick(h, 0.5, 4)
    assert status(h, "chemistry/borrower")["phase"] == "Running"
    h.server.put(tenant_job("second", "physics", 0))
    tick(h, 0.5, 2)
    victim = status(h, "chemistry/borrower")
    assert [run["outcome"] for run in victim["runs"]] == ["Preempted", "Preempted"]
    assert f"eligible again in {2 * EVICTION_BACKOFF_S}s (eviction 2" in victim["message"], victim["message"]
