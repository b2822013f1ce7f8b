"""Partner side: stop, for good, every copy whose origin stopped renewing its lease.

Runs before the job controller's step, so nothing else acts on such a copy first. A renewal the
observer saw (observer.py, on this cluster's clock) is persisted in the copy's `status.lease`, so
an operator restart never credits it later than it was seen. A lapsed copy is marked Failed with
reason LeaseExpired; the job controller then stops its live workers, as for any Failed job.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping

from estuary.api.aijob import (
    FINISHED,
    AIJobStatus,
    LeaseObservation,
    Phase,
)
from estuary.federation import lease, naming, remote
from estuary.federation.home import HomeApi
from estuary.federation.observer import LeaseObserver
from estuary.kube.status import JobWriter, finished_conditions
from estuary.state import codec
from estuary.state.snapshot import ParsedJob

log = logging.getLogger("estuary.federation")
DEFAULT_LEASE_SECONDS = 120


def lease_seconds(job: ParsedJob) -> int:
    """The lease the origin sent the copy with (annotation), within 1 s .. 1 h."""
    notes = job.raw["metadata"].get("annotations") or {}
    try:
        return min(3600, max(1, int(notes.get(naming.LEASE_SECONDS) or DEFAULT_LEASE_SECONDS)))
    except ValueError:
        return DEFAULT_LEASE_SECONDS


class LeaseExpiry:
    def __init__(
        self,
        home: HomeApi,
        writer: JobWriter,
        wall: Callable[[], float] = time.time,
        check_seconds: float = 2.0,
        threads: bool = True,
    ) -> None:
        self.writer, self.threads = writer, threads
        self.observer = LeaseObserver(home, wall, check_seconds)
        self._thread: threading.Thread | None = None

    def check(self, jobs: Mapping[str, ParsedJob], now: float, stop: threading.Event) -> None:
        copies = [j for j in jobs.values() if remote.is_copy(j.raw)]
        if copies:  # a cluster nobody sends jobs to does not poll for renewals
            self._start_observer(stop)
        for job in copies:
            if job.phase in FINISHED:
                continue
            try:
                self._check(job, now)
            except Exception as exc:
                log.error(
                    "federation: lease check of %s failed (%s); retrying next step",
                    job.key,
                    type(exc).__name__,
                )

    def _start_observer(self, stop: threading.Event) -> None:
        if not self.threads or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(
            target=self.observer.run, args=(stop,), name="estuary-lease-observer", daemon=True
        )
        self._thread.start()

    def _credited(self, job: ParsedJob) -> float | None:
        """When this cluster credits the copy's last renewal (persisting a newly seen one)."""
        persisted = job.status.lease
        token = persisted.token if persisted else None
        base = codec.timestamp(persisted.observed_at if persisted else None)
        seen = self.observer.get(str(job.raw["metadata"].get("uid") or ""))
        if (
            seen is not None
            and seen.credited_at is not None
            and seen.token != token
            and (base is None or seen.credited_at > base)
        ):
            credited = float(math.floor(seen.credited_at))  # whole seconds, rounded down: earlier
            observed = LeaseObservation(token=seen.token, observed_at=codec.rfc3339(credited))
            self.writer.status(job, AIJobStatus(lease=observed))
            return credited
        return base

    def _check(self, job: ParsedJob, now: float) -> None:
        seconds = lease_seconds(job)
        base = self._credited(job)
        if base is None:  # never credited: count from its creation (this cluster's API server)
            base = codec.timestamp(job.raw["metadata"].get("creationTimestamp")) or now
        if not lease.partner_expired(base, seconds, now):
            return
        origin = (job.raw["metadata"].get("annotations") or {}).get(naming.ORIGIN_CLUSTER, "?")
        message = (
            f"cluster {origin} did not renew this copy's lease for {seconds}s (last "
            f"renewal credited at {codec.rfc3339(base)}); stopped for good: the origin runs "
            "the job again elsewhere"
        )
        stamp, reason = codec.rfc3339(now), remote.LEASE_EXPIRED
        self.writer.status(
            job,
            AIJobStatus(
                phase=Phase.FAILED,
                reason=reason,
                message=message,
                queued_at=stamp,
                completion_time=stamp,
                conditions=finished_conditions(job.conditions, Phase.FAILED, reason, message, stamp),
            ),
        )
        self.writer.event(job, reason, message, warning=True)
