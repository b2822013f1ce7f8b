"""Time-sharing carried out by the job controller, through the fake API on a fake clock: a job
yields its turn to a less-served one, a job moves to a faster pool when it frees, a job that did
not opt in (or is not preemptible) is never touched, and the knobs come from the environment."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from tests.unit.control.harness import Harness

from estuary import metrics
from estuary.cli import main
from estuary.control.timeshare import from_env
from estuary.core import Policy, TimeSharing

# seconds, so that a test runs a few fake minutes: level 1 from 100 accelerator-seconds
FAST = TimeSharing(
    thresholds=(100.0, 100_000.0), min_slice_s=10.0, grace_s=0.0, restart_s=1.0, checkpoint_interval_s=0.0
)
SHARING = {"preemptible": True, "timeSharing": True, "gracePeriodSeconds": 7}


def harness(nodes: int = 2) -> Harness:
    return Harness(nodes, policy=Policy(time_sharing=FAST))


def tick(h: Harness, seconds: float = 1.0, times: int = 1) -> None:
    """Steps as the loop makes them, the kubelet starting new pods and removing deleted ones."""
    for _ in range(times):
        h.step(seconds=seconds)
        h.server.reap()
        for pod in h.server.items("pods"):
            if not (pod.get("status") or {}).get("phase"):
                h.server.set_pods("Running", pod["metadata"]["labels"]["estuary.dev/job-name"])


def graces(h: Harness) -> list[tuple[str, int | None]]:
    """Pod deletions with their grace period, recorded by a spy on the fake API."""
    seen: list[tuple[str, int | None]] = []
    delete = h.server.delete_pod

    def spy(namespace: str, name: str, grace_seconds: int | None = None) -> None:
        seen.append((name, grace_seconds))
        delete(namespace, name, grace_seconds)

    h.server.delete_pod = spy  # type: ignore[method-assign]
    return seen


def events(h: Harness, name: str) -> list[tuple[str, str]]:
    return [(reason, message) for job, reason, message in h.server.events if job == name]


def test_a_served_job_yields_its_turn_and_keeps_its_attained_service() -> None:
    h = harness()
    seen = graces(h)
    h.running("long", preemption=SHARING)
    tick(h, 5.0, 3)  # 15 s on 16 GPUs: 240 accelerator-seconds, past the minimum slice
    h.submit("short", preemption=SHARING)
    tick(h)
    long = h.status("long")
    assert (long["phase"], long["reason"]) == ("Queued", "Yielded"), long
    assert "retryAfter" not in long  # a turn, not an eviction: no backoff
    assert long["attainedService"] == pytest.approx(16 * 15 / 3600, rel=0.2)
    assert long["runs"][-1]["outcome"] == "Yielded"
    assert seen and all(grace == 7 for _, grace in seen), seen  # the job's grace period
    _, message = next(e for e in events(h, "long") if e[0] == "Yielded")
    assert "short" in message and "queue 1" in message and "(Service)" in message
    tick(h, 1.0, 3)
    assert h.phase("short")[0] == "Running"
    assert h.phase("long")[0] == "Queued"
    h.set_pods("Succeeded", "short")
    tick(h, 1.0, 3)
    resumed = h.status("long")
    assert resumed["phase"] == "Running" and resumed["attempt"] == 2
    assert resumed["attainedService"] == long["attainedService"]  # kept while it waited


def test_a_job_that_did_not_opt_in_or_cannot_be_preempted_is_never_touched() -> None:
    h = harness(nodes=3)
    h.running("plain", workers=1)  # preemptible, but not time-sharing
    h.running("pinned", workers=1, preemption={**SHARING, "preemptible": False})
    h.running("long", workers=1, preemption=SHARING)
    tick(h, 5.0, 4)
    h.submit("short", workers=1, preemption=SHARING)
    tick(h, 1.0, 4)
    assert h.phase("short")[0] == "Running"
    long = h.status("long")
    assert long["phase"] == "Queued" and [r["outcome"] for r in long["runs"]] == ["Yielded"], long
    for name in ("plain", "pinned"):
        status = h.status(name)
        assert (status["phase"], status["attempt"], len(status["runs"])) == ("Running", 1, 1), status


def two_pools(h: Harness) -> None:
    """Pool `slow` (a quarter of h800's speed) on node s0 beside h800's n0."""
    h.server.put(
        {
            "kind": "ComputePool",
            "metadata": {"name": "slow"},
            "spec": {
                "vendor": "nvidia",
                "model": "K80",
                "relativeThroughput": 0.25,
                "nodeSelector": {"estuary.dev/model": "K80"},
            },
        }
    )
    h.server.put(
        {
            "kind": "Node",
            "metadata": {"name": "s0", "labels": {"estuary.dev/model": "K80"}},
            "status": {
                "allocatable": {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "8"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
    )


def test_a_job_moves_to_the_fast_pool_when_it_frees() -> None:
    h = harness(nodes=1)
    h.server.graceful = True  # deleted pods stay until reaped, as the kubelet stops them
    two_pools(h)
    seen = graces(h)
    any_nvidia = [{"vendor": "nvidia", "image": "img"}]
    h.running("fast", workers=1)
    h.running("mover", workers=1, accelerators=any_nvidia, preemption=SHARING)
    assert h.status("mover")["placement"]["pool"] == "slow"
    before = metrics.METRICS.migrations.labels("default", "slow", "h800", "FasterType")._value.get()
    tick(h, 10.0, 3)
    assert h.status("mover")["phase"] == "Running"  # the fast pool is busy: it stays
    h.set_pods("Succeeded", "fast")
    h.step(seconds=1.0)  # decides the move; the old pods are terminating (not reaped yet)
    mover = h.status("mover")
    assert (mover["phase"], mover["reason"]) == ("Queued", "Migrating"), mover
    assert "moves from slow to h800" in mover["message"] and "grace 7s" in mover["message"]
    assert mover["attainedService"] == pytest.approx(8 * 0.25 * 31 / 3600, rel=0.2)
    assert seen and all(grace == 7 for _, grace in seen)
    assert (
        metrics.METRICS.migrations.labels("default", "slow", "h800", "FasterType")._value.get() == before + 1
    )
    h.submit("thief", workers=1)  # arrives while the mover's pods terminate: not on its room
    h.step(seconds=1.0)
    assert h.phase("thief")[0] == "Queued" and h.status("mover")["placement"]["pool"] == "slow"
    tick(h, 1.0, 3)
    moved = h.status("mover")
    assert (moved["phase"], moved["placement"]["pool"], moved["attempt"]) == ("Running", "h800", 2), moved
    assert h.status("thief")["placement"]["pool"] == "slow"
    assert [e[0] for e in events(h, "mover")].count("Migrating") == 1


def test_the_knobs_come_from_the_environment() -> None:
    assert from_env({}) == TimeSharing(slow_start=False)  # production defaults; only opted-in jobs
    on = from_env({"ESTUARY_TIME_SHARING_SLOW_START": "true"})
    assert on is not None and on.slow_start
    assert from_env({"ESTUARY_TIME_SHARING": "false"}) is None
    custom: dict[str, Any] = {
        "ESTUARY_TIME_SHARING_THRESHOLDS": "60,600",
        "ESTUARY_TIME_SHARING_MIN_SLICE_SECONDS": "5",
        "ESTUARY_TIME_SHARING_MIGRATE": "off",
    }
    ts = from_env(custom)
    assert ts is not None and (ts.thresholds, ts.min_slice_s, ts.migrate) == ((60.0, 600.0), 5.0, False)
    with pytest.raises(ValueError, match="ESTUARY_TIME_SHARING_MIN_SLICE_SECONDS='soon' is not a number"):
        from_env({"ESTUARY_TIME_SHARING_MIN_SLICE_SECONDS": "soon"})
    with pytest.raises(ValueError, match="increasing"):
        from_env({"ESTUARY_TIME_SHARING_THRESHOLDS": "600,60"})


def test_with_the_operators_defaults_a_job_that_did_not_opt_in_starts_where_it_fits() -> None:
    """Time-sharing on, as the operator runs it by default: a job that did not opt in still
    starts on the slow pool when the fast one is busy (no waiting for its fastest type)."""
    h = Harness(1, policy=Policy(time_sharing=from_env({})))
    two_pools(h)
    h.running("fast", workers=1)
    h.running("plain", workers=1, accelerators=[{"vendor": "nvidia", "image": "img"}])
    assert h.status("plain")["placement"]["pool"] == "slow"


def test_the_operator_does_not_start_with_a_setting_that_does_not_parse() -> None:
    result = CliRunner().invoke(main, ["operator"], env={"ESTUARY_TIME_SHARING_THRESHOLDS": "1h"})
    assert result.exit_code == 1
    assert "operator settings: ESTUARY_TIME_SHARING_THRESHOLDS='1h'" in result.output
