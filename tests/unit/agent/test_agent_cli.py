"""Publishing to the Node and the agent process: patch shape, failures, the poll loop, SIGTERM."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from estuary.agent.cli import parse_args, run_loop
from estuary.agent.publish import KubeNodePatcher, PrintPatcher, Publisher
from estuary.agent.report import DeviceReport, NodeReport

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
NPU = DeviceReport(index=0, uuid="0000:C1:00.0", model="Ascend910B3", healthy=True)
REPORT = NodeReport("huawei", (NPU,))


class FakeCoreApi:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def patch_node(self, name: str, body: dict[str, Any], **kwargs: Any) -> object:
        self.calls.append((name, body, kwargs))
        if self.error:
            raise self.error
        return {}


def test_node_is_patched_with_a_merge_patch_of_only_the_annotations() -> None:
    api = FakeCoreApi()
    assert Publisher("ascend-7", KubeNodePatcher(api)).publish(REPORT, T0)

    [(name, body, kwargs)] = api.calls
    assert name == "ascend-7"
    assert list(body) == ["metadata"] and list(body["metadata"]) == ["annotations"]
    assert body["metadata"]["annotations"]["estuary.dev/accelerators-healthy"] == "1"
    assert kwargs["_content_type"] == "application/merge-patch+json"


def test_failed_patch_is_counted_and_the_next_success_resets_it() -> None:
    api = FakeCoreApi(error=RuntimeError("connection refused"))
    publisher = Publisher("ascend-7", KubeNodePatcher(api))
    assert not publisher.publish(REPORT, T0)
    assert not publisher.publish(REPORT, T0)
    assert publisher.failures == 2
    api.error = None
    assert publisher.publish(REPORT, T0) and publisher.failures == 0


def test_dry_run_prints_one_json_line_per_poll() -> None:
    out = io.StringIO()
    Publisher("n1", PrintPatcher(out)).publish(REPORT, T0)
    line = json.loads(out.getvalue())
    assert line["node"] == "n1"
    assert line["annotations"]["estuary.dev/agent-heartbeat"] == "2025-03-01T08:00:00Z"


def test_loop_polls_until_stopped() -> None:
    stop = threading.Event()
    polls: list[datetime] = []

    def poll(now: datetime) -> bool:
        polls.append(now)
        if len(polls) == 3:
            stop.set()
        return True

    assert run_loop(poll, stop=stop, interval_s=0.01, clock=lambda: T0) == 0
    assert len(polls) == 3


def test_once_exits_non_zero_when_the_poll_was_not_clean() -> None:
    stop = threading.Event()
    assert run_loop(lambda now: False, stop=stop, interval_s=60, once=True) == 1
    assert run_loop(lambda now: True, stop=stop, interval_s=60, once=True) == 0


def test_node_name_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_NAME", "gpu-node-9")
    assert parse_args([]).node == "gpu-node-9"
    monkeypatch.delenv("NODE_NAME")
    with pytest.raises(SystemExit):
        parse_args([])  # publishing without knowing the node would be a silent no-op


def test_agent_process_prints_annotations_and_stops_cleanly_on_sigterm() -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT / "operator"), "NODE_NAME": "n1"}
    argv = [
        sys.executable,
        "-m",
        "estuary.agent",
        "--backend",
        "nvidia",
        "--dry-run",
        "--interval",
        "0.2",
        "--metrics-port",
        "0",
        "--metrics-address",
        "127.0.0.1",
    ]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())  # works with or without a GPU on this machine
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    annotations: Mapping[str, str] = first["annotations"]
    assert first["node"] == "n1"
    devices = json.loads(annotations["estuary.dev/accelerator-health"])
    counted = int(annotations["estuary.dev/accelerators-healthy"]) + int(
        annotations["estuary.dev/accelerators-unhealthy"]
    )
    assert counted == len(devices)
    assert code == 0
