"""Which processes are a pod's workers, and how they are really stopped.

The pod runs with `shareProcessNamespace: true`, so the fence sees every process of the pod:
PID 1 is the pod's pause process, its own processes are one subtree, and everything else belongs
to the other containers: the workers (and any other sidecars, which die with the pod anyway).

What stops a worker, and what does not:
  * SIGTERM can be caught or ignored (torchrun forwards it, many scripts ignore it), so it is only
    the polite first step; after the grace period every remaining process gets SIGKILL, which
    cannot be caught, blocked or ignored.
  * Killing a container's main process is not enough: in a shared process namespace its children
    are re-parented to the pause process and keep running (and keep the accelerators busy). So
    every process of the other containers is a target, found afresh on every sweep, until none is
    left (a process that forks while being killed is caught by the next sweep).
  * The worker's main process is not PID 1 in a shared namespace, so the kernel's protection of
    a namespace's init (which drops signals it has no handler for) does not apply to it.
  * A process in uninterruptible sleep (state D: a hung NFS or device-driver call) dies only when
    the call returns; nothing in user space can do better, and the fence reports it.
  * Zombies are already dead (the pause process reaps them) and are not targets.
When the worker container's main process is gone the container has exited; with the pod's
`restartPolicy: Never` the kubelet does not start it again, and the pod ends Failed.

Signals need permission: the fence runs as the workers' user, or as root with CAP_KILL.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("estuary.fence")
POD_INIT = "pause"  # PID 1 of a pod's shared process namespace


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    state: str  # R, S, D, Z, T, ...


class NotInPodNamespace(RuntimeError):
    """The fence is not in a pod's shared process namespace: it refuses to signal anything."""


def read_procs(proc: Path = Path("/proc")) -> dict[int, Proc]:
    """Every process visible here (a process that exits while being read is skipped)."""
    out: dict[int, Proc] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ")"
        head, _, rest = stat.rpartition(")")
        fields = rest.split()
        out[int(entry.name)] = Proc(int(entry.name), int(fields[1]), head.partition("(")[2], fields[0])
    return out


def _family(procs: Mapping[int, Proc], me: int) -> set[int]:
    """The fence's own processes: itself, its descendants, and its ancestors below PID 1 (a
    wrapper in its container). The ancestors' other children are not included: through PID 1
    that would be everyone."""
    mine = {me}
    grew = True
    while grew:
        grew = False
        for p in procs.values():
            if p.ppid in mine and p.pid not in mine and p.pid != 1:
                mine.add(p.pid)
                grew = True
    pid = me
    while pid in procs and procs[pid].ppid not in (0, 1, pid) and procs[pid].ppid in procs:
        pid = procs[pid].ppid
        mine.add(pid)
    return mine


def victims(procs: Mapping[int, Proc], me: int) -> list[int]:
    """The processes to stop: all but PID 1, the fence's own, and zombies."""
    family = _family(procs, me)
    return sorted(p.pid for p in procs.values() if p.pid != 1 and p.pid not in family and p.state != "Z")


def check_namespace(procs: Mapping[int, Proc], init_name: str = POD_INIT) -> None:
    """Refuse to act anywhere but in a pod's shared process namespace (PID 1 is the pause
    process): on a host, "every other process" would be the whole machine."""
    init = procs.get(1)
    if init is None or init.comm != init_name:
        found = init.comm if init else "nothing"
        raise NotInPodNamespace(
            f"PID 1 is {found!r}, not {init_name!r}: the fence needs the pod's shared process "
            "namespace (shareProcessNamespace: true) to see and stop the workers"
        )


@dataclass
class Stopper:
    """Stops the workers: SIGTERM, the grace period, then SIGKILL sweeps until none is left."""

    me: int = field(default_factory=os.getpid)
    init_name: str = POD_INIT
    procs: Callable[[], dict[int, Proc]] = read_procs
    kill: Callable[[int, int], None] = os.kill
    sleep: Callable[[float], None] = time.sleep
    mono: Callable[[], float] = time.monotonic
    sweeps: int = 100

    def targets(self) -> list[int]:
        table = self.procs()
        check_namespace(table, self.init_name)
        return victims(table, self.me)

    def _signal(self, pids: list[int], sig: int) -> None:
        for pid in pids:
            try:
                self.kill(pid, sig)
            except ProcessLookupError:  # gone meanwhile
                continue
            except PermissionError:
                log.error("fence: may not signal process %d (run as the workers' user or with CAP_KILL)", pid)

    def stop(self, grace_seconds: float) -> list[int]:
        """Stop every worker process; returns those still present at the end (state D, or not
        permitted), empty when all are gone."""
        left = self.targets()
        self._signal(left, signal.SIGTERM)
        deadline = self.mono() + grace_seconds
        while left and self.mono() < deadline:
            self.sleep(0.2)
            left = self.targets()
        for _ in range(self.sweeps):
            if not left:
                return []
            self._signal(left, signal.SIGKILL)
            self.sleep(0.1)
            left = self.targets()
        if left:
            table = self.procs()
            states = ", ".join(f"{p} ({table[p].comm}, state {table[p].state})" for p in left if p in table)
            log.error("fence: processes still present after SIGKILL: %s", states)
        return left
