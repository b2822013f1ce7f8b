"""One read of the cache per step: the parsed jobs, the core's Snapshot and the pending queue.

Why it exists: everything a step decides starts from the same view of the cluster, built once
(as Kueue's `workload.Info` parses a Workload once per cycle). `read()` is pure: a function of the
cache's contents, the settings and the time. It never writes, so `estuary explain` can call it on
what it listed, about objects that are not its own, and an AIJob that does not parse is returned
as `InvalidJob` for the job controller to reject, never raised.

The parsed jobs are the step's working copies: a status write replaces a job's `raw` and `obj`
with what the API server returned (`ParsedJob.refresh`), so later stages of the same step see it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from estuary.api.aijob import FINISHED, AIJob, AIJobStatus, Phase
from estuary.api.base import Condition
from estuary.model import JobRequest, NodeInfo, PoolSpec, Reason, RunningJob, Snapshot
from estuary.state import codec
from estuary.state.cache import JOB_LABEL, ClusterCache

INVALID_SPEC = "InvalidSpec"  # status.reason of a job Estuary cannot run as written


@dataclass
class ParsedJob:
    """An AIJob parsed once, with the tenant of its namespace."""

    key: str
    raw: dict[str, Any]
    obj: AIJob
    tenant: str

    @property
    def namespace(self) -> str:
        return str(self.raw["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.raw["metadata"]["name"])

    @property
    def status(self) -> AIJobStatus:
        """The job's status (empty for a new job)."""
        return self.obj.status or AIJobStatus()

    @property
    def phase(self) -> Phase | None:
        return self.obj.status.phase if self.obj.status else None

    @property
    def conditions(self) -> list[Condition]:
        return list(self.status.conditions)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.status.conditions if c.type == type_), None)

    def refresh(self, updated: dict[str, Any]) -> None:
        """Take the object the API server returned after a write."""
        self.raw = updated
        self.obj = AIJob.model_validate(updated)


@dataclass(frozen=True)
class InvalidJob:
    """An AIJob the API server accepted but Estuary cannot run (e.g. written before a schema
    change): the job controller marks it Failed once, with this message."""

    key: str
    raw: dict[str, Any]
    message: str

    @property
    def rejected(self) -> bool:
        return (self.raw.get("status") or {}).get("reason") == INVALID_SPEC


@dataclass
class ClusterView:
    """What one step reads: every live job, and the core's input built from them.

    Pools, nodes and other pods' usage are read once; the jobs are the step's working copies, so
    `snapshot()` and `pending()` always reflect the statuses written so far in the step (after the
    lifecycles, the cycle sees the accelerators a finished job gave back)."""

    jobs: dict[str, ParsedJob]
    invalid: dict[str, InvalidJob]
    pools: dict[str, PoolSpec]
    nodes: dict[str, NodeInfo]
    foreign_usage: dict[str, dict[str, int]]
    jurisdiction: str | None = None

    def snapshot(self) -> Snapshot:
        return Snapshot(
            pools=self.pools,
            nodes=self.nodes,
            running=holders(self.jobs.values()),
            foreign_usage=self.foreign_usage,
            jurisdiction=self.jurisdiction,
            nominated=nominated(self.jobs.values()),
        )

    def pending(self, now: float) -> list[JobRequest]:
        """The jobs that wait for the scheduler now, as the core's requests."""
        return [codec.job_request(job.obj, job.tenant) for job in self.jobs.values() if is_pending(job, now)]


def parse_jobs(
    cache: ClusterCache, default_tenant: str
) -> tuple[dict[str, ParsedJob], dict[str, InvalidJob]]:
    jobs: dict[str, ParsedJob] = {}
    invalid: dict[str, InvalidJob] = {}
    for key, raw in sorted(cache.items("aijobs").items()):
        if raw["metadata"].get("deletionTimestamp"):
            continue
        try:
            obj = AIJob.model_validate(raw)
        except ValidationError as err:
            invalid[key] = InvalidJob(key, raw, invalid_message(err))
            continue
        tenant = cache.tenant_of(raw["metadata"]["namespace"], default_tenant)
        jobs[key] = ParsedJob(key, raw, obj, tenant)
    return jobs, invalid


def invalid_message(err: ValidationError) -> str:
    fields = "; ".join(f"spec.{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in err.errors())
    return f"the job cannot run as written: {fields}; fix the spec and re-create it"


def pools(cache: ClusterCache) -> dict[str, PoolSpec]:
    """Pools by name; a pool of an unknown vendor is left out (its status says why)."""
    out = {}
    for raw in cache.items("computepools").values():
        spec = codec.pool_spec(raw)
        if spec is not None:
            out[spec.name] = spec
    return out


def nodes(cache: ClusterCache, now: float) -> dict[str, NodeInfo]:
    return {n["metadata"]["name"]: codec.node_info(n, now) for n in cache.items("nodes").values()}


def foreign_usage(cache: ClusterCache) -> dict[str, dict[str, int]]:
    """Per node, what pods Estuary does not own request (its own count through their job)."""
    out: dict[str, dict[str, int]] = {}
    for pod in cache.items("pods").values():
        if (pod["metadata"].get("labels") or {}).get(JOB_LABEL):
            continue
        used = codec.pod_usage(pod)
        if used:
            bucket = out.setdefault(used[0], {})
            for name, amount in used[1].items():
                bucket[name] = bucket.get(name, 0) + amount
    return out


def holders(jobs: Iterable[ParsedJob]) -> dict[str, RunningJob]:
    """Jobs that hold accelerators in this cluster."""
    out = {}
    for job in jobs:
        held = codec.running_job(job.obj, job.tenant)
        if held is not None:
            out[job.key] = held
    return out


def nominated(jobs: Iterable[ParsedJob]) -> frozenset[str]:
    """Queued jobs the last cycle left waiting for their victims: the core decides them first, so
    the room freed for them is theirs (core/nomination.py)."""
    waiting = Reason.PREEMPTING.value
    return frozenset(
        job.key
        for job in jobs
        if job.phase == Phase.QUEUED and job.status.reason == waiting and job.status.placement is None
    )


def is_pending(job: ParsedJob, now: float) -> bool:
    """Whether the job waits for the scheduler now (not held, finished, suspended or backing off)."""
    status = job.obj.status
    if job.obj.spec.suspend or (status and status.phase in (*FINISHED, Phase.SUSPENDED)):
        return False
    if status and status.placement is not None:
        return False  # holds accelerators here, is being released, or runs at a partner
    retry_after = codec.timestamp(status.retry_after) if status else None
    return retry_after is None or retry_after <= now


def read(
    cache: ClusterCache,
    now: float,
    jurisdiction: str | None = None,
    default_tenant: str = codec.DEFAULT_TENANT,
) -> ClusterView:
    """The cluster as one step sees it. Pure: reads the cache, writes nothing."""
    jobs, invalid = parse_jobs(cache, default_tenant)
    return ClusterView(jobs, invalid, pools(cache), nodes(cache, now), foreign_usage(cache), jurisdiction)
