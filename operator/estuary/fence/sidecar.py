"""The two fence containers of a worker pod, `estuary fence wait` and `estuary fence watch`.

`wait` is an ordinary init container: it reads the lease object until it sees a renewal (a token
that changed between two reads, credited at the earlier read's start) and exits 0, so the workers
start only under a lease confirmed on this node's clock. When it sees none within the lease (the
origin gave the attempt up or cannot reach it, or the lease object is gone) it exits 1, and with
the pod's `restartPolicy: Never` the pod fails without ever starting a worker.

`watch` is a native sidecar (an init container with `restartPolicy: Always`, running beside the
workers): it keeps reading, and once no renewal has been credited for longer than the lease on its
own clock (or the lease object is deleted) it stops the workers (procs.py) for good, writes why to
the shared `stop` file and to its termination message, and stays (a fence never un-fences).

Both keep their state in a file of a shared emptyDir, on the node's monotonic clock (shared by the
pod's containers), so a restarted sidecar resumes from the last credit instead of granting itself a
new lease; a different boot id (the node rebooted: the monotonic clock restarted) voids it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import FrameType

from estuary.fence.lease import FenceState, expired, observe
from estuary.fence.procs import Stopper
from estuary.fence.source import LeaseGone

log = logging.getLogger("estuary.fence")
STATE_FILE = "state.json"
STOP_FILE = "stop"  # a cooperative worker may watch for it (checkpoint and exit)
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return "unknown"


@dataclass(frozen=True)
class Settings:
    lease_seconds: float
    state_dir: Path
    grace_seconds: float = 30.0
    period: float = 2.0  # seconds between reads of the lease object
    termination_log: Path | None = Path("/dev/termination-log")


class Fence:
    def __init__(
        self,
        read_token: Callable[[], str],
        settings: Settings,
        stopper: Stopper | None = None,
        mono: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        boot: Callable[[], str] = boot_id,
    ) -> None:
        self.read_token, self.settings, self.stopper = read_token, settings, stopper or Stopper()
        self.mono, self.sleep, self.boot = mono, sleep, boot
        self.stopping = threading.Event()

    # ---- state -----------------------------------------------------------------------------
    def load(self) -> FenceState:
        current = self.boot()
        try:
            saved = FenceState(**json.loads((self.settings.state_dir / STATE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return FenceState(current)
        if saved.boot_id != current:  # the node rebooted: its monotonic clock restarted
            log.warning("fence: the node rebooted since the last credit; it no longer counts")
            return FenceState(current, fenced=saved.fenced)
        return saved

    def save(self, state: FenceState) -> None:
        path = self.settings.state_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state)))
        os.replace(tmp, path)  # atomic: a restart reads the old state or the new one

    def read(self, state: FenceState) -> FenceState:
        """One read of the lease object; the state it leaves (fenced when the object is gone)."""
        started = self.mono()
        try:
            token = self.read_token()
        except LeaseGone as gone:
            return replace(state, fenced=f"{gone}: this attempt was given up")
        except Exception as exc:  # no evidence either way; never the text (it may quote a request)
            log.warning("fence: reading the lease failed (%s)", type(exc).__name__)
            return state
        return observe(state, token, started)

    # ---- the two commands ------------------------------------------------------------------
    def wait(self) -> int:
        """Until a renewal is credited (0), or the lease passes without one (1)."""
        lease, started = self.settings.lease_seconds, self.mono()
        state = self.load()
        while not self.stopping.is_set():
            if state.fenced:
                return self._refuse(f"not starting the workers: {state.fenced}")
            if not expired(state, lease, self.mono()):
                self.save(state)
                log.info("fence: lease confirmed; the workers may start")
                return 0
            if self.mono() - started > lease:
                return self._refuse(
                    f"not starting the workers: no lease renewal seen within {lease:g}s "
                    "(the origin gave this attempt up or cannot reach this cluster)"
                )
            state = self.read(state)
            self.save(state)
            self.sleep(self.settings.period)
        return 1

    def watch(self) -> int:
        """Read every period; stop the workers once the lease is over. Runs until told to stop."""
        lease, period = self.settings.lease_seconds, self.settings.period
        state = self.load()
        next_read = self.mono()
        while not self.stopping.is_set():
            now = self.mono()
            if state.fenced is None and now >= next_read:
                state, next_read = self.read(state), now + period
                self.save(state)
            if state.fenced is None and expired(state, lease, self.mono()):
                credited = "never" if state.credited is None else f"{self.mono() - state.credited:.0f}s ago"
                state = replace(
                    state, fenced=f"lease not confirmed for {lease:g}s (last renewal credited {credited})"
                )
                self.save(state)
            if state.fenced is not None:
                try:
                    self._fence(state.fenced)
                except Exception:  # keep fencing: the next pass tries again
                    log.exception("fence: stopping the workers failed")
            self.sleep(min(1.0, period))
        return 0

    # ---- helpers ---------------------------------------------------------------------------
    def _fence(self, why: str) -> None:
        """Stop the workers (again: a restarted sidecar, or anything that came back)."""
        if not self.stopper.targets():
            return
        message = f"fenced: {why}; stopping the workers"
        log.error("fence: %s", message)
        self._note(message)
        left = self.stopper.stop(self.settings.grace_seconds)
        if not left:
            log.error("fence: every worker process is gone")

    def _refuse(self, message: str) -> int:
        log.error("fence: %s", message)
        self._note(f"fenced: {message}")
        return 1

    def _note(self, message: str) -> None:
        (self.settings.state_dir / STOP_FILE).write_text(message + "\n")
        if self.settings.termination_log is not None:
            with contextlib.suppress(OSError):  # not in a container (tests, local runs)
                self.settings.termination_log.write_text(message)

    def stop_on_sigterm(self) -> None:
        """The kubelet ends the sidecar with SIGTERM when the pod ends: leave the loop quietly."""

        def handler(signum: int, frame: FrameType | None) -> None:
            self.stopping.set()

        signal.signal(signal.SIGTERM, handler)
