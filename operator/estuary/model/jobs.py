"""Jobs as the core sees them: what an AIJob asks for, and where an admitted one runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from estuary.model.cluster import Toleration
from estuary.model.resources import Resources


@dataclass(frozen=True, slots=True)
class AcceptedType:
    """One accelerator type a job's code runs on, in the user's order of preference."""

    vendor: str
    model: str | None = None  # None: any model of the vendor
    throughput: float | None = None  # per-job hint of relative speed; overrides the pool's

    def matches(self, vendor: str, model: str) -> bool:
        return self.vendor == vendor and (self.model is None or self.model.lower() == model.lower())


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A pending job. `key` is "namespace/name"; `arrival` is seconds on the caller's clock."""

    key: str
    tenant: str
    workers: int
    per_worker: Resources
    accepted: tuple[AcceptedType, ...]
    priority: int = 0
    arrival: float = 0.0
    min_workers: int | None = None  # elastic: may start with fewer workers, not below this
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    residency: str = "any"  # jurisdiction the job's data must stay in, or "any"
    work: float | None = None  # accelerator-seconds at throughput 1.0, when known (simulator)
    preemptible: bool = True
    # Time-sharing (core/attained.py), only under a policy with `time_sharing`:
    time_sharing: bool = False  # opted in: ranked by attained service, may yield or migrate
    attained: float = 0.0  # service of earlier runs: accelerator-seconds x the type's speed
    queued_since: float | None = None  # when it last joined the queue (None: at `arrival`)
    level: int = 0  # queue level the core ranks it in (lower first); set by the core itself


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where a job runs: its pool and one node per worker (index = rank)."""

    pool: str
    nodes: tuple[str, ...]

    @property
    def workers(self) -> int:
        return len(self.nodes)


@dataclass(frozen=True, slots=True)
class RunningJob:
    """An admitted job holding its assignment's resources (pods may still be starting)."""

    job: JobRequest
    assignment: Assignment
    started: float
    terminating: bool = False  # being preempted or released: still holds resources, never a new victim
