"""One read of the cache per step: the parsed jobs, the core's Snapshot and the pending queue.

Why it exists: everything a step decides starts from the same view of the cluster, built once
(as Kueue's `workload.Info` parses a Workload once per cycle). `read()` is pure: a function of the
cache's contents, the settings and the time. It never writes, so `estuary explain` can call it on
what it listed, about objects that are not its own, and an AIJob that does not parse is returned
as `InvalidJob` for the job controller to reject, never raised.

Parsing is remembered between reads (`_PARSED`, per cache): a job whose object in the cache is the
very same one as last time (nothing was written to it and no event came) is not parsed again. With
10,000 queued jobs, parsing them all took seconds per tick (bench/operator_memory.py); the parsed
models are never changed in place (a write replaces them: `ParsedJob.refresh`).

The parsed jobs are the step's working copies: a status write replaces a job's `raw` and `obj`
with what the API server returned (`ParsedJob.refresh`), so later stages of the same step see it.

Every object is judged alone: a job whose quantities do not parse is an `InvalidJob`, a pool that
cannot be used is left out with a finding (state/pools.py), and a node or pod that does not parse
is skipped; none of them stops the others from being read.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from estuary.api.aijob import FINISHED, AIJob, AIJobStatus, Phase
from estuary.api.base import Condition
from estuary.model import JobRequest, NodeInfo, PoolSpec, Reason, RunningJob, Snapshot
from estuary.state import codec
from estuary.state.cache import ATTEMPT_LABEL, ClusterCache, controller_of, owned_by
from estuary.state.pools import Labelled, PoolJudgement, assign

# The status reason of a job whose gang stops to move to a faster type (control/timeshare.py).
MIGRATING = "Migrating"
log = logging.getLogger("estuary.snapshot")

INVALID_SPEC = "InvalidSpec"  # status.reason of a job Estuary cannot run as written


_NO_STATUS = AIJobStatus()  # never changed: writes build statuses of their own


@dataclass
class ParsedJob:
    """An AIJob parsed once, with its tenant: the one its current local attempt was admitted
    under, else its namespace's."""

    key: str
    raw: dict[str, Any]
    obj: AIJob
    tenant: str
    request: JobRequest  # the core's view of the spec, built once (quantities checked)
    held: bool = False  # kept out of the queue by `status.hold` (see is_held)
    namespace_tenant: str = ""  # its namespace's tenant now: the next attempt's

    @property
    def namespace(self) -> str:
        return str(self.raw["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.raw["metadata"]["name"])

    @property
    def uid(self) -> str:
        return str(self.raw["metadata"].get("uid") or "")

    @property
    def generation(self) -> int | None:
        value = self.raw["metadata"].get("generation")
        return int(value) if value is not None else None

    @property
    def status(self) -> AIJobStatus:
        """The job's status (empty for a new job: one shared object, read only; a step reads
        the status of each of 10,000 new jobs several times, and building an empty one each
        time was a third of the step)."""
        return self.obj.status or _NO_STATUS

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
        tenant = admitted_tenant(updated) or self.namespace_tenant or self.tenant
        if tenant != self.tenant:  # an attempt ended in this step: the next one is the namespace's
            self.tenant, self.request = tenant, codec.job_request(self.obj, tenant)


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
    judged_pools: dict[str, PoolJudgement] = field(default_factory=dict)

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
        return [job.request for job in self.jobs.values() if is_pending(job, now)]


# per cache: job key -> (the object parsed, its tenant, the model, the core's request)
Parsed = tuple[dict[str, Any], str, AIJob, JobRequest]
_PARSED: weakref.WeakKeyDictionary[ClusterCache, dict[str, Parsed]] = weakref.WeakKeyDictionary()


def parse_jobs(
    cache: ClusterCache, default_tenant: str, now: float
) -> tuple[dict[str, ParsedJob], dict[str, InvalidJob]]:
    jobs: dict[str, ParsedJob] = {}
    invalid: dict[str, InvalidJob] = {}
    before, remembered = _PARSED.get(cache, {}), {}
    for key, raw in sorted(cache.items("aijobs").items()):
        if raw["metadata"].get("deletionTimestamp"):
            continue
        namespace_tenant = cache.tenant_of(raw["metadata"]["namespace"], default_tenant)
        tenant = admitted_tenant(raw) or namespace_tenant
        remembered_parse = before.get(key)
        if remembered_parse is not None and remembered_parse[0] is raw and remembered_parse[1] == tenant:
            obj, request = remembered_parse[2], remembered_parse[3]
        else:
            try:
                obj = AIJob.model_validate(raw)
                request = codec.job_request(obj, tenant)
            except ValidationError as err:
                invalid[key] = InvalidJob(key, raw, invalid_message(err))
                continue
            except ValueError as err:  # codec.InvalidQuantity: names the field
                invalid[key] = InvalidJob(key, raw, f"the job cannot run as written: {err}; fix the spec")
                continue
        remembered[key] = (raw, tenant, obj, request)
        held = is_held(raw, obj, cache, now)
        jobs[key] = ParsedJob(key, raw, obj, tenant, request, held, namespace_tenant)
    _PARSED[cache] = remembered
    return jobs, invalid


def admitted_tenant(raw: Mapping[str, Any]) -> str | None:
    """The tenant a local attempt was admitted under (`status.placement.tenant`): while it holds
    accelerators they stay that tenant's, whatever the namespace's label says now; the next
    attempt takes the namespace's tenant then (docs/operations.md, "Tenants")."""
    placement = (raw.get("status") or {}).get("placement") or {}
    tenant = placement.get("tenant") if placement.get("cluster") == "local" else None
    return str(tenant) if tenant else None


def is_held(raw: Mapping[str, Any], obj: AIJob, cache: ClusterCache, now: float) -> bool:
    """Whether `status.hold` still keeps the job out of the queue (control/refusals.py): until
    the spec changes (a new generation), its retry time, or the pod holding its name is gone."""
    hold = obj.status.hold if obj.status else None
    if hold is None or hold.generation != raw["metadata"].get("generation"):
        return False
    retry_at = codec.timestamp(hold.retry_at)
    if retry_at is not None and retry_at <= now:
        return False
    if hold.pod is None:
        return True
    pod = cache.get("pods", f"{raw['metadata']['namespace']}/{hold.pod}")
    return pod is not None and not owned_by(pod, str(raw["metadata"].get("uid") or ""))


def invalid_message(err: ValidationError) -> str:
    fields = "; ".join(f"spec.{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in err.errors())
    return f"the job cannot run as written: {fields}; fix the spec and re-create it"


# Per cache, each node's last parse: (the object parsed, the result). Reused while the cache holds
# the very same object, unless the node reports unhealthy accelerators (a report goes stale with
# time alone): a tick then neither parses 1,000 nodes again nor makes the core rebuild its view.
_NODES: weakref.WeakKeyDictionary[ClusterCache, dict[str, tuple[Any, NodeInfo]]] = weakref.WeakKeyDictionary()


_LABELLED: weakref.WeakKeyDictionary[ClusterCache, Labelled] = weakref.WeakKeyDictionary()


def nodes(cache: ClusterCache, now: float) -> dict[str, NodeInfo]:
    out, before, remembered = {}, _NODES.get(cache, {}), {}
    for name, raw in cache.items("nodes").items():
        kept = before.get(name)
        if kept is not None and kept[0] is raw:
            out[name], remembered[name] = kept[1], kept
            continue
        try:
            out[name] = info = codec.node_info(raw, now)
        except (ValueError, KeyError, TypeError) as err:  # judged alone: this node is not counted
            log.warning("Node %s: skipped, its status does not parse (%s)", name, err)
            continue
        if not info.unhealthy_accelerators:
            remembered[name] = (raw, info)
    _NODES[cache] = remembered
    return out


def foreign_usage(cache: ClusterCache, jobs: Mapping[str, ParsedJob]) -> dict[str, dict[str, int]]:
    """Per node, what pods request beyond the accelerators Estuary's own bookings cover.

    A pod is covered only when its controller owner reference is a job that holds a placement
    here, by that job's uid, and it belongs to the job's current attempt; anything else counts as
    foreign usage whatever its labels (a tenant's pod labelled like a worker uses its node)."""
    out: dict[str, dict[str, int]] = {}
    for key, pod in cache.items("pods").items():
        if _covered(pod, jobs):
            continue
        try:
            used = codec.pod_usage(pod)
        except ValueError as err:
            log.warning("Pod %s: its requests do not parse (%s); not counted", key, err)
            continue
        if used:
            bucket = out.setdefault(used[0], {})
            for name, amount in used[1].items():
                bucket[name] = bucket.get(name, 0) + amount
    return out


def _covered(pod: Mapping[str, Any], jobs: Mapping[str, ParsedJob]) -> bool:
    ref = controller_of(pod)
    if ref is None:
        return False
    job = jobs.get(f"{pod['metadata']['namespace']}/{ref.get('name')}")
    if job is None or ref.get("uid") != job.uid:
        return False
    placement = job.status.placement
    attempt = (pod["metadata"].get("labels") or {}).get(ATTEMPT_LABEL)
    return (
        placement is not None
        and placement.cluster == "local"
        and job.phase not in FINISHED
        and attempt == str(job.status.attempt)
    )


def holders(jobs: Iterable[ParsedJob]) -> dict[str, RunningJob]:
    """Jobs that hold accelerators in this cluster."""
    out = {}
    for job in jobs:
        held = codec.running_job(job.obj, job.request)
        if held is not None:
            out[job.key] = held
    return out


def nominated(jobs: Iterable[ParsedJob]) -> frozenset[str]:
    """Queued jobs the last cycle left waiting for their victims, and jobs that left a pool to move
    to a faster one: the core decides them first, so the room freed for them is theirs
    (core/nomination.py, control/timeshare.py)."""
    first = (Reason.PREEMPTING.value, MIGRATING)
    return frozenset(
        job.key
        for job in jobs
        if job.phase == Phase.QUEUED and job.status.reason in first and job.status.placement is None
    )


def is_pending(job: ParsedJob, now: float) -> bool:
    """Whether the job waits for the scheduler now (not held, finished, suspended or backing off)."""
    status = job.obj.status
    if job.obj.spec.suspend or job.held or (status and status.phase in (*FINISHED, Phase.SUSPENDED)):
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
    jobs, invalid = parse_jobs(cache, default_tenant, now)
    labelled = _LABELLED.setdefault(cache, {})
    core_pools, core_nodes, judged = assign(cache.items("computepools"), nodes(cache, now), labelled)
    return ClusterView(
        jobs, invalid, core_pools, core_nodes, foreign_usage(cache, jobs), jurisdiction, judged
    )
