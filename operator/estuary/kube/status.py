"""Typed status writes: the one way the controllers change what a user reads in `status`.

A write is a pydantic status model with only the fields to change set. `patch()` turns it into a
JSON merge patch (camelCase; a field set to None is deleted; unset fields are left as they are),
the API server applies it to the status subresource, and the object it returns goes into the
cache and into the step's `ParsedJob`, so the rest of the step and the next cycle see it.
`assume()` prepares the same patch without sending it: the job as it will be is put in the cache
as an assumption (state/cache.py) and into the `ParsedJob`, for control/writes.py to send in the
background (Kueue's "assume, then write"). A synchronous write to a job with background writes in
flight first waits for them (`settle_first`), so one job's writes always land in the order decided.

`JobWriter` is all the job controller and the federation controller know of each other's side:
both write AIJob status and events through it, and each reads what the other wrote from status.
Because every AIJob status write passes `StatusWriter.status`, that is where run records are kept
(`runrecords.amend`: opened at an admission, closed when the gang ends or is released).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from estuary import runrecords
from estuary.api.aijob import FAILED_CONDITION, RUNNING_CONDITION, SUCCEEDED_CONDITION, AIJobStatus, Phase
from estuary.api.base import Condition, StatusModel, set_condition, stamp_generation
from estuary.api.computepool import ComputePoolStatus
from estuary.kube.client import KubeApi
from estuary.state import codec
from estuary.state.cache import ClusterCache
from estuary.state.snapshot import INVALID_SPEC, InvalidJob, ParsedJob

log = logging.getLogger("estuary.status")


def patch(status: StatusModel) -> dict[str, Any]:
    """The merge patch that sets exactly the fields set on `status`."""
    return status.model_dump(by_alias=True, exclude_unset=True, mode="json")


def merged(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386: what the API server makes of `target` with the merge patch `patch` (maps merge,
    anything else replaces, null deletes)."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            held = out.get(key)
            out[key] = merged(held if isinstance(held, dict) else {}, value)
        else:
            out[key] = value
    return out


def changes(current: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the merge patch `wanted` that changes `current` (a null changes a present
    field only): writing it changes the same as writing `wanted`, and nothing means no write."""
    current = current or {}
    return {k: v for k, v in wanted.items() if current.get(k) != v}


def joinable(first: Mapping[str, Any], then: Mapping[str, Any]) -> bool:
    """Whether one merge patch can do what `first` and then `then` do: not when `then` sets keys
    inside a map that `first` deletes (the map's other keys would survive a joined patch)."""
    for key, value in then.items():
        if isinstance(value, dict):
            if key in first and first[key] is None:
                return False
            held = first.get(key)
            if isinstance(held, dict) and not joinable(held, value):
                return False
    return True


def joined(first: Mapping[str, Any], then: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that does what `first` and then `then` do (RFC 7386; see `joinable`)."""
    out = dict(first)
    for key, value in then.items():
        held = out.get(key)
        out[key] = joined(held, value) if isinstance(value, dict) and isinstance(held, dict) else value
    return out


def finished_conditions(
    conditions: Sequence[Condition], phase: Phase, reason: str, message: str, stamp: str
) -> list[Condition]:
    """The conditions of a job that just Succeeded or Failed: Succeeded or Failed True, and Running
    False (the workers are done), as a Kubernetes Job has Complete or Failed."""
    done = SUCCEEDED_CONDITION if phase == Phase.SUCCEEDED else FAILED_CONDITION
    out = set_condition(conditions, done, True, reason, message, stamp)
    if any(c.type == RUNNING_CONDITION for c in out):
        out = set_condition(out, RUNNING_CONDITION, False, reason, message, stamp)
    return out


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
        # Waits until a job's background writes are answered (control/writes.py sets it); True
        # when there were some.
        self.settle_first: Callable[[str], bool] = lambda key: False

    def update(self, job: ParsedJob, status: AIJobStatus) -> dict[str, Any]:
        """The merge patch that writes what changes (empty when the status already says it).
        Every write records the spec generation acted on (`observedGeneration`, on the status
        and on each condition), and keeps the run records (`runrecords.amend`)."""
        status = runrecords.amend(job.status, job.obj.spec.accelerators_per_worker, status, self.clock())
        generation = job.generation
        if generation is not None:
            status.observed_generation = generation
            if "conditions" in status.model_fields_set:
                status.conditions = stamp_generation(status.conditions, generation)
        return changes(job.raw.get("status"), patch(status))

    def status(self, job: ParsedJob, status: AIJobStatus) -> None:
        """Write what changes, now: nothing at all when the status already says it."""
        if self.settle_first(job.key):  # background writes were in flight: start from their result
            fresh = self.cache.get("aijobs", job.key)
            if fresh is not None:
                job.refresh(fresh)
        update = self.update(job, status)
        if not update:
            return
        updated = self.api.patch_job_status(job.namespace, job.name, update)
        self.cache.apply("aijobs", "MODIFIED", updated)
        job.refresh(updated)

    def assume(self, job: ParsedJob, status: AIJobStatus) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Prepare the write without sending it: the job as it will be goes into the cache (an
        assumption) and into `job`. Returns (the merge patch, the assumed object), or None when
        nothing changes."""
        update = self.update(job, status)
        if not update:
            return None
        assumed = self.cache.assume(
            "aijobs", {**job.raw, "status": merged(job.raw.get("status") or {}, update)}
        )
        job.refresh(assumed)
        return update, assumed

    def event(self, job: ParsedJob, reason: str, message: str, warning: bool = False) -> None:
        log.log(logging.WARNING if warning else logging.INFO, "AIJob %s: %s: %s", job.key, reason, message)
        self.api.event(job.raw, "AIJob", warning, reason, message)

    def reject(self, job: InvalidJob, now: float) -> None:
        """Mark an AIJob Estuary cannot run as Failed, once, with what to fix."""
        ns, name = job.key.split("/", 1)
        stamp = codec.rfc3339(now)
        status = AIJobStatus(
            phase=Phase.FAILED,
            reason=INVALID_SPEC,
            message=job.message,
            completion_time=stamp,
            observed_generation=job.raw["metadata"].get("generation"),
            conditions=finished_conditions([], Phase.FAILED, INVALID_SPEC, job.message, stamp),
        )
        self.cache.apply("aijobs", "MODIFIED", self.api.patch_job_status(ns, name, patch(status)))
        self.api.event(job.raw, "AIJob", True, INVALID_SPEC, job.message)

    def pool(self, raw: Mapping[str, Any], status: ComputePoolStatus) -> bool:
        """Write the pool's status where it differs from `status` (conditions always whole, so
        a condition that went away goes away); True when something was written."""
        update = changes(raw.get("status"), patch(status))
        if not update:
            return False
        name = raw["metadata"]["name"]
        self.cache.apply("computepools", "MODIFIED", self.api.patch_pool_status(name, update))
        return True
