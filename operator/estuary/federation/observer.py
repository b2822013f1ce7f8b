"""Partner side: observe lease renewals of the copies other clusters sent here, on this cluster's
clock, with fresh reads (never the watch cache, whose lag is unbounded).

Every `period` seconds the observer lists the copies (a consistent read). A renewal token that
differs from what the previous successful read showed was written after that read began, so it is
credited at that read's start: never later than it was written, whatever the delays of requests,
watches or this process. The first read after start-up credits nothing (it cannot tell when a
change happened); the copy's persisted observation stands until a later renewal is seen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from estuary.federation import lease, naming
from estuary.federation.home import HomeApi

log = logging.getLogger("estuary.federation")


@dataclass(frozen=True, slots=True)
class Observation:
    token: str
    credited_at: float | None  # wall clock of this cluster; None: seen, not credited


class LeaseObserver:
    def __init__(self, home: HomeApi, wall: Callable[[], float] = time.time, period: float = 2.0) -> None:
        self.home, self.wall, self.period = home, wall, period
        self._lock = threading.Lock()
        self._observed: dict[str, Observation] = {}
        self._last_tokens: dict[str, str] = {}
        self._previous_start: float | None = None
        self.reads = 0

    def get(self, uid: str) -> Observation | None:
        with self._lock:
            return self._observed.get(uid)

    def poll(self) -> None:
        """One read of every copy; raises when the read fails (nothing is credited then)."""
        started = self.wall()
        items = self.home.list_copies()
        with self._lock:
            present = set()
            for item in items:
                meta = item.get("metadata") or {}
                uid = str(meta.get("uid") or "")
                token = str((meta.get("annotations") or {}).get(naming.LEASE_RENEW) or "")
                present.add(uid)
                credited = lease.credit(token, self._last_tokens.get(uid), self._previous_start)
                if credited is not None or uid not in self._observed:
                    self._observed[uid] = Observation(token, credited)
                self._last_tokens[uid] = token
            for uid in [u for u in self._observed if u not in present]:
                self._observed.pop(uid, None)
                self._last_tokens.pop(uid, None)
            self._previous_start = started
            self.reads += 1

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll()
            except Exception as exc:
                log.warning(
                    "federation: reading copies sent by other clusters failed (%s)", type(exc).__name__
                )
            stop.wait(self.period)
