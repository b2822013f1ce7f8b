"""Writing the scheduling cycle's decisions: admissions, preemptions, migrations and why the others
wait.

An admission is assumed at once (the rest of the step and the next one see the job admitted and
its accelerators booked) and written in the background (control/writes.py): the AIJob status first
(`Admitted`, placement with the tenant and the operator's seal: control/seal.py, attempt), then
the Service and the workers. A crash in between leaves an admitted job whose missing pods a later
step creates, never pods without an admission; a status write that fails undoes the assumption
(the job is back in the queue); a worker the API server refuses releases the attempt on the next
step (lifecycle.py `advance`). The happy path posts no event: the `Admitted` condition (reason,
message, time) records it. A waiting job's status says why, with the numbers,
and how it fares on each accepted type (`status.verdicts`), so a person who may read only her job
sees why it waits (`kubectl estuary explain`). At most WAITING_QUEUED_MAX jobs' reasons are queued
at once (writes.py `may_tell`): thousands of jobs seen at once are told in batches, and positions
that only moved are rewritten at a bounded rate in all (`pace`). A preemption or a migration
releases the whole gang with the job's grace period (lifecycle.py `release`): a victim of quota
reclaim or priority backs off; a job that yields its turn (time-sharing) or moves to a faster type
does not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from estuary import metrics
from estuary.api.aijob import ADMITTED_CONDITION, BURST_CONDITION, AIJobStatus, Phase, Placement, Verdict
from estuary.api.base import set_condition
from estuary.control.seal import Sealer
from estuary.control.timeshare import YIELDED
from estuary.control.writes import Background
from estuary.core.attained import SERVICE
from estuary.kube.status import JobWriter
from estuary.model import Admission, Migration, PoolSpec, Preemption, Waiting
from estuary.state import codec
from estuary.state.snapshot import MIGRATING, ParsedJob

log = logging.getLogger("estuary.status")
POSITION_REFRESH_S = 10.0  # a queue position or verdicts that only moved are rewritten at most this often
# ... and, with many jobs waiting, at most this many such rewrites per second in all: a finished job
# ahead moves every position behind it, and 10,000 waiting jobs must not rewrite theirs every 10 s
# (in the 10,000-job benchmark those rewrites kept new jobs from being told why they wait).
POSITION_WRITES_PER_S = 20.0
# An evicted job waits before it may be admitted again: 15 s after its first eviction, doubling with
# each further one. Its preemptor is admitted first anyway (core/nomination.py); the wait keeps a
# victim from churning through one short start after another while the room it wants is contested.
EVICTION_BACKOFF_S = 15
EVICTION_BACKOFF_MAX_S = 600
FASTER_TYPE = "FasterType"  # the reason label of a migration (the only reason the core moves a job)


def eviction_backoff(evictions: int) -> int:
    """Seconds an evicted job stays out of the queue after its `evictions`-th eviction."""
    return int(min(EVICTION_BACKOFF_MAX_S, EVICTION_BACKOFF_S * 2 ** max(0, evictions - 1)))


Release = Callable[..., None]
Manifests = Callable[[ParsedJob, list[int]], list[dict[str, Any]]]  # an admitted gang's objects


class Decisions:
    def __init__(
        self,
        writer: JobWriter,
        background: Background,
        manifests: Manifests,
        release: Release,
        sealer: Sealer,
    ) -> None:
        self.writer, self.background, self.manifests = writer, background, manifests
        self.release, self.sealer = release, sealer
        self._position_written: dict[str, float] = {}
        self.refresh_s = POSITION_REFRESH_S  # set each step by `pace`

    def pace(self, waiting: int) -> None:
        """Space the rewrites of positions that only moved for `waiting` jobs."""
        self.refresh_s = max(POSITION_REFRESH_S, waiting / POSITION_WRITES_PER_S)

    def admit(self, job: ParsedJob, admission: Admission, pool: PoolSpec, now: float) -> None:
        status = job.status
        nodes = list(admission.assignment.nodes)
        message = (
            f"admitted to pool {pool.name} ({pool.vendor} {pool.model}) on "
            f"{len(set(nodes))} node(s): {admission.reason}"
        ).rstrip(": ")
        stamp = codec.rfc3339(now)
        placement = Placement(
            cluster="local",
            pool=pool.name,
            vendor=pool.vendor,
            model=pool.model,
            resource=pool.resource,
            nodes=nodes,
            workers=len(nodes),
            tenant=job.tenant,  # fixed for this attempt (docs/operations.md, "Tenants")
        )
        ranks = list(range(len(nodes)))
        self.background.status(
            job,
            AIJobStatus(
                phase=Phase.ADMITTED,
                reason="Admitted",
                message=message,
                attempt=status.attempt + 1,
                placement=self.sealer.seal(job.uid, status.attempt + 1, placement),
                accelerator=f"{pool.vendor}/{pool.model}",
                queue_position=None,
                verdicts=None,
                admitted_at=stamp,
                retry_after=None,
                hold=None,
                queued_at=status.queued_at or stamp,
                conditions=set_condition(
                    job.conditions, ADMITTED_CONDITION, True, "Admitted", message, stamp
                ),
            ),
            then_create=lambda admitted: self.manifests(admitted, ranks),
        )
        queued = codec.timestamp(status.queued_at) or now
        metrics.record_admission(job.tenant, pool.name, now - queued)
        log.info("AIJob %s: Admitted: %s", job.key, message)

    def preempt(self, jobs: Mapping[str, ParsedJob], preemption: Preemption, now: float) -> None:
        victim = jobs.get(preemption.victim_key)
        if victim is None or self.background.busy(victim.key):  # decided again once answered
            return
        placement = victim.status.placement
        metrics.record_preemption(victim.tenant, placement.pool if placement else "", preemption.reason)
        grace = victim.obj.spec.preemption.grace_period_seconds
        if preemption.reason == SERVICE:
            # Its turn is over: no backoff, the minimum slice and the queue levels keep it from
            # taking the room straight back (core/attained.py).
            message = f"yielded to {preemption.preemptor_key} ({SERVICE}): {preemption.message}"
            self.release(victim, Phase.QUEUED, YIELDED, message, now, grace=grace)
        else:
            evictions = 1 + sum(run.outcome == "Preempted" for run in victim.status.runs)  # this one too
            backoff = eviction_backoff(evictions)
            self.release(
                victim,
                Phase.QUEUED,
                "Preempted",
                f"evicted by {preemption.preemptor_key} ({preemption.reason}): {preemption.message}; "
                f"requeued, eligible again in {backoff}s (eviction {evictions}; the wait doubles with "
                f"each eviction, up to {EVICTION_BACKOFF_MAX_S}s)",
                now,
                retry_after=now + backoff,
                grace=grace,
                warning=True,
            )
        preemptor = jobs.get(preemption.preemptor_key)
        if preemptor is not None:
            self.writer.event(
                preemptor, "Preempting", f"evicting {preemption.victim_key} ({preemption.reason})"
            )

    def migrate(self, jobs: Mapping[str, ParsedJob], move: Migration, now: float) -> bool:
        """Stop the whole gang with its grace period to move it to `move.assignment`'s faster
        pool (control/timeshare.py holds that room until the old pods are gone); True if done."""
        job = jobs.get(move.job_key)
        if job is None or self.background.busy(job.key):  # decided again once answered
            return False
        metrics.record_migration(job.tenant, move.source_pool, move.assignment.pool, FASTER_TYPE)
        grace = job.obj.spec.preemption.grace_period_seconds
        message = (
            f"{move.message}; the whole gang stops (grace {grace}s) and resumes there from its checkpoint"
        )
        self.release(job, Phase.QUEUED, MIGRATING, message, now, grace=grace)
        return True

    def wait(self, job: ParsedJob, waiting: Waiting, now: float) -> None:
        """Queued, with the reason, the numbers and a verdict per accepted type; rewritten when they
        change (a position or per-type numbers that only moved: at most every POSITION_REFRESH_S,
        or less often with many jobs waiting, see `pace`)."""
        if not self.background.may_tell(job.key):
            return  # too many jobs' reasons queued: told on a later tick
        status = job.status
        reason, message = waiting.reason.value, with_burst_note(job, waiting.message)
        verdicts = verdicts_of(waiting)
        same = (status.phase, status.reason, status.message) == (Phase.QUEUED, reason, message)
        same = same and status.hold is None
        moved = status.queue_position != waiting.position or status.verdicts != verdicts
        fresh = now - self._position_written.get(job.key, 0.0) < self.refresh_s
        if same and (not moved or fresh):
            return
        self._position_written[job.key] = now
        stamp = codec.rfc3339(now)
        update = AIJobStatus(
            phase=Phase.QUEUED,
            reason=reason,
            message=message,
            queue_position=waiting.position,
            verdicts=verdicts,
            conditions=set_condition(job.conditions, ADMITTED_CONDITION, False, reason, message, stamp),
        )
        if status.hold is not None:  # no longer holding it: the spec changed, or the pod is gone
            update.hold = None
        new = job.phase is None
        if new:
            update.queued_at = stamp
        self.background.status(job, update, waiting=True)
        if new:
            self.writer.event(job, "Queued", f"waiting: {message}")


def with_burst_note(job: ParsedJob, message: str) -> str:
    """The waiting message, plus why the job may not burst when federation says it may not (the
    federation controller writes that as the job's `Burst` condition, status False)."""
    burst = job.condition(BURST_CONDITION)
    if not job.obj.spec.burst.enabled or burst is None or burst.status != "False" or not burst.message:
        return message
    return message if burst.message in message else f"{message}; {burst.message}"


def verdicts_of(waiting: Waiting) -> list[Verdict]:
    """The cycle's per-type verdicts as `status.verdicts`: what `kubectl estuary explain` shows a
    person who may read her job but not the cluster (pools, nodes, other tenants' jobs)."""
    return [
        Verdict(
            pool=v.pool,
            vendor=v.vendor,
            model=v.model,
            fits=v.fits,
            message=v.message,
            relative_runtime=round(v.est_runtime_factor, 3),
            **({"reason": v.reason.value} if v.reason is not None else {}),
        )
        for v in waiting.verdicts
    ]
