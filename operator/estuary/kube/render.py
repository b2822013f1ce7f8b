"""Manifests of an admitted job's worker pods and headless Service (pure functions).

Names are deterministic (`{job}-worker-{rank}`), so creating them twice is harmless: the second
create answers AlreadyExists. Each pod is pinned to its node by required node affinity, so
kube-scheduler still checks the fit and binds it. The job's `spec.template` is the starting point
of every worker pod (`podmerge.py`); what Estuary owns is set on top of it, and the CRD refuses a
template that sets any of it (`api/ownership.py`).
"""

from __future__ import annotations

from typing import Any

from estuary.api.aijob import AcceleratorChoice, AIJob
from estuary.api.ownership import WORKER_CONTAINER
from estuary.kube.launch import Rendezvous, distributed_env, launch_command
from estuary.kube.podmerge import OwnedParts, merge_pod_spec
from estuary.vendors.loader import VendorProfile

MANAGED_BY = "estuary"
JOB_LABEL = "estuary.dev/job-name"
RANK_LABEL = "estuary.dev/worker-rank"
ATTEMPT_LABEL = "estuary.dev/attempt"
POOL_LABEL = "estuary.dev/pool"
# Annotations on an AIJob with this prefix are copied to its pods (kwok stages read them in tests).
PASS_THROUGH_PREFIX = "estuary.dev/sim-"
# `kubectl logs` and `kubectl exec` pick the training container when a pod has sidecars.
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


def pod_name(job_name: str, rank: int) -> str:
    return f"{job_name}-worker-{rank}"


def service_name(job_name: str) -> str:
    return job_name


def owner_reference(job: AIJob) -> dict[str, Any]:
    return {
        "apiVersion": job.api_version,
        "kind": job.kind,
        "name": job.metadata["name"],
        "uid": job.metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def worker_labels(job_name: str) -> dict[str, str]:
    return {JOB_LABEL: job_name, "app.kubernetes.io/managed-by": MANAGED_BY}


def service(job: AIJob) -> dict[str, Any]:
    name = job.metadata["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(name),
            "namespace": job.metadata["namespace"],
            "labels": worker_labels(name),
            "ownerReferences": [owner_reference(job)],
        },
        "spec": {
            "clusterIP": "None",
            "selector": worker_labels(name),
            "publishNotReadyAddresses": True,
            "ports": [{"name": "rendezvous", "port": job.spec.master_port}],
        },
    }


def _owned_parts(job: AIJob, choice: AcceleratorChoice, env: dict[str, str], resource: str) -> OwnedParts:
    spec = job.spec
    command, args = launch_command(spec)
    amount: dict[str, str] = {"cpu": str(spec.resources.cpu), "memory": str(spec.resources.memory)}
    if spec.accelerators_per_worker:
        amount[resource] = str(spec.accelerators_per_worker)
    job_env = [e.to_wire() for e in spec.env or []]
    return OwnedParts(choice.image, command, args, env, job_env, amount, spec.master_port)


def _node_pin(node: str) -> dict[str, Any]:
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


def _pod_metadata(job: AIJob, rank: int, attempt: int, pool: str) -> dict[str, Any]:
    name = job.metadata["name"]
    template = job.spec.template.metadata if job.spec.template else None
    passed = {
        k: v for k, v in (job.metadata.get("annotations") or {}).items() if k.startswith(PASS_THROUGH_PREFIX)
    }
    return {
        "name": pod_name(name, rank),
        "namespace": job.metadata["namespace"],
        "labels": {
            **((template.labels if template else None) or {}),
            **worker_labels(name),
            RANK_LABEL: str(rank),
            ATTEMPT_LABEL: str(attempt),
            POOL_LABEL: pool,
        },
        "annotations": {
            **((template.annotations if template else None) or {}),
            **passed,
            DEFAULT_CONTAINER_ANNOTATION: WORKER_CONTAINER,
        },
        "ownerReferences": [owner_reference(job)],
    }


def worker_pod(
    job: AIJob,
    choice: AcceleratorChoice,
    profile: VendorProfile,
    resource: str,
    pool: str,
    node: str | None,
    rank: int,
    workers: int,
    attempt: int,
    pool_tolerations: list[dict[str, Any]],
) -> dict[str, Any]:
    """One worker pod: the job's template with what Estuary owns set on top (docs/jobs.md)."""
    name, spec = job.metadata["name"], job.spec
    master = f"{pod_name(name, 0)}.{service_name(name)}.{job.metadata['namespace']}.svc"
    env = distributed_env(spec, profile, Rendezvous(master, spec.master_port, rank, workers, attempt))
    pod_spec = merge_pod_spec(spec, _owned_parts(job, choice, env, resource))
    pod_spec.update(
        {
            "restartPolicy": "Never",
            "hostname": pod_name(name, rank),
            "subdomain": service_name(name),
            "terminationGracePeriodSeconds": spec.preemption.grace_period_seconds,
            **({} if node is None else {"affinity": _node_pin(node)}),  # None: where it cannot see nodes
            "tolerations": pool_tolerations + spec.pool_tolerations(),
        }
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _pod_metadata(job, rank, attempt, pool),
        "spec": pod_spec,
    }
