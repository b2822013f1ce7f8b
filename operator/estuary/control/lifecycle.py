"""Job lifecycles: move each job's life on from its pods, before the scheduling cycle.

The rules, in the order `advance()` applies them (the first that matches acts):
  1. a new job waits for the cycle (which admits it or writes why it waits, in one write);
  2. a finished job (Succeeded, Failed) has its live workers stopped and, past its
     ttlSecondsAfterFinished, is deleted;
  3. `spec.suspend` releases the gang (Suspended); clearing it requeues the job (Resumed);
  4. a job being released keeps `status.placement` (its accelerators stay booked) until every
     pod is gone, then gives it up;
  5. a gang on a node that is gone, NotReady or reports unhealthy accelerators is released and
     requeued (restart count unchanged);
  6. a worker that failed or vanished releases the whole gang: restarted with exponential
     backoff (Restarting), or past restartPolicy.maxRestarts Failed with the cause;
  7. a gang with workers still to create whose placement lacks the operator's seal (control/seal.py:
     written by someone else) is released and requeued, `PlacementNotTrusted`;
  8. all workers Succeeded: Succeeded; all Running: Running; missing workers are created (a
     create the API server refuses, or a name someone else's pod holds, releases the attempt
     with the reason and a hold: control/refusals.py);
  9. workers unschedulable past schedulingTimeoutSeconds: released and requeued.
Only whole gangs are ever released. A job whose writes are still in flight (control/writes.py)
waits for them: the next tick judges it from their answers. Creates, the Running and Succeeded
statuses go out in the background; the writes a release is made of (status, then deletes) are
made at once, in that order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from estuary import metrics
from estuary.api.aijob import (
    FINISHED,
    HOLDING,
    RUNNING_CONDITION,
    AIJobStatus,
    Phase,
)
from estuary.api.base import set_condition
from estuary.api.hold import Hold
from estuary.control.pods import Pods
from estuary.control.refusals import refusal
from estuary.control.seal import Sealer
from estuary.control.timeshare import attained_hours
from estuary.control.workers import GangState, assess
from estuary.control.writes import Background
from estuary.kube import render
from estuary.kube.client import KubeApi
from estuary.kube.status import JobWriter, finished_conditions
from estuary.model import NodeInfo, PoolSpec
from estuary.state import codec
from estuary.state.cache import ClusterCache
from estuary.state.snapshot import ParsedJob

log = logging.getLogger("estuary.status")
PLACEMENT_NOT_TRUSTED = "PlacementNotTrusted"


def sick_nodes(nodes: Mapping[str, NodeInfo], jobs: Iterable[ParsedJob]) -> dict[str, str]:
    """Nodes a running gang must leave, with why. The agent reports counts per node, not which
    pod holds a failed device, so every gang on such a node moves (see docs/telemetry.md)."""
    out: dict[str, str] = {}
    for job in jobs:
        placement = job.status.placement
        for name in placement.nodes if placement is not None else ():
            if name not in nodes:
                out[name] = "no longer exists"
    for name, node in nodes.items():
        if not node.ready:
            out[name] = "is NotReady"
        elif node.unhealthy_accelerators:
            out[name] = (
                f"reports {node.unhealthy_accelerators} unhealthy accelerator(s) "
                "(annotation estuary.dev/accelerator-health)"
            )
    return out


def _age(since: str | None, now: float) -> float:
    start = codec.timestamp(since)
    return 0.0 if start is None else now - start


class Lifecycle:
    def __init__(
        self,
        api: KubeApi,
        cache: ClusterCache,
        writer: JobWriter,
        pods: Pods,
        sealer: Sealer,
        background: Background,
    ) -> None:
        self.api, self.cache, self.writer, self.pods, self.sealer = api, cache, writer, pods, sealer
        self.background = background
        self.pools: Mapping[str, PoolSpec] = {}  # this step's pools: the speeds of attained service

    def advance(self, job: ParsedJob, sick: Mapping[str, str], now: float) -> None:
        """Apply the first rule of the module docstring that matches the job."""
        refused = self.background.refusal(job.key)
        if refused is not None and job.phase in HOLDING:  # a create of this attempt was refused
            reason, message, hold = refusal(job, refused, now)
            self.release(job, Phase.QUEUED, reason, message, now, warning=True, hold=hold)
            return
        if self.background.busy(job.key):
            return
        spec, status, phase = job.obj.spec, job.status, job.phase
        if phase is None and not spec.suspend:
            return
        if phase in FINISHED:
            self._finished(job, now)
        elif spec.suspend and phase != Phase.SUSPENDED:
            message = "suspended by spec.suspend; holds nothing"
            grace = spec.preemption.grace_period_seconds
            self.release(job, Phase.SUSPENDED, "Suspended", message, now, grace=grace)
        elif phase == Phase.SUSPENDED and not spec.suspend and status.placement is None:
            self._resume(job, now)
        elif status.placement is None or status.placement.cluster != "local":
            return
        elif phase not in HOLDING:  # releasing: wait until every pod is gone, then free the nodes
            if self.pods.delete_remaining(job):
                self.writer.status(job, AIJobStatus(placement=None, accelerator=None))
        else:
            self._holding(job, sick, now)

    def _holding(self, job: ParsedJob, sick: Mapping[str, str], now: float) -> None:
        """An Admitted or Running gang: follow its pods."""
        placement = job.status.placement
        assert placement is not None
        on_sick = [n for n in placement.nodes if n in sick]
        if on_sick:
            message = (
                f"node {on_sick[0]} {sick[on_sick[0]]}; released the whole gang to run elsewhere "
                "(restart count unchanged)"
            )
            self.release(job, Phase.QUEUED, "NodeUnhealthy", message, now, warning=True)
            return
        gang = assess(self.cache.pods_of(job.key, job.uid), len(placement.nodes), job.status.attempt)
        for name in gang.stale:
            self.api.delete_pod(job.namespace, name, 0)
        if gang.missing and not self.sealer.trusts(job.uid, job.status.attempt, placement):
            message = (
                f"status.placement (attempt {job.status.attempt}, pool {placement.pool}) was not written "
                "by Estuary: it lacks the operator's seal; created no pods, released it and requeued "
                "the job (check who may patch aijobs/status)"
            )
            self.release(job, Phase.QUEUED, PLACEMENT_NOT_TRUSTED, message, now, warning=True)
            return
        self._follow(job, gang, now)

    def _follow(self, job: ParsedJob, gang: GangState, now: float) -> None:
        spec, phase = job.obj.spec, job.phase
        if gang.failures:
            self._worker_failed(job, gang, now)
        elif gang.all_succeeded:
            self._succeeded(job, now)
        elif gang.missing and phase == Phase.RUNNING:
            vanished = tuple(f"worker {render.pod_name(job.name, r)} disappeared" for r in gang.missing)
            self._worker_failed(job, GangState(gang.expected, failures=vanished), now)
        elif gang.missing:
            self.start(job, gang.missing, now)
        elif gang.all_running and phase == Phase.ADMITTED:
            self._running(job, now)
        elif gang.unschedulable and _age(job.status.admitted_at, now) > spec.scheduling_timeout_seconds:
            message = (
                f"workers stayed unschedulable for {spec.scheduling_timeout_seconds}s "
                f"({gang.unschedulable[0]}); released the whole gang and requeued it"
            )
            self.release(job, Phase.QUEUED, "SchedulingTimeout", message, now)

    def start(self, job: ParsedJob, ranks: list[int], now: float) -> None:
        """Create the Service and these workers of an admitted gang, in the background; when the
        API server refuses one, or a name is taken by an object that is not the job's own, the
        next tick releases the attempt and says why (`advance`)."""
        self.background.create(job, self.pods.manifests(job, ranks))

    def _resume(self, job: ParsedJob, now: float) -> None:
        self.writer.status(
            job,
            AIJobStatus(
                phase=Phase.QUEUED,
                reason="Resumed",
                queued_at=codec.rfc3339(now),
                message="resumed; waiting for the scheduler",
            ),
        )
        self.writer.event(job, "Resumed", "spec.suspend cleared; back in the queue")

    def _running(self, job: ParsedJob, now: float) -> None:
        status = job.status
        placement = status.placement
        assert placement is not None
        stamp = codec.rfc3339(now)
        self.background.status(
            job,
            AIJobStatus(
                phase=Phase.RUNNING,
                reason="Running",
                message=f"{placement.workers} workers running on {status.accelerator}",
                start_time=status.start_time or stamp,
                conditions=set_condition(
                    job.conditions,
                    RUNNING_CONDITION,
                    True,
                    "AllWorkersRunning",
                    "every worker is Running",
                    stamp,
                ),
            ),
        )
        if status.start_time is None:
            created = codec.timestamp(job.raw["metadata"].get("creationTimestamp")) or now
            metrics.record_running(job.tenant, placement.pool, now - created)
        log.info("AIJob %s: Started: all %d workers Running", job.key, placement.workers)

    def _succeeded(self, job: ParsedJob, now: float) -> None:
        self._finish(job, Phase.SUCCEEDED, "Succeeded", "every worker succeeded", now, self.background.status)
        self.writer.event(job, "Succeeded", "every worker succeeded")

    def _finish(
        self,
        job: ParsedJob,
        phase: Phase,
        reason: str,
        message: str,
        now: float,
        write: Callable[[ParsedJob, AIJobStatus], object] | None = None,
    ) -> None:
        stamp = codec.rfc3339(now)
        self.sealer.revoke(job.uid, job.status.attempt)
        (write or self.writer.status)(
            job,
            AIJobStatus(
                phase=phase,
                reason=reason,
                message=message,
                completion_time=stamp,
                conditions=finished_conditions(job.conditions, phase, reason, message, stamp),
                **self._attained(job, now),
            ),
        )

    def _worker_failed(self, job: ParsedJob, gang: GangState, now: float) -> None:
        restarts, policy = job.status.restarts, job.obj.spec.restart_policy
        cause = "; ".join(gang.failures[:3])
        if restarts >= policy.max_restarts:
            message = f"{cause}; restarted {restarts} times (limit {policy.max_restarts})"
            self._finish(job, Phase.FAILED, "WorkerFailed", message, now)
            self.writer.event(job, "Failed", message, warning=True)
            self.pods.delete_live(job)
            return
        backoff = policy.backoff_seconds * 2**restarts
        message = (
            f"{cause}; restarting the whole gang (restart {restarts + 1} of {policy.max_restarts}) "
            f"after {backoff}s"
        )
        self.release(
            job,
            Phase.QUEUED,
            "Restarting",
            message,
            now,
            restarts=restarts + 1,
            retry_after=now + backoff,
            warning=True,
        )

    def release(
        self,
        job: ParsedJob,
        phase: Phase,
        reason: str,
        message: str,
        now: float,
        restarts: int | None = None,
        retry_after: float | None = None,
        grace: int = 0,
        warning: bool = False,
        hold: Hold | None = None,
    ) -> None:
        """Stop the gang and give its accelerators back once its pods are gone (whole gangs only)."""
        stamp = codec.rfc3339(now)
        self.sealer.revoke(job.uid, job.status.attempt)  # a placement written back starts nothing
        status = AIJobStatus(
            phase=phase,
            reason=reason,
            message=message,
            queued_at=stamp,
            conditions=set_condition(job.conditions, RUNNING_CONDITION, False, reason, message, stamp),
            **self._attained(job, now),
        )
        if restarts is not None:
            status.restarts = restarts
        if retry_after is not None:
            status.retry_after = codec.rfc3339(retry_after)
        if hold is not None:
            status.hold = hold
        self.writer.status(job, status)
        self.writer.event(job, reason, message, warning=warning)
        self.background.expect_nothing(job.key)
        self.pods.delete_all(job, grace)

    def _attained(self, job: ParsedJob, now: float) -> dict[str, float]:
        """`attainedService` for the write that ends the open attempt (control/timeshare.py)."""
        hours = attained_hours(job, self.pools, now)
        return {} if hours is None else {"attained_service": hours}

    def _finished(self, job: ParsedJob, now: float) -> None:
        if job.phase == Phase.FAILED:
            self.pods.delete_live(job)
        ttl = job.obj.spec.ttl_seconds_after_finished
        done = codec.timestamp(job.status.completion_time)
        if ttl is not None and done is not None and now - done >= ttl:
            self.writer.event(job, "Expired", f"deleted {ttl}s after it finished (ttlSecondsAfterFinished)")
            self.api.delete_job(job.namespace, job.name)
