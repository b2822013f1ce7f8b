"""What a pool has and who uses it, for the ComputePool status and dashboards.

Why it exists: the platform team reads capacity, health and per-tenant usage from `kubectl get
cpool`; the numbers must agree with what the scheduler itself sees, so they come from the same
working view (workspace.py) and quota book (quota.py).

All accelerator counts are over ready nodes, except `nodes` (every member node) and `free` (what
schedulable nodes offer right now). `lent` is approximate: what tenants borrow is taken first from
unassigned capacity (healthy capacity minus the sum of nominal quotas), and the rest from the
tenants with idle nominal, in proportion to what each may lend (largest remainder, ties by name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from estuary.core.capacity import node_resources
from estuary.core.workspace import Workspace, healthy_capacity
from estuary.model import Snapshot


@dataclass(frozen=True, slots=True)
class TenantUsage:
    used: int  # accelerators its running jobs hold in the pool
    nominal: int
    borrowed: int  # used above nominal
    lent: int  # own idle nominal currently used by others (approximate, see module docstring)


@dataclass(frozen=True, slots=True)
class PoolUsage:
    pool: str
    nodes: int
    capacity: int  # accelerators on ready nodes
    healthy: int  # capacity minus unhealthy accelerators
    allocated: int  # held by Estuary jobs and by foreign pods
    free: int  # free on schedulable nodes
    tenants: Mapping[str, TenantUsage]


def _share_out(amount: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Split `amount` over `weights` proportionally, never above a weight (largest remainder)."""
    total = sum(weights.values())
    amount = min(amount, total)
    if amount <= 0 or total <= 0:
        return {name: 0 for name in weights}
    parts = {name: amount * w // total for name, w in weights.items()}
    rest = amount - sum(parts.values())
    by_remainder = sorted(weights, key=lambda n: (-(amount * weights[n] % total), n))
    for name in by_remainder[:rest]:
        parts[name] += 1
    return parts


def pool_usage(snapshot: Snapshot, workspace: Workspace | None = None) -> dict[str, PoolUsage]:
    """Usage of every pool, by pool name. `workspace`: the snapshot's working view when the
    caller keeps one (CycleState.workspace), so it is not built again."""
    ws = workspace if workspace is not None else Workspace(snapshot)
    quota = ws.quota
    result: dict[str, PoolUsage] = {}
    for name, pool in ws.pools.items():
        ready = [n for n, node in pool.members.items() if node.ready]
        allocated = sum(
            node_resources(snapshot.foreign_usage.get(n, {}), pool.resource).accelerators
            + ws.load.get(n, node_resources({}, pool.resource)).accelerators
            for n in ready
        )
        tenants: dict[str, TenantUsage] = {}
        names = quota.tenants(name)
        if quota.enforced(name):
            borrowed = sum(quota.borrowed(name, t) for t in names)
            lent = _share_out(borrowed - quota.unassigned(name), {t: quota.lendable(name, t) for t in names})
            for t in names:
                tenants[t] = TenantUsage(
                    quota.used(name, t), quota.entry(name, t).nominal, quota.borrowed(name, t), lent[t]
                )
        else:
            for t in names:
                tenants[t] = TenantUsage(quota.used(name, t), 0, 0, 0)
        result[name] = PoolUsage(
            pool=name,
            nodes=len(pool.members),
            capacity=sum(pool.allocatable[n].accelerators for n in ready),
            healthy=healthy_capacity(pool),
            allocated=allocated,
            free=pool.free_accelerators(),
            tenants=tenants,
        )
    return result
