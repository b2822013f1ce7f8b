"""A gang's pods: create the workers of an admitted job, delete them when it is released, and check
a new job's first worker with the API server before it is ever admitted.

Creates are idempotent (deterministic names); control/writes.py sends them, in parallel (a gang's
pods do not depend on each other). A name that is already taken counts as done only when the
object there is the job's own (its controller owner reference is the job's uid); anyone else's pod
or Service under that name raises `NameTaken`, and a create the API server refuses raises
`WorkerRefused`, both for the lifecycle to release the attempt with a reason a person can act on.
Deletes only ever touch the job's own pods; a missing one counts as done.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from estuary.api.aijob import AcceleratorChoice, AIJob
from estuary.fence import pod as fencepod
from estuary.kube import render
from estuary.kube.client import KubeApi, Refused
from estuary.model import PoolSpec
from estuary.state.cache import ClusterCache, owned_by
from estuary.state.codec import TERMINAL_POD_PHASES
from estuary.state.snapshot import ParsedJob
from estuary.vendors import profiles

DRY_RUN_NODE = "estuary-dry-run"  # a node name for a check that binds nothing


class WorkerRefused(Exception):
    """The API server refused a worker pod or the job's Service."""

    def __init__(self, kind: str, name: str, refusal: Refused) -> None:
        super().__init__(refusal.message)
        self.kind, self.name, self.code, self.server_says = kind, name, refusal.code, refusal.message

    @property
    def permanent(self) -> bool:
        """Invalid (400, 422): refused again until the spec changes. Forbidden (403: admission
        policy, ResourceQuota, LimitRange) may pass later, when the namespace's rules change."""
        return self.code != 403


class NameTaken(Exception):
    """A pod or Service that is not the job's own already has the name of one of its objects."""

    def __init__(self, kind: str, name: str, owner: str) -> None:
        super().__init__(f"{kind} {name} exists and is not this job's own ({owner})")
        self.kind, self.name, self.owner = kind, name, owner


def choice_for(job: AIJob, pool: PoolSpec) -> AcceleratorChoice:
    """The job's accepted type a pool offers (the image and hints for that type)."""
    return next(
        c
        for c in job.spec.accelerators
        if c.vendor == pool.vendor and (c.model is None or c.model.lower() == pool.model.lower())
    )


def _owner_of(obj: Mapping[str, Any]) -> str:
    refs = obj["metadata"].get("ownerReferences") or []
    controller = next((r for r in refs if r.get("controller")), None)
    if controller is None:
        return "it has no controller owner reference"
    return f"controlled by {controller.get('kind')} {controller.get('name')} uid {controller.get('uid')}"


def check_created(uid: str, manifest: dict[str, Any], answer: object) -> None:
    """Raise when the API server's answer to a create is not the job's own object."""
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    if isinstance(answer, Refused):
        raise WorkerRefused(kind, name, answer)
    if isinstance(answer, BaseException):
        raise answer
    assert isinstance(answer, dict)
    if not owned_by(answer, uid):
        raise NameTaken(kind, name, _owner_of(answer))


class Pods:
    def __init__(self, api: KubeApi, cache: ClusterCache) -> None:
        self.api, self.cache = api, cache

    def _pool_tolerations(self, pool: str) -> list[dict[str, Any]]:
        pool_raw = self.cache.get("computepools", pool) or {}
        return list((pool_raw.get("spec") or {}).get("tolerations") or [])

    def worker(self, job: ParsedJob, pool: PoolSpec, node: str, rank: int, workers: int) -> dict[str, Any]:
        """The manifest of one worker of `job` on `node` of `pool`."""
        return render.worker_pod(
            job.obj,
            choice_for(job.obj, pool),
            profiles()[pool.vendor],
            pool.resource,
            pool.name,
            node,
            rank,
            workers,
            job.status.attempt,
            self._pool_tolerations(pool.name),
        )

    def manifests(self, job: ParsedJob, ranks: list[int]) -> list[dict[str, Any]]:
        """The headless Service and the workers of these ranks, on the nodes of the placement
        (control/writes.py creates them)."""
        placement = job.status.placement
        assert placement is not None
        pool = PoolSpec(placement.pool, placement.vendor, placement.model, placement.resource)
        workers = len(placement.nodes)
        manifests = [render.service(job.obj)] + [
            self.worker(job, pool, placement.nodes[rank], rank, workers) for rank in ranks
        ]
        return fencepod.for_copies(job.raw, manifests)  # federation: pod-side fencing of copies

    def dry_run(self, job: ParsedJob, pool: PoolSpec, node: str | None) -> None:
        """Ask the API server whether it would accept the job's first worker on `pool` (nothing is
        created). Raises WorkerRefused or NameTaken as a real create would. (The Service is not
        asked: a name conflict there is rare and caught, with the same hold, when it is created.)"""
        worker = self.worker(job, pool, node or DRY_RUN_NODE, 0, job.obj.spec.workers)
        [worker] = fencepod.for_copies(job.raw, [worker])
        try:
            answer: object = self.api.create(worker, dry_run=True)
        except Refused as refusal:
            answer = refusal
        check_created(job.uid, worker, answer)

    def delete_all(self, job: ParsedJob, grace: int | None = 0) -> None:
        for pod in self.cache.pods_of(job.key, job.uid):
            self.api.delete_pod(pod["metadata"]["namespace"], pod["metadata"]["name"], grace)

    def delete_live(self, job: ParsedJob) -> None:
        """Stop the workers still running (a finished job keeps its terminated pods' logs)."""
        for pod in self.cache.pods_of(job.key, job.uid):
            if (pod.get("status") or {}).get("phase") not in TERMINAL_POD_PHASES:
                self.api.delete_pod(pod["metadata"]["namespace"], pod["metadata"]["name"], 0)

    def delete_remaining(self, job: ParsedJob) -> bool:
        """Delete the pods not yet being deleted; True when none is left."""
        pods = self.cache.pods_of(job.key, job.uid)
        for pod in pods:
            if not pod["metadata"].get("deletionTimestamp"):
                self.api.delete_pod(pod["metadata"]["namespace"], pod["metadata"]["name"])
        return not pods
