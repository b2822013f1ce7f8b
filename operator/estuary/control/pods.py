"""A gang's pods: create the workers of an admitted job, delete them when it is released.

Creates are idempotent (deterministic names: AlreadyExists counts as done) and go out in parallel
(a gang's pods do not depend on each other); deletes of missing pods count as done.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from estuary.api.aijob import AcceleratorChoice, AIJob
from estuary.fence import pod as fencepod
from estuary.kube import render
from estuary.kube.client import KubeApi
from estuary.model import PoolSpec
from estuary.state.cache import ClusterCache
from estuary.state.codec import TERMINAL_POD_PHASES
from estuary.state.snapshot import ParsedJob
from estuary.vendors import profiles


def choice_for(job: AIJob, pool: PoolSpec) -> AcceleratorChoice:
    """The job's accepted type a pool offers (the image and hints for that type)."""
    return next(
        c
        for c in job.spec.accelerators
        if c.vendor == pool.vendor and (c.model is None or c.model.lower() == pool.model.lower())
    )


class Pods:
    def __init__(self, api: KubeApi, cache: ClusterCache) -> None:
        self.api, self.cache = api, cache
        self._writers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="estuary-writes")

    def create_workers(self, job: ParsedJob, ranks: list[int]) -> None:
        """The headless Service and the workers of these ranks, on the nodes of the placement."""
        status = job.status
        placement = status.placement
        assert placement is not None
        pool_raw = self.cache.get("computepools", placement.pool) or {}
        pool_tolerations = list((pool_raw.get("spec") or {}).get("tolerations") or [])
        choice = choice_for(
            job.obj, PoolSpec(placement.pool, placement.vendor, placement.model, placement.resource)
        )
        profile = profiles()[placement.vendor]
        manifests = [render.service(job.obj)] + [
            render.worker_pod(
                job.obj,
                choice,
                profile,
                placement.resource,
                placement.pool,
                placement.nodes[rank],
                rank,
                len(placement.nodes),
                status.attempt,
                pool_tolerations,
            )
            for rank in ranks
        ]
        manifests = fencepod.for_copies(job.raw, manifests)  # federation: pod-side fencing of copies
        for done in [self._writers.submit(self.api.create, m) for m in manifests]:
            done.result()

    def delete_all(self, job: ParsedJob, grace: int | None = 0) -> None:
        for pod in self.cache.pods_of(job.key):
            self.api.delete_pod(pod["metadata"]["namespace"], pod["metadata"]["name"], grace)

    def delete_live(self, job: ParsedJob) -> None:
        """Stop the workers still running (a finished job keeps its terminated pods' logs)."""
        for pod in self.cache.pods_of(job.key):
            if (pod.get("status") or {}).get("phase") not in TERMINAL_POD_PHASES:
                self.api.delete_pod(pod["metadata"]["namespace"], pod["metadata"]["name"], 0)

    def delete_remaining(self, job: ParsedJob) -> bool:
        """Delete the pods not yet being deleted; True when none is left."""
        pods = self.cache.pods_of(job.key)
        for pod in pods:
            if not pod["metadata"].get("deletionTimestamp"):
                self.api.delete_pod(pod["metadata"]["namespace"], pod["metadata"]["name"])
        return not pods
