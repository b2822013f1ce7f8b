"""What the controller writes for people without cluster-wide rights: per-type verdicts of a
waiting job, run records of every attempt, and pool capacity in PFLOPS (through the KubeApi fake;
tests/e2e/test_researcher.py checks the same against a real API server)."""

from __future__ import annotations

from typing import Any

from tests.unit.control.test_controller import FakeKubeApi, cache, job  # noqa: F401  (cache: a fixture)

from estuary.control.controller import Controller
from estuary.state.cache import ClusterCache

NOW = 1_800_000_000.0


def status(held: ClusterCache, name: str) -> dict[str, Any]:
    return dict((held.get("aijobs", f"physics/{name}") or {}).get("status") or {})


def test_a_waiting_job_carries_a_verdict_per_accepted_type_and_loses_it_when_admitted(
    cache: ClusterCache,  # noqa: F811
) -> None:
    cache.apply("aijobs", None, job("big", workers=3))  # 24 GPUs; the pool has 16
    api = FakeKubeApi(cache)
    controller = Controller(cache, api, clock=lambda: NOW)
    controller.step()
    (verdict,) = status(cache, "big")["verdicts"]
    assert verdict == {
        "pool": "h800",
        "vendor": "nvidia",
        "model": "H800",
        "fits": False,
        "reason": "NeverFits",
        "message": verdict["message"],
        "relativeRuntime": 1.0,
    }
    assert "16" in verdict["message"]
    writes = len(api.calls)
    controller.step()  # nothing changed: nothing written
    assert len(api.calls) == writes


def test_every_attempt_is_recorded_with_its_accelerators_and_times(cache: ClusterCache) -> None:  # noqa: F811
    cache.apply("aijobs", None, job("train"))
    api = FakeKubeApi(cache)
    clock = [NOW]
    controller = Controller(cache, api, clock=lambda: clock[0])
    controller.step()
    (opened,) = status(cache, "train")["runs"]
    assert opened["accelerators"] == 16 and opened["attempt"] == 1 and "endTime" not in opened
    assert "verdicts" not in status(cache, "train")
    clock[0] = NOW + 600
    raw = cache.get("aijobs", "physics/train")
    assert raw is not None
    parsed = controller.parse_jobs(clock[0])["physics/train"]
    controller.release(parsed, "Queued", "Preempted", "evicted", clock[0])
    (closed,) = status(cache, "train")["runs"]
    assert closed["outcome"] == "Preempted"
    assert closed["endTime"] == "2027-01-15T08:10:00Z" and closed["startTime"] == "2027-01-15T08:00:00Z"


def test_pool_status_shows_capacity_and_free_in_pflops(cache: ClusterCache) -> None:  # noqa: F811
    pools: list[dict[str, Any]] = []
    api = FakeKubeApi(cache)
    original = api.patch_pool_status

    def record(name: str, body: dict[str, Any]) -> dict[str, Any]:
        pools.append(body)
        return original(name, body)

    api.patch_pool_status = record  # type: ignore[method-assign]
    Controller(cache, api, clock=lambda: NOW).step()
    assert pools[-1]["capacityPflops"] == round(16 * 989.4 / 1000, 3)
    assert pools[-1]["freePflops"] == pools[-1]["capacityPflops"]
    assert pools[-1]["tflopsPerAccelerator"] == 989.4
