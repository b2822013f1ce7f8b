"""Nodes, taints and ComputePools as the scheduling core sees them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"  # NoSchedule | PreferNoSchedule | NoExecute


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str | None = None  # None with operator Exists tolerates every taint
    operator: str = "Equal"  # Equal | Exists
    value: str = ""
    effect: str | None = None  # None tolerates every effect

    def tolerates(self, taint: Taint) -> bool:
        if self.effect is not None and self.effect != taint.effect:
            return False
        if self.key is None:
            return self.operator == "Exists"
        if self.key != taint.key:
            return False
        return self.operator == "Exists" or self.value == taint.value


def tolerated(taints: tuple[Taint, ...], tolerations: tuple[Toleration, ...]) -> bool:
    """Whether every scheduling-relevant taint is tolerated (PreferNoSchedule never blocks)."""
    return all(
        taint.effect == "PreferNoSchedule" or any(t.tolerates(taint) for t in tolerations) for taint in taints
    )


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node: `capacity` is its allocatable resources by Kubernetes name.

    CPU is in millicores under "cpu", memory in bytes under "memory", and each extended resource
    (e.g. "nvidia.com/gpu") as a whole count.
    """

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    capacity: Mapping[str, int] = field(default_factory=dict)
    ready: bool = True
    unschedulable: bool = False
    unhealthy_accelerators: int = 0  # reported by the node agent; never placed on


@dataclass(frozen=True, slots=True)
class TenantQuota:
    """A tenant's share of one pool, in accelerators.

    nominal: guaranteed. borrowing_limit: how far above nominal it may go by borrowing others'
    idle quota (None = no limit). lending_limit: how much of its idle nominal others may borrow
    (None = all of it). weight: its fair share of borrowable capacity.
    """

    nominal: int = 0
    borrowing_limit: int | None = None
    lending_limit: int | None = None
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """A ComputePool: one homogeneous accelerator type on the nodes its selector picks."""

    name: str
    vendor: str
    model: str
    resource: str  # extended resource name, e.g. "huawei.com/Ascend910"
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    throughput: float = 1.0  # relative speed of one accelerator against a reference
    cost_per_hour: float = 0.0  # per accelerator
    quotas: Mapping[str, TenantQuota] = field(default_factory=dict)  # empty: no quota enforced

    def selects(self, node: NodeInfo) -> bool:
        return node.capacity.get(self.resource, 0) > 0 and all(
            node.labels.get(k) == v for k, v in self.node_selector.items()
        )
