"""Manifests of an admitted job's worker pods and headless Service (pure functions).

Names are deterministic (`{job}-worker-{rank}`), so creating them twice is harmless: the second
create answers AlreadyExists. Each pod is pinned to its node by required node affinity, so
kube-scheduler still checks the fit and binds it.
"""

from __future__ import annotations

from typing import Any

from estuary.api.aijob import AcceleratorChoice, AIJob
from estuary.kube.launch import Rendezvous, distributed_env, launch_command
from estuary.vendors.loader import VendorProfile

MANAGED_BY = "estuary"
JOB_LABEL = "estuary.dev/job-name"
RANK_LABEL = "estuary.dev/worker-rank"
ATTEMPT_LABEL = "estuary.dev/attempt"
POOL_LABEL = "estuary.dev/pool"
# Annotations on an AIJob with this prefix are copied to its pods (kwok stages read them in tests).
PASS_THROUGH_PREFIX = "estuary.dev/sim-"


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


def _node_pin(node: str) -> dict[str, Any]:
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


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
    name, namespace = job.metadata["name"], job.metadata["namespace"]
    spec = job.spec
    master = f"{pod_name(name, 0)}.{service_name(name)}.{namespace}.svc"
    env = distributed_env(spec, profile, Rendezvous(master, spec.master_port, rank, workers))
    command, args = launch_command(spec)
    amount: dict[str, Any] = {"cpu": str(spec.resources.cpu), "memory": str(spec.resources.memory)}
    if spec.accelerators_per_worker:
        amount[resource] = str(spec.accelerators_per_worker)
    tolerations = pool_tolerations + [t.to_wire() for t in spec.tolerations or []]
    annotations = {
        k: v for k, v in (job.metadata.get("annotations") or {}).items() if k.startswith(PASS_THROUGH_PREFIX)
    }
    container: dict[str, Any] = {
        "name": "worker",
        "image": choice.image,
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "resources": {"requests": amount, "limits": dict(amount)},
        "ports": [{"name": "rendezvous", "containerPort": spec.master_port}],
    }
    if command:
        container["command"] = command
    if args:
        container["args"] = args
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(name, rank),
            "namespace": namespace,
            "labels": {
                **worker_labels(name),
                RANK_LABEL: str(rank),
                ATTEMPT_LABEL: str(attempt),
                POOL_LABEL: pool,
            },
            "annotations": annotations,
            "ownerReferences": [owner_reference(job)],
        },
        "spec": {
            "restartPolicy": "Never",
            "hostname": pod_name(name, rank),
            "subdomain": service_name(name),
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": spec.preemption.grace_period_seconds,
            **({} if node is None else {"affinity": _node_pin(node)}),  # None: where it cannot see nodes
            "tolerations": tolerations,
            "containers": [container],
        },
    }
