"""The pure scheduling core: a snapshot and a queue in, decisions and reasons out.

No Kubernetes client, no asyncio, no wall clock: time is a parameter. The operator's scheduling
loop and the simulator call the very same functions. The rules are in docs/scheduling.md.
"""

from estuary.core.cycle import run_cycle
from estuary.core.explain import explain
from estuary.core.policy import Policy, TimeSharing, TypeChoice
from estuary.core.state import CycleState
from estuary.core.usage import PoolUsage, TenantUsage, pool_usage

__all__ = [
    "CycleState",
    "Policy",
    "PoolUsage",
    "TenantUsage",
    "TimeSharing",
    "TypeChoice",
    "explain",
    "pool_usage",
    "run_cycle",
]
