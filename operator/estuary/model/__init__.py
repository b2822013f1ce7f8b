"""Plain typed data shared by the scheduling core, the simulator and the Kubernetes shell.

Standard library only: nothing here knows about Kubernetes clients, asyncio or wall clocks.
"""

from estuary.model.cluster import NodeInfo, PoolSpec, Taint, TenantQuota, Toleration
from estuary.model.decisions import (
    Admission,
    CycleResult,
    Migration,
    Preemption,
    Reason,
    TypeVerdict,
    Waiting,
)
from estuary.model.jobs import AcceptedType, Assignment, JobRequest, RunningJob
from estuary.model.resources import Resources
from estuary.model.snapshot import Snapshot

__all__ = [
    "AcceptedType",
    "Admission",
    "Assignment",
    "CycleResult",
    "JobRequest",
    "Migration",
    "NodeInfo",
    "PoolSpec",
    "Preemption",
    "Reason",
    "Resources",
    "RunningJob",
    "Snapshot",
    "Taint",
    "TenantQuota",
    "Toleration",
    "TypeVerdict",
    "Waiting",
]
