"""Translate API objects (plain dicts from watch events) into the scheduling core's data.

Pure functions: the cache calls them to build a Snapshot, `estuary explain` calls them on what it
listed, and unit tests call them on literal dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from estuary.api.aijob import FINISHED, HOLDING, AIJob
from estuary.api.computepool import ComputePool
from estuary.api.nodehealth import unhealthy_count
from estuary.model import (
    AcceptedType,
    Assignment,
    JobRequest,
    NodeInfo,
    PoolSpec,
    Resources,
    RunningJob,
    Taint,
    TenantQuota,
    Toleration,
)
from estuary.state.quantity import cpu_milli, parse
from estuary.vendors import profiles

TENANT_LABEL = "estuary.dev/tenant"
DEFAULT_TENANT = "default"
TERMINAL_POD_PHASES = ("Succeeded", "Failed")


def timestamp(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def quantity(value: str | int | float, where: str, scale: int = 1) -> int:
    """A quantity the core can count, or ValueError naming the field (`where`). The CRD's schema
    refuses such values already; this is the defence for objects stored before it did."""
    try:
        amount = parse(value, scale)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a Kubernetes quantity (e.g. 4, 500m, 16Gi)") from None
    if amount < 0:
        raise ValueError(f"{where}: {value!r} is negative")
    return amount


def _resources(raw: Mapping[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in raw.items():
        if name == "cpu":
            out[name] = cpu_milli(value)
        else:
            out[name] = parse(value)
    return out


def node_info(node: Mapping[str, Any], now: float) -> NodeInfo:
    """A node as the core sees it; unhealthy accelerators come from the node agent's annotations
    (a stale or missing report marks nothing unhealthy: a dead agent never drains a node)."""
    meta, spec, status = node["metadata"], node.get("spec") or {}, node.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    unhealthy = unhealthy_count(meta.get("annotations"), now=datetime.fromtimestamp(now, UTC))
    return NodeInfo(
        name=meta["name"],
        labels=dict(meta.get("labels") or {}),
        taints=tuple(
            Taint(t["key"], t.get("value") or "", t.get("effect", "NoSchedule"))
            for t in spec.get("taints") or []
        ),
        capacity=_resources(status.get("allocatable") or {}),
        ready=ready,
        unschedulable=bool(spec.get("unschedulable")),
        unhealthy_accelerators=max(unhealthy, 0),
    )


def _toleration(raw: Mapping[str, Any]) -> Toleration:
    return Toleration(
        key=raw.get("key") or None,
        operator=raw.get("operator") or "Equal",
        value=raw.get("value") or "",
        effect=raw.get("effect") or None,
    )


def resource_name(pool: ComputePool) -> str | None:
    """The pool's extended resource: its own, or its vendor profile's default."""
    if pool.spec.resource_name:
        return pool.spec.resource_name
    profile = profiles().get(pool.spec.vendor)
    return profile.default_resource if profile else None


def pool_spec(raw: Mapping[str, Any]) -> PoolSpec | None:
    """None when the pool names an unknown vendor (its status says so)."""
    pool = ComputePool.model_validate(raw)
    resource = resource_name(pool)
    if resource is None:
        return None
    return PoolSpec(
        name=pool.metadata["name"],
        vendor=pool.spec.vendor,
        model=pool.spec.model,
        resource=resource,
        node_selector=dict(pool.spec.node_selector),
        tolerations=tuple(_toleration(t.to_wire()) for t in pool.spec.tolerations or []),
        throughput=pool.spec.relative_throughput,
        cost_per_hour=pool.spec.cost_per_accelerator_hour,
        quotas={
            q.tenant: TenantQuota(q.nominal, q.borrowing_limit, q.lending_limit, q.weight)
            for q in pool.spec.quotas or []
        },
    )


def job_key(obj: Mapping[str, Any]) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def job_request(job: AIJob, tenant: str) -> JobRequest:
    spec = job.spec
    workers = spec.elastic.max_workers if spec.elastic else spec.workers
    return JobRequest(
        key=f"{job.metadata['namespace']}/{job.metadata['name']}",
        tenant=tenant,
        workers=workers,
        min_workers=spec.elastic.min_workers if spec.elastic else None,
        per_worker=Resources(
            spec.accelerators_per_worker,
            quantity(spec.resources.cpu, "spec.resources.cpu", 1000),
            quantity(spec.resources.memory, "spec.resources.memory"),
        ),
        accepted=tuple(AcceptedType(a.vendor, a.model, a.relative_throughput) for a in spec.accelerators),
        priority=spec.priority,
        arrival=timestamp(job.metadata.get("creationTimestamp")) or 0.0,
        # The template's nodeSelector and tolerations filter pools and nodes too (docs/jobs.md).
        node_selector=spec.pool_node_selector(),
        tolerations=tuple(_toleration(t) for t in spec.pool_tolerations()),
        residency=spec.residency,
        work=(
            spec.estimated_duration_seconds * spec.accelerators_per_worker * workers
            if spec.estimated_duration_seconds
            else None
        ),
        preemptible=spec.preemption.preemptible,
        time_sharing=spec.preemption.time_sharing,
        attained=3600.0 * (job.status.attained_service or 0.0) if job.status else 0.0,
        queued_since=timestamp(job.status.queued_at) if job.status else None,
    )


def running_job(job: AIJob, request: JobRequest) -> RunningJob | None:
    """The job as a holder of resources, if it holds any in this cluster (`request`: its
    `job_request`, built once per version of the job: a tick asks this of every job)."""
    status = job.status
    if status is None or status.placement is None or status.placement.cluster != "local":
        return None
    if status.phase in FINISHED:
        return None
    return RunningJob(
        job=request,
        assignment=Assignment(status.placement.pool, tuple(status.placement.nodes)),
        started=timestamp(status.admitted_at) or 0.0,
        terminating=status.phase not in HOLDING,
    )


def held_nodes(status: Mapping[str, Any] | None) -> frozenset[str]:
    """The nodes of this cluster an AIJob's status (as JSON) books: the rule of `running_job`, for
    a status not yet parsed (a write about to be sent)."""
    status = status or {}
    placement = status.get("placement") or {}
    if placement.get("cluster") != "local" or status.get("phase") in FINISHED:
        return frozenset()
    return frozenset(placement.get("nodes") or ())


def pod_usage(pod: Mapping[str, Any]) -> tuple[str, dict[str, int]] | None:
    """(node, requested resources) of a pod that holds resources on a node, else None."""
    node = (pod.get("spec") or {}).get("nodeName")
    if not node or (pod.get("status") or {}).get("phase") in TERMINAL_POD_PHASES:
        return None
    total: dict[str, int] = {}
    for container in pod["spec"].get("containers") or []:
        for name, value in _resources((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = total.get(name, 0) + value
    return node, total
