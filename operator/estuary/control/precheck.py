"""Before a job first waits in the queue: would the API server accept its workers?

Why it exists: the CRD refuses what a schema or a CEL rule can see, but only the API server knows
everything a pod must satisfy (its validation, admission policies, limit ranges). So when a job is
first seen, and again after a refused job's spec changed, its first worker is created with a
server-side dry run (nothing is stored) on a pool of its first accepted type that a pool offers.
A refusal keeps the job out of the queue with the API server's words (lifecycle.py: `refusal`)
before it ever holds an accelerator.

The checks never hold the step up for long: they go out in parallel on threads of their own, and
the step waits for their answers at most `patience` seconds (a tenth of a second by default); a
job whose check is still out sits this step out (`held` for this step only) and is decided on a
later one, which its answer starts at once (it sets the cache's `changed`). An answer is kept per
job uid, spec generation and hold: a check that passed is not asked again (when an assumed waiting
reason or admission is undone, say), a refusal is written once, as the job's hold.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait

from estuary import metrics
from estuary.api.aijob import ADMITTED_CONDITION, AIJobStatus, Phase
from estuary.api.base import set_condition
from estuary.control.pods import NameTaken, Pods, WorkerRefused
from estuary.control.refusals import refusal
from estuary.kube.status import JobWriter
from estuary.model import PoolSpec
from estuary.state import codec
from estuary.state.cache import ClusterCache
from estuary.state.pools import PoolJudgement
from estuary.state.snapshot import ParsedJob

log = logging.getLogger("estuary.precheck")
PATIENCE_S = 0.1  # how long a step waits for the dry runs it started
CheckKey = tuple[str, int, str]  # (job uid, spec generation, its hold as written)


def check_key(job: ParsedJob) -> CheckKey:
    """What a check's answer holds for: the job, its spec and its hold (a retry time that came
    asks again, although spec and job are the same)."""
    hold = job.status.hold
    return job.uid, job.generation or 0, hold.model_dump_json() if hold is not None else ""


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
    def __init__(
        self, pods: Pods, writer: JobWriter, cache: ClusterCache, patience: float = PATIENCE_S
    ) -> None:
        self.pods, self.writer, self.cache, self.patience = pods, writer, cache, patience
        self._threads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="estuary-precheck")
        self._asked: dict[CheckKey, Future[None]] = {}  # checks out or answered, not yet acted on
        self._passed: set[CheckKey] = set()

    def run(self, jobs: Mapping[str, ParsedJob], pools: Mapping[str, PoolJudgement], now: float) -> None:
        """Check the jobs that are due; hold those refused; keep those not yet answered out of
        this step's queue."""
        due_now = {}
        for job in jobs.values():
            if not due(job) or check_key(job) in self._passed:
                continue
            target = pool_for(job, pools)
            if target is not None:
                due_now[job.key] = job, self._ask(job, target)
        wait([answer for _, answer in due_now.values()], timeout=self.patience)
        for job, answer in due_now.values():
            if not answer.done():
                job.held = True  # decided once answered (a later step)
                continue
            del self._asked[check_key(job)]
            err = answer.exception()
            if isinstance(err, (WorkerRefused, NameTaken)):
                self._hold(job, err, now)
            elif err is not None:  # the API server could not say: the real create decides
                metrics.record_reconcile_error("aijob")
                log.warning("AIJob %s: dry run of its first worker failed (%s); not held", job.key, err)
            else:
                self._passed.add(check_key(job))
        asked_now = {check_key(job) for job, _ in due_now.values()}  # answers not acted on
        self._asked = {k: a for k, a in self._asked.items() if k in asked_now or not a.done()}
        if len(self._passed) > 2 * len(jobs):  # forget the checks of jobs that are gone
            uids = {job.uid for job in jobs.values()}
            self._passed = {key for key in self._passed if key[0] in uids}

    def _ask(self, job: ParsedJob, target: tuple[PoolSpec, str | None]) -> Future[None]:
        key = check_key(job)
        answer = self._asked.get(key)
        if answer is None:
            answer = self._asked[key] = self._threads.submit(self.pods.dry_run, job, *target)
            answer.add_done_callback(lambda _: self.cache.changed.set())  # a step acts on it
        return answer

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
