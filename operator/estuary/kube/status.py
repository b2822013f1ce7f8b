"""Typed status writes: the one way the controllers change what a user reads in `status`.

A write is a pydantic status model with only the fields to change set. `patch()` turns it into a
JSON merge patch (camelCase; a field set to None is deleted; unset fields are left as they are),
the API server applies it to the status subresource, and the object it returns goes into the
cache and into the step's `ParsedJob`, so the rest of the step and the next cycle see it (Kueue's
"assume", for status).

`JobWriter` is all the job controller and the federation controller know of each other's side:
both write AIJob status and events through it, and each reads what the other wrote from status.
Because every AIJob status write passes `StatusWriter.status`, that is where run records are kept
(`runrecords.amend`: opened at an admission, closed when the gang ends or is released).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from estuary import runrecords
from estuary.api.aijob import AIJobStatus, Phase
from estuary.api.base import StatusModel
from estuary.api.computepool import ComputePoolStatus
from estuary.kube.client import KubeApi
from estuary.state import codec
from estuary.state.cache import ClusterCache
from estuary.state.snapshot import INVALID_SPEC, InvalidJob, ParsedJob

log = logging.getLogger("estuary.status")


def patch(status: StatusModel) -> dict[str, Any]:
    """The merge patch that sets exactly the fields set on `status`."""
    return status.model_dump(by_alias=True, exclude_unset=True, mode="json")


class JobWriter(Protocol):
    """Records decisions on an AIJob: its status, and events a person reads with kubectl."""

    def status(self, job: ParsedJob, status: AIJobStatus) -> None:
        """Merge the set fields of `status` into the job's status; `job` then holds the result."""

    def event(self, job: ParsedJob, reason: str, message: str, warning: bool = False) -> None:
        """Log and post an event on the job."""


class StatusWriter:
    """`JobWriter` over the `KubeApi` seam, feeding every returned object into the cache."""

    def __init__(self, api: KubeApi, cache: ClusterCache, clock: Callable[[], float] = time.time) -> None:
        self.api, self.cache, self.clock = api, cache, clock

    def status(self, job: ParsedJob, status: AIJobStatus) -> None:
        status = runrecords.amend(job.status, job.obj.spec.accelerators_per_worker, status, self.clock())
        updated = self.api.patch_job_status(job.namespace, job.name, patch(status))
        self.cache.apply("aijobs", "MODIFIED", updated)
        job.refresh(updated)

    def event(self, job: ParsedJob, reason: str, message: str, warning: bool = False) -> None:
        log.log(logging.WARNING if warning else logging.INFO, "AIJob %s: %s: %s", job.key, reason, message)
        self.api.event(job.raw, "AIJob", warning, reason, message)

    def reject(self, job: InvalidJob, now: float) -> None:
        """Mark an AIJob Estuary cannot run as Failed, once, with what to fix."""
        ns, name = job.key.split("/", 1)
        status = AIJobStatus(
            phase=Phase.FAILED,
            reason=INVALID_SPEC,
            message=job.message,
            completion_time=codec.rfc3339(now),
        )
        self.cache.apply("aijobs", "MODIFIED", self.api.patch_job_status(ns, name, patch(status)))

    def pool(self, name: str, status: ComputePoolStatus) -> None:
        self.cache.apply("computepools", "MODIFIED", self.api.patch_pool_status(name, patch(status)))
