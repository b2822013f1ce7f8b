"""One cluster with the job controller over the shared fake API, stepped by hand on a fake clock.

The cluster: pool h800 (nvidia/H800, 8 GPUs per node) with two nodes, n0 and n1; jobs go into
namespace physics. `pods()` plays the kubelet and kube-scheduler through the fake.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.fakeapi import Clock, FakeApiServer

from estuary.control.controller import JobController, Settings
from estuary.control.seal import Sealer
from estuary.handlers.loop import Loop

NS = "physics"
KEY = b"the-operator-s-placement-key-0123"  # as in its Secret: shared by restarts
# A step waits this long for its dry runs: the fake answers at once, so each step acts on every
# answer, also on a loaded machine (the default tenth of a second is tested in test_writes.py).
PRECHECK_WAIT_S = 30.0


def node(name: str, ready: bool = True, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "kind": "Node",
        "metadata": {"name": name, "labels": {"estuary.dev/model": "H800"}, "annotations": annotations or {}},
        "status": {
            "allocatable": {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "8"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def job(name: str, workers: int = 2, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "estuary.dev/v1alpha1",
        "kind": "AIJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "workers": workers,
            "acceleratorsPerWorker": 8,
            "accelerators": [{"vendor": "nvidia", "image": "img"}],
            "preemption": {"gracePeriodSeconds": 0},
            **spec,
        },
    }


class Harness:
    def __init__(self, nodes: int = 2, **settings: Any) -> None:
        self.clock = Clock()
        self.server = FakeApiServer("hk", self.clock)
        self.server.put(
            {
                "kind": "ComputePool",
                "metadata": {"name": "h800"},
                "spec": {"vendor": "nvidia", "model": "H800", "nodeSelector": {"estuary.dev/model": "H800"}},
            }
        )
        for i in range(nodes):
            self.server.put(node(f"n{i}"))
        self.controller = JobController(
            self.server.cache,
            self.server,
            Settings(**{"precheck_wait_s": PRECHECK_WAIT_S, **settings}),
            clock=self.clock.wall,
            sealer=Sealer(KEY),
        )
        self.loop = Loop(self.server.cache, self.controller, clock=self.clock.wall)

    def step(self, times: int = 1, seconds: float = 0.0) -> None:
        for _ in range(times):
            self.loop.tick()
            self.controller.background.wait()  # the tick's background writes, answered
            self.clock.advance(seconds)

    def submit(self, name: str = "train", workers: int = 2, **spec: Any) -> None:
        self.server.put(job(name, workers, **spec))

    def status(self, name: str = "train") -> dict[str, Any]:
        obj = self.server.get("aijobs", f"{NS}/{name}")
        assert obj is not None, f"AIJob {name} is gone"
        return dict(obj.get("status") or {})

    def phase(self, name: str = "train") -> tuple[str | None, str | None]:
        status = self.status(name)
        return status.get("phase"), status.get("reason")

    def pods(self, name: str = "train") -> list[dict[str, Any]]:
        return sorted(
            (
                p
                for p in self.server.items("pods")
                if p["metadata"]["labels"].get("estuary.dev/job-name") == name
            ),
            key=lambda p: p["metadata"]["name"],
        )

    def set_pods(self, phase: str, name: str = "train", **status: Any) -> None:
        self.server.set_pods(phase, name, **status)

    def fail_worker(self, rank: int, name: str = "train", exit_code: int = 3) -> None:
        pod = self.pods(name)[rank]
        terminated = {"terminated": {"exitCode": exit_code, "reason": "Error"}}
        self.server.patch(
            "pods",
            f"{NS}/{pod['metadata']['name']}",
            {"status": {"phase": "Failed", "containerStatuses": [{"name": "worker", "state": terminated}]}},
            subresource="status",
        )

    def running(self, name: str = "train", **spec: Any) -> None:
        """Submit a job and run it: admitted, its pods Running, the job Running."""
        self.submit(name, **spec)
        self.step()
        self.set_pods("Running", name)
        self.step()
        assert self.phase(name) == ("Running", "Running"), self.status(name)

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.server.calls if c[0] in ("patch_job_status", "create")]

    def unschedulable(self, name: str = "train") -> None:
        for pod in self.pods(name):
            conditions = [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes"}
            ]
            self.server.patch(
                "pods",
                f"{NS}/{pod['metadata']['name']}",
                {"status": {"phase": "Pending", "conditions": copy.deepcopy(conditions)}},
                subresource="status",
            )
