"""Origin side: follow the copy of each burst job at its partner.

Per job placed at a link, from what that link's worker last saw: mirror the copy's phase,
placement and times into the local job's status; charge what a finished or lost attempt used;
and give the copy up (back to the local queue, as a new attempt) when the partner refused it,
stopped it because its lease lapsed, or has been lost for longer than lease + margin allows
(worker.py's `try_give_up`: only then can no copy still be running there).
"""

from __future__ import annotations

import logging

from estuary.api.aijob import (
    BURST_CONDITION,
    FINISHED,
    RUNNING_CONDITION,
    AIJobStatus,
    Phase,
    Placement,
    RemoteCopy,
)
from estuary.api.base import set_condition
from estuary.federation import gangview, lease, remote
from estuary.federation.links import FederationConfig, LinkObjects, Sent
from estuary.federation.linkstatus import LinkStatus
from estuary.federation.worker import LinkRuntime
from estuary.kube.status import JobWriter, finished_conditions
from estuary.state import codec
from estuary.state.snapshot import ParsedJob

log = logging.getLogger("estuary.federation")
MIRRORED = (None, *(p.value for p in Phase if p != Phase.SUSPENDED))  # copy phases the origin shows
PLACEMENT_KEYS = ("pool", "vendor", "model", "resource", "nodes", "workers")


class Following:
    def __init__(
        self, writer: JobWriter, config: FederationConfig, sent: Sent, link_status: LinkStatus
    ) -> None:
        self.writer, self.config, self.sent, self.link_status = writer, config, sent, link_status

    def follow(
        self, job: ParsedJob, ref: RemoteCopy, runtime: LinkRuntime, links: LinkObjects, now: float
    ) -> None:
        if job.phase in FINISHED:
            return
        snap = runtime.snapshot()
        copy = snap.copies.get(ref.name)
        if copy is not None:
            self.sent.fresh.pop(ref.name, None)
        grace = job.obj.spec.preemption.grace_period_seconds
        refusal = runtime.refusal(ref.name)
        held = links.get(ref.link)
        if (
            held is not None
            and held[1].spec.mode == "Agentless"
            and self._attempt_ended(job, ref, runtime, copy, links, now)
        ):
            return
        if refusal is not None and runtime.try_give_up(ref.name, ref.lease_seconds, grace):
            self.sent.excluded.setdefault(job.key, {})[ref.link] = now + self.config.refusal_backoff_seconds
            message = f"partner {ref.link} refused the job ({refusal}); back in the local queue"
            self._forget(job, ref, runtime, "BurstRefused", message, now)
        elif copy is not None and copy.phase == Phase.FAILED and copy.reason == remote.LEASE_EXPIRED:
            if runtime.give_up_now(ref.name):
                self.link_status.charge(job, ref, copy, links, runtime)
                message = (
                    f"partner {ref.link} stopped its copy because this cluster did not "
                    f"renew the lease within {ref.lease_seconds}s; running the job again "
                    "as a new attempt"
                )
                retry = now + grace + self.config.timing.kill_s
                self._forget(job, ref, runtime, remote.LEASE_EXPIRED, message, now, retry_after=retry)
        elif copy is not None and copy.finished:
            self.link_status.charge(job, ref, copy, links, runtime)
            self._mirror(job, ref, copy, now)
        elif runtime.try_give_up(ref.name, ref.lease_seconds, grace):
            self.link_status.charge(job, ref, None, links, runtime)
            margin = lease.margin(ref.lease_seconds, grace, self.config.timing)
            health = snap.health
            why = f"{health.reason}: {health.message}" if not health.ready else "its copy is gone"
            message = (
                f"lost partner {ref.link} ({why}); no lease renewal reached it for "
                f"{ref.lease_seconds}s + {margin:g}s margin, so its copy has stopped; "
                "back in the local queue as a new attempt"
            )
            self._forget(job, ref, runtime, "PartnerLost", message, now)
        elif copy is not None:
            self._mirror(job, ref, copy, now)

    def _attempt_ended(
        self,
        job: ParsedJob,
        ref: RemoteCopy,
        runtime: LinkRuntime,
        copy: remote.CopyView | None,
        links: LinkObjects,
        now: float,
    ) -> bool:
        """Agentless: an attempt whose gang failed, was fenced, lost workers or did not start in
        time is removed at the provider first (no renewals, its objects deleted), and only once it
        is gone (or lease + margin have passed) does the job requeue, restart or fail. True when
        this took the job in hand."""
        spec = job.obj.spec
        why = self.sent.stopping.get(ref.name)
        refusal = runtime.refusal(ref.name)
        if why is None and refusal is not None:
            why = ("BurstRefused", f"partner {ref.link} refused the job ({refusal})")
        elif why is None and copy is not None and copy.phase == Phase.FAILED:
            why = (copy.reason or gangview.WORKER_FAILED, copy.message or "")
        elif (
            why is None
            and copy is not None
            and runtime.pending_for(ref.name) > spec.scheduling_timeout_seconds
        ):
            why = (
                "SchedulingTimeout",
                f"its workers did not all run within {spec.scheduling_timeout_seconds}s at provider "
                f"{ref.link} ({copy.message or 'pending'})",
            )
        if why is None:
            return False
        if ref.name not in self.sent.stopping:
            self.sent.stopping[ref.name] = why
            runtime.stop(ref.name)
            message = f"removing the attempt at provider {ref.link}: {why[1]}"
            self.writer.status(job, AIJobStatus(message=message))
            self.writer.event(job, why[0], message, warning=True)
        grace = spec.preemption.grace_period_seconds
        if not runtime.try_give_up(ref.name, ref.lease_seconds, grace):
            return True
        self.sent.stopping.pop(ref.name, None)
        self.link_status.charge(job, ref, copy, links, runtime)
        self._after_attempt(job, ref, runtime, why, now)
        return True

    def _after_attempt(
        self, job: ParsedJob, ref: RemoteCopy, runtime: LinkRuntime, why: tuple[str, str], now: float
    ) -> None:
        """The attempt is gone: restart (a worker failed), fail (no restarts left) or requeue."""
        reason, cause = why
        policy, restarts = job.obj.spec.restart_policy, job.status.restarts
        if reason != gangview.WORKER_FAILED:
            if reason == "SchedulingTimeout":
                self.sent.excluded.setdefault(job.key, {})[ref.link] = (
                    now + self.config.refusal_backoff_seconds
                )
            message = f"{cause}; the attempt was removed at provider {ref.link}; back in the local queue"
            self._forget(job, ref, runtime, reason, message, now)
        elif restarts >= policy.max_restarts:
            message = (
                f"failed at provider {ref.link}: {cause}; restarted {restarts} times "
                f"(limit {policy.max_restarts})"
            )
            stamp = codec.rfc3339(now)
            self.writer.status(
                job,
                AIJobStatus(
                    phase=Phase.FAILED,
                    reason=reason,
                    message=message,
                    completion_time=stamp,
                    conditions=finished_conditions(job.conditions, Phase.FAILED, reason, message, stamp),
                ),
            )
            self.writer.event(job, "Failed", message, warning=True)
        else:
            backoff = policy.backoff_seconds * 2**restarts  # as the job controller restarts local gangs
            message = (
                f"{cause} at provider {ref.link}; restarting the whole gang (restart {restarts + 1} of "
                f"{policy.max_restarts}) after {backoff}s"
            )
            self._forget(job, ref, runtime, "Restarting", message, now, now + backoff, restarts + 1)

    def _mirror(self, job: ParsedJob, ref: RemoteCopy, copy: remote.CopyView, now: float) -> None:
        """The copy's phase, placement and times, as the local job's status."""
        if job.obj.spec.suspend or copy.phase not in MIRRORED:
            return
        status, update = job.status, AIJobStatus()
        if ref.uid != copy.uid:
            update.remote = ref.model_copy(update={"uid": copy.uid})
        if copy.placement:
            current = status.placement.model_dump(exclude_unset=True) if status.placement else {}
            placement = {
                **current,
                "cluster": ref.link,
                "link": ref.link,
                **{k: copy.placement[k] for k in PLACEMENT_KEYS if k in copy.placement},
            }
            if placement != current:
                update.placement = Placement.model_validate(placement)
        if copy.accelerator and copy.accelerator != status.accelerator:
            update.accelerator = copy.accelerator
        phase, reason, message, event = _mirrored(job, ref, copy)
        if copy.phase == Phase.RUNNING and not status.start_time:
            update.start_time = copy.start_time or codec.rfc3339(now)
        if (phase, reason, message) != (status.phase, status.reason, status.message):
            update.phase, update.reason, update.message = phase, reason, message
            if phase != status.phase:
                self._transition(job, update, copy, now)
        if update.model_fields_set:
            self.writer.status(job, update)
        if event is not None and "phase" in update.model_fields_set:
            self.writer.event(job, *event)

    @staticmethod
    def _transition(job: ParsedJob, update: AIJobStatus, copy: remote.CopyView, now: float) -> None:
        """A new phase: its condition (and, when finished, the completion time)."""
        stamp, reason, message = codec.rfc3339(now), update.reason or "", update.message or ""
        if update.phase in FINISHED:
            update.completion_time = copy.completion_time or stamp
            update.conditions = finished_conditions(job.conditions, update.phase, reason, message, stamp)
        elif update.phase == Phase.RUNNING:
            update.conditions = set_condition(
                job.conditions, RUNNING_CONDITION, True, "AllWorkersRunning", message, stamp
            )

    def _forget(
        self,
        job: ParsedJob,
        ref: RemoteCopy,
        runtime: LinkRuntime,
        reason: str,
        message: str,
        now: float,
        retry_after: float | None = None,
        restarts: int | None = None,
    ) -> None:
        """Back to the local queue, forgetting the copy (a later burst is a new attempt, with a
        new copy; the old one is deleted as an orphan when its partner answers again)."""
        stamp = codec.rfc3339(now)
        stopped = set_condition(job.conditions, RUNNING_CONDITION, False, reason, message, stamp)
        update = AIJobStatus(
            phase=Phase.QUEUED,
            reason=reason,
            message=message,
            queued_at=stamp,
            placement=None,
            accelerator=None,
            remote=None,
            queue_position=None,
            conditions=set_condition(stopped, BURST_CONDITION, False, reason, message, stamp),
        )
        if retry_after is not None:
            update.retry_after = codec.rfc3339(retry_after)
        if restarts is not None:
            update.restarts = restarts
        self.writer.status(job, update)
        self.sent.fresh.pop(ref.name, None)
        self.sent.cleanup.setdefault(job.key, {})[ref.link] = (ref.name, runtime.snapshot().heartbeats)
        self.writer.event(job, reason, message, warning=True)


def _mirrored(
    job: ParsedJob, ref: RemoteCopy, copy: remote.CopyView
) -> tuple[Phase | None, str | None, str | None, tuple[str, str, bool] | None]:
    """(phase, reason, message, event) the local job shows for the copy's phase."""
    status, link = job.status, ref.link
    if copy.phase in (None, Phase.QUEUED):
        message = f"queued at partner {link}: {copy.message or 'waiting for its scheduler'}"
        return Phase.ADMITTED, copy.reason or "Queued", message, None
    if copy.phase == Phase.ADMITTED:
        return (
            Phase.ADMITTED,
            "Admitted",
            f"admitted at partner {link}: {copy.message or ''}".rstrip(": "),
            None,
        )
    if copy.phase == Phase.RUNNING:
        event = (
            None
            if status.phase == Phase.RUNNING
            else ("Started", f"all workers Running at partner {link}", False)
        )
        return (
            Phase.RUNNING,
            "Running",
            f"running at partner {link}: {copy.message or ''}".rstrip(": "),
            event,
        )
    if copy.phase == Phase.SUCCEEDED:
        message = f"succeeded at partner {link}"
        return Phase.SUCCEEDED, "Succeeded", message, ("Succeeded", message, False)
    reason = copy.reason or "Failed"
    message = f"failed at partner {link}: {copy.message or reason}"
    return Phase.FAILED, reason, message, ("Failed", message, True)
