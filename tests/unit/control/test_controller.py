"""The controller's write order and lifecycle rules, through a fake at the KubeApi seam.

The same behaviour is exercised against a real API server in tests/e2e/test_aijob.py; these tests
pin the ordering that crash safety depends on, which an end-to-end test cannot observe directly.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from estuary.control.controller import Controller
from estuary.state.cache import ClusterCache


class FakeKubeApi:
    """Applies status patches to the cache's objects and records every call in order."""

    def __init__(self, cache: ClusterCache, fail_status: bool = False) -> None:
        self.cache, self.fail_status = cache, fail_status
        self.calls: list[tuple[str, str]] = []
        self.version = 100

    def _bump(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        return obj

    def create(self, manifest: dict[str, Any]) -> None:
        self.calls.append(("create", f"{manifest['kind']}/{manifest['metadata']['name']}"))

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None = None) -> None:
        self.calls.append(("delete", name))

    def patch_job_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        if self.fail_status:
            raise RuntimeError("API server unavailable")
        self.calls.append(("status", f"{name}:{status.get('phase')}"))
        obj = copy.deepcopy(self.cache.get("aijobs", f"{namespace}/{name}"))
        assert obj is not None
        merged = {**(obj.get("status") or {}), **status}
        obj["status"] = {k: v for k, v in merged.items() if v is not None}
        return self._bump(obj)

    def patch_pool_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(self.cache.get("computepools", name))
        assert obj is not None
        obj["status"] = status
        return self._bump(obj)

    def delete_job(self, namespace: str, name: str) -> None:
        self.calls.append(("delete-job", name))

    def event(self, obj: dict[str, Any], kind: str, warning: bool, reason: str, message: str) -> None:
        self.calls.append(("event", reason))


def node(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"estuary.dev/model": "H800"}, "resourceVersion": "1"},
        "status": {
            "allocatable": {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "8"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def job(name: str, workers: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "estuary.dev/v1alpha1",
        "kind": "AIJob",
        "metadata": {
            "name": name,
            "namespace": "physics",
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "creationTimestamp": "2026-11-29T10:00:00Z",
        },
        "spec": {
            "workers": workers,
            "acceleratorsPerWorker": 8,
            "accelerators": [{"vendor": "nvidia", "image": "img"}],
        },
    }


@pytest.fixture
def cache() -> ClusterCache:
    c = ClusterCache()
    c.apply(
        "computepools",
        None,
        {
            "metadata": {"name": "h800", "resourceVersion": "1"},
            "spec": {"vendor": "nvidia", "model": "H800", "nodeSelector": {"estuary.dev/model": "H800"}},
        },
    )
    for i in range(2):
        c.apply("nodes", None, node(f"n{i}"))
    return c


def test_admission_writes_status_before_creating_any_pod(cache: ClusterCache) -> None:
    cache.apply("aijobs", None, job("train"))
    api = FakeKubeApi(cache)
    Controller(cache, api, clock=lambda: 1_800_000_000.0).step()
    writes = [c for c in api.calls if c[0] in ("status", "create")]
    admitted = writes.index(("status", "train:Admitted"))
    first_pod = writes.index(("create", "Pod/train-worker-0"))
    assert writes[0] == ("status", "train:Admitted") and admitted < first_pod  # one write admits
    assert ("create", "Pod/train-worker-1") in writes and ("create", "Service/train") in writes
    status = cache.get("aijobs", "physics/train")["status"]  # type: ignore[index]
    assert status["placement"]["nodes"] == ["n0", "n1"] and status["attempt"] == 1


def test_no_pod_is_created_when_the_admission_cannot_be_recorded(cache: ClusterCache) -> None:
    cache.apply("aijobs", None, job("train"))
    api = FakeKubeApi(cache, fail_status=True)
    Controller(cache, api, clock=lambda: 1_800_000_000.0).step()
    assert not [c for c in api.calls if c[0] == "create"]


def test_a_restarted_controller_creates_only_the_missing_workers_of_an_admitted_job(
    cache: ClusterCache,
) -> None:
    raw = job("train")
    raw["status"] = {
        "phase": "Admitted",
        "attempt": 1,
        "admittedAt": "2026-11-29T10:00:01Z",
        "placement": {
            "cluster": "local",
            "pool": "h800",
            "vendor": "nvidia",
            "model": "H800",
            "resource": "nvidia.com/gpu",
            "nodes": ["n0", "n1"],
            "workers": 2,
        },
    }
    cache.apply("aijobs", None, raw)
    cache.apply(
        "pods",
        None,
        {
            "metadata": {
                "name": "train-worker-0",
                "namespace": "physics",
                "resourceVersion": "5",
                "labels": {
                    "estuary.dev/job-name": "train",
                    "estuary.dev/worker-rank": "0",
                    "estuary.dev/attempt": "1",
                },
            },
            "spec": {"nodeName": "n0"},
            "status": {"phase": "Pending"},
        },
    )
    cache.apply("aijobs", None, job("other"))  # must not fit: the two nodes are held by train
    api = FakeKubeApi(cache)
    Controller(cache, api, clock=lambda: 1_800_000_000.0).step()
    creates = [c[1] for c in api.calls if c[0] == "create"]
    assert "Pod/train-worker-1" in creates and "Pod/train-worker-0" not in creates
    assert not any(c.startswith("Pod/other") for c in creates)
    assert cache.get("aijobs", "physics/other")["status"]["reason"] == "InsufficientCapacity"  # type: ignore[index]
