"""The fence with real processes: a pod's process tree in its own PID namespace (tests/podsim.py:
PID 1 named pause, init containers, a native sidecar, the worker), the real `estuary fence wait`
and `estuary fence watch`, and a worker that ignores SIGTERM and leaves a child behind, reading its
lease from a stand-in API server (tests/leaseserver.py).

These need a new PID namespace (`unshare --pid`: root, or unprivileged user namespaces). Where the
machine allows none they skip, saying so; the selection of victims and the signal sequence are
also covered without namespaces in test_fence.py."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests import podsim
from tests.leaseserver import LeaseServer

LEASE, PERIOD, GRACE = 3.0, 0.3, 1.0
PREFIX = podsim.unshare_prefix()
pytestmark = pytest.mark.skipif(
    PREFIX is None,
    reason="needs a new PID namespace (unshare --pid, as root or with user namespaces); "
    "victim selection and signalling are covered without one in test_fence.py",
)

# The worker: ignores SIGTERM (only SIGKILL stops it), forks a child that ignores it too and would
# be re-parented to PID 1 if only the worker died, and both write a heartbeat (CLOCK_MONOTONIC).
WORKER = textwrap.dedent(
    """
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    beat = sys.argv[1]
    if os.fork() == 0:
        beat += ".child"
    while True:
        with open(beat + ".tmp", "w") as f:
            f.write(repr(time.monotonic()))
        os.replace(beat + ".tmp", beat)
        time.sleep(0.1)
    """
)


class PodRun:
    """One simulated pod: its status file, the worker's heartbeats, the process running it."""

    def __init__(self, tmp: Path, server: LeaseServer) -> None:
        self.tmp, self.server = tmp, server
        self.status_path = tmp / "pod.json"
        self.beat = tmp / "beat"
        self.state_dir = tmp / "fence"
        self.termination = tmp / "termination-log"
        kubeconfig = server.kubeconfig(tmp / "kubeconfig")

        def fence(command: str) -> list[str]:
            return [
                sys.executable,
                "-m",
                "estuary.cli",
                "fence",
                command,
                "--object",
                f"configmap/{server.name}",
                "--namespace",
                server.namespace,
                "--lease-seconds",
                str(LEASE),
                "--grace-seconds",
                str(GRACE),
                "--period",
                str(PERIOD),
                "--state-dir",
                str(self.state_dir),
                "--kubeconfig",
                str(kubeconfig),
                "--termination-log",
                str(self.termination),
            ]

        spec = {
            "status": str(self.status_path),
            "init": {"fence-wait": fence("wait")},
            "sidecars": {"fence": fence("watch")},
            "containers": {"worker": [sys.executable, "-c", WORKER, str(self.beat)]},
        }
        (tmp / "spec.json").write_text(json.dumps(spec))
        assert PREFIX is not None
        self.proc = subprocess.Popen(podsim.command(tmp / "spec.json", PREFIX))

    def status(self) -> dict[str, Any]:
        try:
            out: dict[str, Any] = json.loads(self.status_path.read_text())
            return out
        except (OSError, ValueError):
            return {}

    def alive(self, suffix: str = "") -> bool:
        """The worker (or its child) wrote a heartbeat in the last 0.6 s."""
        try:
            return time.monotonic() - float((self.tmp / f"beat{suffix}").read_text()) < 0.6
        except (OSError, ValueError):
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # unshare --kill-child: the whole namespace goes with it
            self.proc.wait(timeout=10)


@pytest.fixture
def pod(tmp_path: Path) -> Iterator[Callable[[], PodRun]]:
    server = LeaseServer()
    runs: list[PodRun] = []

    def start() -> PodRun:
        runs.append(PodRun(tmp_path, server))
        return runs[-1]

    yield start
    for run in runs:
        run.stop()
    server.close()


def until(predicate: Callable[[], Any], timeout: float, what: str, renew: LeaseServer | None = None) -> float:
    """Poll (renewing every 0.5 s when asked); the monotonic time it became true."""
    deadline, last_renewal = time.monotonic() + timeout, 0.0
    while time.monotonic() < deadline:
        if renew is not None and time.monotonic() - last_renewal >= 0.5:
            renew.renew()
            last_renewal = time.monotonic()
        if predicate():
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_workers_start_only_after_a_renewal_and_run_while_the_lease_is_renewed(
    pod: Callable[[], PodRun],
) -> None:
    run = pod()
    time.sleep(1.0)
    assert not run.alive() and run.status().get("phase") == "Pending"  # no renewal yet: gated
    until(lambda: run.alive() and run.alive(".child"), 10, "the worker started", renew=run.server)
    started = time.monotonic()
    until(lambda: time.monotonic() - started > 3 * LEASE, 4 * LEASE, "three leases", renew=run.server)
    assert run.alive() and run.alive(".child"), "the worker was stopped although the lease was renewed"
    assert run.status()["init"] == {"fence-wait": 0}
    assert not (run.state_dir / "stop").exists()


def test_when_renewals_stop_the_worker_and_its_child_are_killed_within_the_lease_and_grace(
    pod: Callable[[], PodRun],
) -> None:
    run = pod()
    until(lambda: run.alive() and run.alive(".child"), 10, "the worker started", renew=run.server)
    last = time.monotonic()
    run.server.renew()  # the last renewal; then the origin goes silent
    dead = until(lambda: not run.alive() and not run.alive(".child"), LEASE + 6, "the workers stopped")
    # Credited at the read before it was seen: at the earliest last - PERIOD; SIGTERM is ignored,
    # so SIGKILL comes after the grace period.
    assert dead - last >= LEASE - PERIOD, f"stopped {dead - last:.1f}s after the last renewal: early"
    assert dead - last <= LEASE + 2 * PERIOD + GRACE + 1.5, f"stopped only {dead - last:.1f}s after"
    status = until(lambda: run.status().get("phase") == "Failed", 5, "the pod Failed")
    assert status and run.status()["containers"]["worker"]["exitCode"] == 137  # SIGKILL
    assert (run.state_dir / "stop").read_text().startswith("fenced: lease not confirmed for 3s")
    assert run.termination.read_text().startswith("fenced:")


def test_without_any_renewal_the_workers_never_start_and_the_pod_fails(pod: Callable[[], PodRun]) -> None:
    run = pod()
    until(lambda: run.status().get("phase") == "Failed", LEASE + 5, "the pod Failed")
    assert run.status()["init"] == {"fence-wait": 1} and not run.beat.exists()
    assert "no lease renewal seen within 3s" in run.termination.read_text()


def test_a_restarted_fence_keeps_the_old_deadline_and_does_not_grant_itself_a_new_lease(
    pod: Callable[[], PodRun],
) -> None:
    run = pod()
    until(lambda: run.alive(), 10, "the worker started", renew=run.server)
    run.server.renew()
    last = time.monotonic()
    time.sleep(LEASE / 2)
    # Kill the watch sidecar; podsim restarts it (restartPolicy: Always), as the kubelet would.
    found = subprocess.run(["pgrep", "-f", "fence watch"], capture_output=True, text=True).stdout.split()
    assert found, "no fence watch process"
    for pid in found:
        subprocess.run(["kill", "-9", pid], check=False)
    until(lambda: run.status().get("sidecarStarts", {}).get("fence", 0) >= 2, 5, "the fence restarted")
    dead = until(lambda: not run.alive() and not run.alive(".child"), LEASE + 6, "the workers stopped")
    assert dead - last <= LEASE + 2 * PERIOD + GRACE + 2.0, f"stopped {dead - last:.1f}s after: late"


def test_deleting_the_lease_object_stops_the_workers_at_once(pod: Callable[[], PodRun]) -> None:
    run = pod()
    until(lambda: run.alive(), 10, "the worker started", renew=run.server)
    run.server.renew()  # fresh: the lease would last another 3 s
    run.server.token = None
    gone = time.monotonic()
    dead = until(lambda: not run.alive() and not run.alive(".child"), LEASE + 5, "the workers stopped")
    assert dead - gone <= PERIOD + GRACE + 1.5
    assert "was deleted" in (run.state_dir / "stop").read_text()


def test_an_unreadable_lease_is_no_evidence_and_fences_on_time(pod: Callable[[], PodRun]) -> None:
    run = pod()
    until(lambda: run.alive(), 10, "the worker started", renew=run.server)
    run.server.renew()
    last = time.monotonic()
    # The fence credits a renewal only once a read shows it (at the start of the read before):
    # let two reads pass, so the renewal at `last` is its evidence, not an older one.
    reads = run.server.reads
    until(lambda: run.server.reads >= reads + 2, 5, "the fence read the renewed lease")
    run.server.broken = True  # the API answers 500 from now on
    dead = until(lambda: not run.alive(), LEASE + 6, "the workers stopped")
    assert LEASE - PERIOD <= dead - last <= LEASE + 2 * PERIOD + GRACE + 1.5


def test_outside_a_pod_namespace_the_fence_refuses_to_signal_anything(tmp_path: Path) -> None:
    if Path("/proc/1/comm").read_text().strip() == "pause":
        pytest.skip("this test runs inside a pod's shared process namespace")
    server = LeaseServer()
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "estuary.cli",
                "fence",
                "watch",
                "--object",
                "configmap/lease",
                "--namespace",
                server.namespace,
                "--lease-seconds",
                "1",
                "--state-dir",
                str(tmp_path),
                "--kubeconfig",
                str(server.kubeconfig(tmp_path / "kc")),
                "--termination-log",
                str(tmp_path / "log"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.close()
    assert out.returncode == 2 and "shareProcessNamespace" in out.stderr
