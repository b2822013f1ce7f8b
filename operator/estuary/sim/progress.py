"""A throttled progress line on stderr for long replays (percent of jobs finished)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from estuary.sim.metrics import HOUR


class StderrProgress:
    """Prints ``label: 42% (2100/5000 jobs, t=812.3 h)`` at most every ``interval`` seconds."""

    def __init__(self, label: str, total: int, interval: float = 2.0, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(total, 1)
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self._last = 0.0
        self._started = time.monotonic()
        self._printed = False

    def _line(self, done: int, now: float) -> str:
        pct = min(100, 100 * done // self.total)  # floor: 100% only when all are done
        return (
            f"{self.label}: {pct:3d}% ({min(done, self.total)}/{self.total} jobs, "
            f"t={now / HOUR:.1f} h simulated, {time.monotonic() - self._started:.0f} s)"
        )

    def update(self, done: int, now: float) -> None:
        t = time.monotonic()
        if t - self._last >= self.interval:
            self._last = t
            self.stream.write("\r" + self._line(done, now))
            self.stream.flush()
            self._printed = True

    def finish(self, done: int, now: float) -> None:
        self.stream.write(("\r" if self._printed else "") + self._line(done, now) + "\n")
        self.stream.flush()
