"""Every lifecycle rule of the job controller (control/lifecycle.py), one row each, through the
shared fake API. tests/e2e/test_aijob.py and test_operate.py run the same rules against a real
API server; these pin the exact status each rule writes, and what it does to the pods."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from estuary.api.nodehealth import HEARTBEAT_KEY, UNHEALTHY_KEY
from estuary.state import codec

from .harness import NS, Harness, job, node


@dataclass(frozen=True)
class Rule:
    """Arrange a job, act, then expect its phase and reason, its pods, and a fragment of its message."""

    arrange: Callable[[Harness], None]
    phase: str
    reason: str
    message: str = ""
    pods: int | None = None  # live pods of the job left (None: not checked)
    restarts: int = 0
    status: dict[str, object] = field(default_factory=dict)  # more status fields that must match


def _succeed(h: Harness) -> None:
    h.running()
    h.set_pods("Succeeded")
    h.step()


def _fail_once(h: Harness) -> None:
    h.running(restartPolicy={"maxRestarts": 2, "backoffSeconds": 10})
    h.fail_worker(1)
    h.step()


def _fail_past_limit(h: Harness) -> None:
    h.running(restartPolicy={"maxRestarts": 0})
    h.fail_worker(0, exit_code=137)
    h.step()


def _vanish(h: Harness) -> None:
    h.running()
    h.server.delete("pods", f"{NS}/train-worker-1")
    h.step()


def _suspend(h: Harness) -> None:
    h.running()
    h.server.patch("aijobs", f"{NS}/train", {"spec": {"suspend": True}})
    h.step()


def _resume(h: Harness) -> None:
    _suspend(h)
    h.step()  # the pods are gone: the placement is given up
    h.server.patch("aijobs", f"{NS}/train", {"spec": {"suspend": False}})
    h.step()


def _node_not_ready(h: Harness) -> None:
    h.running()
    h.server.put(node("n1", ready=False))
    h.step()


def _node_reports_unhealthy(h: Harness) -> None:
    h.running()
    fresh = codec.rfc3339(h.clock.wall())  # the agent reported just now
    h.server.put(node("n0", annotations={UNHEALTHY_KEY: "1", HEARTBEAT_KEY: fresh}))
    h.step()


def _node_deleted(h: Harness) -> None:
    h.running()
    h.server.delete("nodes", "n1")
    h.step()


def _unschedulable_past_timeout(h: Harness) -> None:
    h.submit(schedulingTimeoutSeconds=60)
    h.step()
    h.unschedulable()
    h.clock.advance(61)
    h.step()


def _invalid_spec(h: Harness) -> None:
    bad = job("train")
    bad["spec"]["workers"] = 0  # the CRD refuses this; an object from an older schema may hold it
    h.server.put(bad)
    h.step()


RULES = {
    "all workers Running: Running": Rule(
        lambda h: h.running(), "Running", "Running", "2 workers running on nvidia/H800", pods=2
    ),
    "all workers Succeeded: Succeeded": Rule(
        _succeed, "Succeeded", "Succeeded", "every worker succeeded", pods=2
    ),
    "a worker failed: the gang restarts with backoff": Rule(
        _fail_once,
        "Queued",
        "Restarting",
        "worker train-worker-1 on node n1 exited with code 3 (Error); restarting the whole gang "
        "(restart 1 of 2) after 10s",
        pods=0,
        restarts=1,
    ),
    "a worker failed past the limit: Failed with the cause": Rule(
        _fail_past_limit,
        "Failed",
        "WorkerFailed",
        "worker train-worker-0 on node n0 exited with code 137 (Error); restarted 0 times (limit 0)",
        pods=1,  # the failed worker's pod stays for its logs; the live one is stopped
    ),
    "a worker vanished: a failure": Rule(
        _vanish, "Queued", "Restarting", "worker train-worker-1 disappeared", pods=0, restarts=1
    ),
    "spec.suspend: Suspended, holding nothing": Rule(
        _suspend, "Suspended", "Suspended", "suspended by spec.suspend; holds nothing", pods=0
    ),
    "suspend cleared: back in the queue, admitted again": Rule(
        _resume, "Admitted", "Admitted", "admitted to pool h800", pods=2, status={"attempt": 2}
    ),
    "a node turned NotReady: the gang moves": Rule(
        _node_not_ready, "Queued", "NodeUnhealthy", "node n1 is NotReady; released the whole gang", pods=0
    ),
    "a node reports unhealthy accelerators: the gang moves": Rule(
        _node_reports_unhealthy,
        "Queued",
        "NodeUnhealthy",
        "node n0 reports 1 unhealthy accelerator(s)",
        pods=0,
    ),
    "a node was deleted: the gang moves": Rule(
        _node_deleted, "Queued", "NodeUnhealthy", "node n1 no longer exists", pods=0
    ),
    "unschedulable past the timeout: released and requeued": Rule(
        _unschedulable_past_timeout,
        "Queued",
        "SchedulingTimeout",
        "workers stayed unschedulable for 60s (train-worker-0: 0/2 nodes)",
        pods=0,
    ),
    "a spec Estuary cannot run: Failed, saying what to fix": Rule(
        _invalid_spec,
        "Failed",
        "InvalidSpec",
        "the job cannot run as written: spec.workers: Input should be greater than or equal to 1",
    ),
}


@pytest.mark.parametrize("rule", RULES.values(), ids=RULES.keys())
def test_lifecycle_rule(rule: Rule) -> None:
    h = Harness()
    rule.arrange(h)
    status = h.status()
    assert (status.get("phase"), status.get("reason")) == (rule.phase, rule.reason), status
    assert rule.message in status.get("message", ""), status.get("message")
    assert status.get("restarts", 0) == rule.restarts
    for key, value in rule.status.items():
        assert status.get(key) == value, (key, status)
    if rule.pods is not None:
        assert len(h.pods()) == rule.pods, [p["metadata"]["name"] for p in h.pods()]


def test_restart_waits_for_its_backoff_then_runs_as_a_new_attempt() -> None:
    h = Harness()
    _fail_once(h)
    h.step()  # pods gone: the placement is given up
    assert "placement" not in h.status() and h.status()["retryAfter"]
    h.step(seconds=9)
    assert h.phase() == ("Queued", "Restarting")  # backoff: 10 s
    h.step(seconds=2)
    h.step()
    assert h.phase() == ("Admitted", "Admitted") and h.status()["attempt"] == 2
    assert {p["metadata"]["labels"]["estuary.dev/attempt"] for p in h.pods()} == {"2"}


def test_the_second_restart_backs_off_twice_as_long() -> None:
    h = Harness()
    _fail_once(h)
    h.step(seconds=11)
    h.step()
    h.set_pods("Running")
    h.step()
    h.fail_worker(0)
    h.step()
    assert h.status()["restarts"] == 2 and "after 20s" in h.status()["message"]


def test_a_released_gang_keeps_its_nodes_until_every_pod_is_gone() -> None:
    h = Harness()
    h.server.graceful = True  # deleted pods linger while the kubelet stops them
    h.running(restartPolicy={"maxRestarts": 1, "backoffSeconds": 0})
    h.submit("next")  # waits for the same two nodes
    h.step()
    assert h.phase("next")[1] == "InsufficientCapacity"
    h.fail_worker(0)
    h.step()
    for _ in range(3):  # releasing: the pods are still terminating
        h.step()
        assert h.status()["placement"]["nodes"] == ["n0", "n1"]
        assert h.phase("next")[0] == "Queued" and h.pods("next") == []
    h.server.reap()
    h.step()  # the pods are gone: the nodes are free, and the cycle of the same step uses them
    assert "placement" not in h.status()
    assert h.phase("next") == ("Admitted", "Admitted")


def test_ttl_deletes_a_finished_job_only_after_it_passed() -> None:
    h = Harness()
    h.running(ttlSecondsAfterFinished=30)
    h.set_pods("Succeeded")
    h.step(seconds=29)
    h.step()
    assert h.phase() == ("Succeeded", "Succeeded")
    h.clock.advance(1)
    h.step()
    assert h.server.get("aijobs", f"{NS}/train") is None
    assert ("train", "Expired", "deleted 30s after it finished (ttlSecondsAfterFinished)") in h.server.events


def test_unschedulable_workers_within_the_timeout_are_left_alone() -> None:
    h = Harness()
    h.submit(schedulingTimeoutSeconds=60)
    h.step()
    h.unschedulable()
    h.clock.advance(59)
    h.step()
    assert h.phase() == ("Admitted", "Admitted") and len(h.pods()) == 2


def test_an_invalid_job_is_rejected_once() -> None:
    h = Harness()
    _invalid_spec(h)
    h.server.calls.clear()
    h.step()
    assert not [c for c in h.server.calls if c[0] == "patch_job_status"]


def test_pods_of_an_older_attempt_are_deleted() -> None:
    h = Harness()
    h.running()
    stale = dict(h.pods()[0])
    stale["metadata"] = {**stale["metadata"], "name": "train-worker-9"}
    stale["metadata"]["labels"] = {**stale["metadata"]["labels"], "estuary.dev/attempt": "0"}
    del stale["metadata"]["uid"]
    h.server.add(stale)
    h.step()
    assert "train-worker-9" not in [p["metadata"]["name"] for p in h.pods()]
    assert h.phase() == ("Running", "Running")
