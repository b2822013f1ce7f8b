"""The fence without real processes: crediting, the victims in a pod's process namespace, the
signal sequence, the wait/watch loops on a fake clock, and the pod manifest it adds."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from estuary.fence import pod as fencepod
from estuary.fence.lease import FenceState, credit, expired, observe
from estuary.fence.procs import NotInPodNamespace, Proc, Stopper, check_namespace, victims
from estuary.fence.sidecar import Fence, Settings
from estuary.fence.source import LeaseGone, LeaseRef


# ---- crediting --------------------------------------------------------------------------------
def test_a_changed_token_is_credited_at_the_previous_reads_start_never_later() -> None:
    assert credit("t1", "t0", 100.0) == 100.0
    assert credit("t1", "t1", 100.0) is None  # unchanged: no news
    assert credit("t1", None, None) is None  # the first read cannot tell when it changed
    state = observe(FenceState("b"), "t0", 10.0)
    assert state.credited is None and state.previous_read_start == 10.0
    state = observe(state, "t1", 12.0)
    assert state.credited == 10.0 and not expired(state, 5, 15.0) and expired(state, 5, 15.1)
    assert observe(state, "t1", 14.0).credited == 10.0  # a read showing nothing new keeps the credit


# ---- which processes are the workers -----------------------------------------------------------
POD = {
    1: Proc(1, 0, "pause", "S"),
    7: Proc(7, 0, "estuary", "S"),  # the fence (its container's entry point)
    8: Proc(8, 7, "python", "S"),  # a child of the fence
    20: Proc(20, 0, "torchrun", "S"),  # the worker container
    21: Proc(21, 20, "python", "R"),
    22: Proc(22, 1, "python", "S"),  # an orphan: its parent died, PID 1 adopted it
    23: Proc(23, 20, "python", "Z"),  # a zombie: already dead
}


def test_victims_are_every_process_but_pid_1_the_fences_own_and_zombies() -> None:
    assert victims(POD, 7) == [20, 21, 22]
    assert victims(POD, 8) == [20, 21, 22]  # a fence started by a wrapper spares the wrapper


def test_the_fence_refuses_outside_a_pods_shared_process_namespace() -> None:
    check_namespace(POD)
    host = {**POD, 1: Proc(1, 0, "systemd", "S")}
    with pytest.raises(NotInPodNamespace, match="shareProcessNamespace"):
        check_namespace(host)


@dataclass
class FakeOs:
    """A process table that signals act on: SIGTERM kills only those that do not ignore it."""

    table: dict[int, Proc]
    ignores_term: set[int] = field(default_factory=set)
    unkillable: set[int] = field(default_factory=set)  # state D
    forks_on_term: dict[int, int] = field(default_factory=dict)  # pid -> child born when signalled
    sent: list[tuple[int, int]] = field(default_factory=list)
    t: float = 0.0

    def kill(self, pid: int, sig: int) -> None:
        if pid not in self.table:
            raise ProcessLookupError(pid)
        self.sent.append((pid, sig))
        child = self.forks_on_term.pop(pid, None)
        if child is not None:
            self.table[child] = Proc(child, pid, "python", "S")
        if pid in self.unkillable or (sig == signal.SIGTERM and pid in self.ignores_term):
            return
        del self.table[pid]

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def _stopper(fake: FakeOs) -> Stopper:
    return Stopper(
        me=7, procs=lambda: dict(fake.table), kill=fake.kill, sleep=fake.sleep, mono=lambda: fake.t, sweeps=5
    )


def test_sigterm_first_then_sigkill_after_the_grace_for_whatever_ignores_it() -> None:
    fake = FakeOs(dict(POD), ignores_term={20, 22}, forks_on_term={21: 30})
    assert _stopper(fake).stop(grace_seconds=2.0) == []
    assert set(fake.table) == {1, 7, 8, 23}  # the child forked while being killed is caught too
    assert (20, signal.SIGTERM) in fake.sent and (20, signal.SIGKILL) in fake.sent
    assert (30, signal.SIGKILL) in fake.sent
    assert fake.t >= 2.0  # the grace was given


def test_a_process_stuck_in_the_kernel_is_reported_not_hidden() -> None:
    fake = FakeOs(dict(POD), unkillable={21})
    fake.table[21] = Proc(21, 20, "python", "D")
    assert _stopper(fake).stop(grace_seconds=0.5) == [21]


# ---- the loops, on a fake clock ---------------------------------------------------------------
@dataclass
class Origin:
    """The lease object as the fence reads it, and the fake clock."""

    token: str | None = "t0"
    t: float = 100.0
    fail: bool = False

    def read(self) -> str:
        self.t += 0.1  # a read takes time
        if self.fail:
            raise OSError("unreachable")
        if self.token is None:
            raise LeaseGone("configmap ns/x was deleted")
        return self.token


def _fence(tmp_path: Path, origin: Origin, fake: FakeOs, renew_every: float | None = None) -> Fence:
    settings = Settings(lease_seconds=10, state_dir=tmp_path, grace_seconds=1, period=1, termination_log=None)
    fence = Fence(origin.read, settings, _stopper(fake), mono=lambda: origin.t, boot=lambda: "boot-1")
    ticks = {"n": 0}

    def sleep(seconds: float) -> None:
        origin.t += seconds
        ticks["n"] += 1
        if renew_every is not None and origin.token is not None and origin.t % renew_every < seconds:
            origin.token = f"t{ticks['n']}"
        if origin.t > 200:
            fence.stopping.set()

    fence.sleep = sleep
    return fence


def test_wait_lets_the_workers_start_once_a_renewal_is_credited(tmp_path: Path) -> None:
    origin = Origin()
    assert _fence(tmp_path, origin, FakeOs(dict(POD)), renew_every=3).wait() == 0
    assert origin.t < 110
    assert not (tmp_path / "stop").exists()


def test_wait_refuses_when_no_renewal_comes_within_the_lease(tmp_path: Path) -> None:
    origin = Origin()
    assert _fence(tmp_path, origin, FakeOs(dict(POD))).wait() == 1
    assert 110 <= origin.t <= 112
    assert "no lease renewal seen within 10s" in (tmp_path / "stop").read_text()


def test_watch_stops_the_workers_after_the_lease_and_never_unfences(tmp_path: Path) -> None:
    origin, fake = Origin(), FakeOs(dict(POD))
    _fence(tmp_path, origin, fake, renew_every=3).wait()  # credited
    stopped: list[float] = []
    fence = _fence(tmp_path, origin, fake)
    real_kill = fake.kill

    def kill(pid: int, sig: int) -> None:
        stopped.append(origin.t)
        real_kill(pid, sig)

    fence.stopper.kill = kill
    assert fence.watch() == 0
    assert stopped and 108 <= stopped[0] <= 114  # lease 10 s after a credit near 100-103
    assert set(fake.table) == {1, 7, 8, 23}
    state = fence.load()
    assert state.fenced is not None and state.fenced.startswith("lease not confirmed for 10s")


def test_a_new_boot_voids_the_persisted_credit(tmp_path: Path) -> None:
    origin = Origin()
    _fence(tmp_path, origin, FakeOs(dict(POD)), renew_every=3).wait()
    fence = _fence(tmp_path, origin, FakeOs(dict(POD)))
    assert fence.load().credited is not None
    fence.boot = lambda: "boot-2"
    assert fence.load().credited is None


# ---- the pod ---------------------------------------------------------------------------------
WORKER_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "j-worker-0", "namespace": "tenant-a"},
    "spec": {
        "initContainers": [{"name": "fetch-data", "image": "busybox"}],
        "containers": [{"name": "worker", "image": "train:1"}],
        "volumes": [{"name": "data", "emptyDir": {}}],
    },
}


def test_the_fenced_pod_shares_its_process_namespace_and_gates_the_workers_last() -> None:
    spec = fencepod.FenceSpec("estuary:1", "configmap", "j", 120, 30)
    out = fencepod.fenced(WORKER_POD, spec)
    pod_spec = out["spec"]
    assert pod_spec["shareProcessNamespace"] is True
    assert [c["name"] for c in pod_spec["initContainers"]] == ["fetch-data", "fence-wait", "fence"]
    wait, watch = pod_spec["initContainers"][1:]
    assert "restartPolicy" not in wait and watch["restartPolicy"] == "Always"
    assert wait["args"][:2] == ["fence", "wait"] and watch["args"][:2] == ["fence", "watch"]
    assert "configmap/j" in watch["args"] and "tenant-a" in watch["args"] and "120" in watch["args"]
    assert watch["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["KILL"]}
    assert watch["resources"]["requests"] == {"cpu": "10m", "memory": "48Mi"}
    assert {"name": "estuary-fence", "mountPath": fencepod.MOUNT, "readOnly": True} in pod_spec["containers"][
        0
    ]["volumeMounts"]
    assert [v["name"] for v in pod_spec["volumes"]] == ["data", "estuary-fence"]
    assert "initContainers" in WORKER_POD["spec"] and len(WORKER_POD["spec"]["initContainers"]) == 1


def test_a_pod_that_names_its_user_runs_the_fence_as_that_user_without_capabilities() -> None:
    as_user = {**WORKER_POD, "spec": {**WORKER_POD["spec"], "securityContext": {"runAsUser": 1000}}}
    out = fencepod.fenced(as_user, fencepod.FenceSpec("estuary:1", "aijob", "j", 120, 30))
    security = out["spec"]["initContainers"][-1]["securityContext"]
    assert security["runAsUser"] == 1000 and "add" not in security["capabilities"]


def test_the_fences_report_is_read_from_its_termination_message() -> None:
    status = {
        "initContainerStatuses": [
            {"name": "fence-wait", "state": {"terminated": {"exitCode": 0}}},
            {"name": "fence", "lastState": {"terminated": {"message": "fenced: lease not confirmed"}}},
        ]
    }
    assert fencepod.fence_report({"status": status}) == "fenced: lease not confirmed"
    assert fencepod.fence_report({"status": {}}) is None


def test_lease_refs_name_a_configmap_or_an_aijob() -> None:
    assert LeaseRef.parse("configmap/x", "ns").path == "/api/v1/namespaces/ns/configmaps/x"
    assert LeaseRef.parse("aijob/x", "ns").path == "/apis/estuary.dev/v1alpha1/namespaces/ns/aijobs/x"
    with pytest.raises(ValueError, match="configmap/<name>"):
        LeaseRef.parse("secret/x", "ns")
