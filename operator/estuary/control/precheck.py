"""Before a job first waits in the queue: would the API server accept its workers?

Why it exists: the CRD refuses what a schema or a CEL rule can see, but only the API server knows
everything a pod must satisfy (its validation, admission policies, limit ranges). So when a job is
first seen, and again after a refused job's spec changed, its first worker is created with a
server-side dry run (nothing is stored) on a pool of its first accepted type that a pool offers.
A refusal keeps the job out of the queue with the API server's words (lifecycle.py: `refusal`)
before it ever holds an accelerator; a job that passes goes on to the cycle in the same step.
Checks of one step go out in parallel.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from estuary import metrics
from estuary.api.aijob import ADMITTED_CONDITION, AIJobStatus, Phase
from estuary.api.base import set_condition
from estuary.control.pods import NameTaken, Pods, WorkerRefused
from estuary.control.refusals import refusal
from estuary.kube.status import JobWriter
from estuary.model import PoolSpec
from estuary.state import codec
from estuary.state.pools import PoolJudgement
from estuary.state.snapshot import ParsedJob

log = logging.getLogger("estuary.precheck")


def due(job: ParsedJob) -> bool:
    """New (no phase yet, not suspended), or refused before and no longer held (its spec
    changed, its retry time came, or the pod holding its name went)."""
    if job.obj.spec.suspend or job.held:
        return False
    return job.phase is None or job.status.hold is not None


def pool_for(job: ParsedJob, pools: Mapping[str, PoolJudgement]) -> tuple[PoolSpec, str | None] | None:
    """The first pool (by name) offering the job's most preferred type that any pool offers,
    with one of its nodes; None when no pool offers any."""
    usable = sorted((p for p in pools.values() if p.spec is not None), key=lambda p: p.name)
    for choice in job.obj.spec.accelerators:
        for pool in usable:
            spec = pool.spec
            assert spec is not None
            if choice.vendor == spec.vendor and (
                choice.model is None or choice.model.lower() == spec.model.lower()
            ):
                return spec, (pool.counted[0] if pool.counted else None)
    return None


class PreCheck:
    def __init__(self, pods: Pods, writer: JobWriter) -> None:
        self.pods, self.writer = pods, writer
        self._threads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="estuary-precheck")

    def run(self, jobs: Mapping[str, ParsedJob], pools: Mapping[str, PoolJudgement], now: float) -> None:
        checks = []
        for job in jobs.values():
            target = pool_for(job, pools) if due(job) else None
            if target is not None:
                checks.append((job, self._threads.submit(self.pods.dry_run, job, *target)))
        for job, answer in checks:
            err = answer.exception()
            if isinstance(err, (WorkerRefused, NameTaken)):
                self._hold(job, err, now)
            elif err is not None:  # the API server could not say: the real create decides
                metrics.record_reconcile_error("aijob")
                log.warning("AIJob %s: dry run of its first worker failed (%s); not held", job.key, err)

    def _hold(self, job: ParsedJob, err: WorkerRefused | NameTaken, now: float) -> None:
        reason, message, hold = refusal(job, err, now)
        stamp = codec.rfc3339(now)
        update = AIJobStatus(
            phase=Phase.QUEUED,
            reason=reason,
            message=message,
            queue_position=None,
            queued_at=job.status.queued_at or stamp,
            conditions=set_condition(job.conditions, ADMITTED_CONDITION, False, reason, message, stamp),
        )
        update.hold = hold
        self.writer.status(job, update)
        job.held = True
        self.writer.event(job, reason, message, warning=True)
