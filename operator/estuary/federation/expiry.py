"""Partner side: stop, for good, every copy whose origin stopped renewing its lease.

Runs before the job controller's step, so nothing else acts on such a copy first. Only AIJobs
that `origins.py` judges copies count (a burst namespace and a valid signature); one that merely
carries the origin label is an ordinary job and gets a `FederationCopy=False` condition saying
why. A renewal the observer saw (observer.py, on this cluster's clock) is persisted in the copy's
`status.lease`, so an operator restart never credits it later than it was seen. A lapsed copy is
marked Failed with reason LeaseExpired; the job controller then stops its live workers, as for any
Failed job.
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
from estuary.api.base import set_condition
from estuary.federation import lease, naming, origins, remote
from estuary.federation.home import HomeApi
from estuary.federation.observer import LeaseObserver
from estuary.kube.status import JobWriter, finished_conditions
from estuary.state import codec
from estuary.state.snapshot import ParsedJob

log = logging.getLogger("estuary.federation")
DEFAULT_LEASE_SECONDS = 120
KEYS_REFRESH_SECONDS = 30.0


def lease_seconds(job: ParsedJob) -> int:
    """The lease the origin sent the copy with (annotation), within 1 s .. 1 h."""
    notes = job.raw["metadata"].get("annotations") or {}
    try:
        return min(3600, max(1, int(notes.get(naming.LEASE_SECONDS) or DEFAULT_LEASE_SECONDS)))
    except ValueError:
        return DEFAULT_LEASE_SECONDS


class OriginKeys:
    """The partner's copy rule: its burst namespaces and the origins' keys, read from a Secret of
    its own namespace (one data key per origin cluster), refreshed at most every 30 s."""

    def __init__(self, home: HomeApi, namespace: str, secret: str, burst_namespaces: frozenset[str]) -> None:
        self.home, self.namespace, self.secret = home, namespace, secret
        self.burst_namespaces = burst_namespaces
        self._keys: dict[str, bytes] | None = None
        self._read_at: float | None = None

    def rule(self, now: float) -> origins.CopyRule:
        if self._read_at is None or now - self._read_at >= KEYS_REFRESH_SECONDS:
            self._read_at = now
            try:
                data = self.home.read_secret(self.namespace, self.secret)
                self._keys = origins.keys_from_secret(data or {})
            except Exception as exc:  # keep what was read before; never the text
                log.error(
                    "federation: reading Secret %s/%s (the origins' signing keys) failed (%s); "
                    "copies sent here are not checked until it can be read",
                    self.namespace,
                    self.secret,
                    type(exc).__name__,
                )
        return origins.CopyRule(self.burst_namespaces, self._keys)


class LeaseExpiry:
    def __init__(
        self,
        home: HomeApi,
        writer: JobWriter,
        keys: OriginKeys,
        wall: Callable[[], float] = time.time,
        check_seconds: float = 2.0,
        threads: bool = True,
    ) -> None:
        self.writer, self.keys, self.threads = writer, keys, threads
        self.observer = LeaseObserver(home, wall, check_seconds)
        self._thread: threading.Thread | None = None

    def judge(self, jobs: Mapping[str, ParsedJob], now: float) -> dict[str, origins.Judgement]:
        """The verdict on every AIJob that carries the origin label (others are ordinary)."""
        labelled = [j for j in jobs.values() if remote.is_labelled(j.raw)]
        if not labelled:
            return {}
        rule = self.keys.rule(now)
        return {job.key: origins.judge(job.raw, rule) for job in labelled}

    def check(
        self,
        jobs: Mapping[str, ParsedJob],
        verdicts: Mapping[str, origins.Judgement],
        now: float,
        stop: threading.Event,
    ) -> None:
        copies = [jobs[k] for k, v in verdicts.items() if v.verdict == origins.Verdict.COPY]
        if verdicts:  # a cluster nobody sends jobs to does not poll for renewals
            self._start_observer(stop)
        for key, judgement in verdicts.items():
            if judgement.verdict == origins.Verdict.IGNORED:
                self._say_ignored(jobs[key], judgement.why, now)
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

    def _say_ignored(self, job: ParsedJob, why: str, now: float) -> None:
        """An ordinary job that carries the origin label: say once why the label is ignored."""
        message = (
            f"label {naming.ORIGIN_CLUSTER} is ignored: {why}; this is an ordinary job of tenant "
            f"{job.tenant} (only AIJobs a known origin cluster signed, in a burst namespace, are "
            "federation copies)"
        )
        current = job.condition(origins.COPY_CONDITION)
        if current is not None and (current.status, current.message) == ("False", message):
            return
        conditions = set_condition(
            job.conditions, origins.COPY_CONDITION, False, origins.IGNORED, message, codec.rfc3339(now)
        )
        self.writer.status(job, AIJobStatus(conditions=conditions))
        self.writer.event(job, origins.IGNORED, message, warning=True)

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
