"""What a scheduling cycle decides, with reasons a person can act on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from estuary.model.jobs import Assignment


class Reason(StrEnum):
    """Why a job is not running. Values appear in status conditions and `estuary explain`."""

    QUOTA = "QuotaExceeded"  # the tenant's quota in the pool binds
    CAPACITY = "InsufficientCapacity"  # not enough free accelerators in the pool
    FRAGMENTED = "Fragmented"  # enough in total, but not on few enough nodes
    SELECTOR = "NoMatchingNodes"  # taints, node selector or CPU/memory rule every node out
    NO_POOL = "NoMatchingPool"  # no ComputePool offers any accepted accelerator type
    NEVER_FITS = "NeverFits"  # larger than the pool even when empty
    UNHEALTHY = "UnhealthyAccelerators"  # capacity exists only on unhealthy accelerators
    RESIDENCY = "ResidencyForbids"  # data may not be processed in this cluster's jurisdiction
    PRIORITY = "BehindHigherPriority"  # capacity is reserved for a job ahead in the queue
    PREEMPTING = "WaitingForPreemption"  # victims were chosen and are being stopped


@dataclass(frozen=True, slots=True)
class TypeVerdict:
    """How one accepted accelerator type (one pool) fares for a job right now."""

    pool: str
    vendor: str
    model: str
    fits: bool
    reason: Reason | None
    message: str
    est_runtime_factor: float  # relative runtime on this pool (lower is sooner)


@dataclass(frozen=True, slots=True)
class Admission:
    job_key: str
    assignment: Assignment
    reason: str = ""  # why this pool, for the Admitted condition


@dataclass(frozen=True, slots=True)
class Preemption:
    victim_key: str
    preemptor_key: str
    reason: str  # "Reclaim" (quota returned to its owner) or "Priority"
    message: str


@dataclass(frozen=True, slots=True)
class Migration:
    """A running job moves to a faster type: its gang stops where it runs (grace period, resume from
    its last checkpoint) and starts on `assignment`, which it holds from this cycle on."""

    job_key: str
    source_pool: str
    assignment: Assignment
    message: str  # the numbers: time left there and here, what the move costs


@dataclass(frozen=True, slots=True)
class Waiting:
    job_key: str
    reason: Reason
    message: str
    position: int  # 1-based place in the queue
    verdicts: tuple[TypeVerdict, ...] = ()


@dataclass(frozen=True, slots=True)
class CycleResult:
    admissions: tuple[Admission, ...] = ()
    preemptions: tuple[Preemption, ...] = ()
    waiting: Mapping[str, Waiting] = field(default_factory=dict)
    migrations: tuple[Migration, ...] = ()
