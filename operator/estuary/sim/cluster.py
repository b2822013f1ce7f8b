"""A declared simulated cluster: pools of one accelerator type each, nodes, tenants' quotas.

The simulator needs the same ``PoolSpec``s and ``NodeInfo``s the operator builds from ComputePools
and Nodes, but from a few lines of YAML (or Python) instead of a live API server. Each pool names
the throughput-table worker type that sets its speed (``v100``, ``ascend910``, ...).

YAML::

    name: campus
    pools:
      - name: v100
        type: v100              # worker type in the throughput table
        nodes: 300
        acceleratorsPerNode: 8
        vendor: nvidia          # optional; defaults from the type
        model: V100             # optional
        resource: nvidia.com/gpu  # optional
        costPerHour: 2.5        # optional, per accelerator
        quotas:                 # optional; absent = no quota enforced in this pool
          tenant-a: {nominal: 800, borrowingLimit: 400, lendingLimit: null, weight: 1}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from estuary.model import NodeInfo, PoolSpec, TenantQuota
from estuary.sim.throughputs import ThroughputTable

POOL_LABEL = "estuary.dev/node-pool"  # the label hack/devcluster puts on simulated nodes
CPU_MILLI_PER_ACCELERATOR = 12_000
MEMORY_PER_ACCELERATOR = 96 * 2**30

# worker type -> (vendor, model, resource)
KNOWN_TYPES: Mapping[str, tuple[str, str, str]] = {
    "k80": ("nvidia", "K80", "nvidia.com/gpu"),
    "p100": ("nvidia", "P100", "nvidia.com/gpu"),
    "v100": ("nvidia", "V100", "nvidia.com/gpu"),
    "ascend910": ("huawei", "Ascend910", "huawei.com/Ascend910"),
}


class ClusterError(ValueError):
    """A cluster file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class PoolDecl:
    name: str
    worker_type: str
    nodes: int
    accelerators_per_node: int
    vendor: str
    model: str
    resource: str
    cost_per_hour: float = 0.0
    quotas: Mapping[str, TenantQuota] = field(default_factory=dict)

    @property
    def accelerators(self) -> int:
        return self.nodes * self.accelerators_per_node

    def node_names(self) -> list[str]:
        width = max(3, len(str(self.nodes - 1)))
        return [f"{self.name}-{i:0{width}d}" for i in range(self.nodes)]


@dataclass(frozen=True)
class SimCluster:
    name: str
    pools: tuple[PoolDecl, ...]

    @property
    def accelerators(self) -> int:
        return sum(p.accelerators for p in self.pools)

    @property
    def node_count(self) -> int:
        return sum(p.nodes for p in self.pools)

    @property
    def gang_unit(self) -> int:
        """Accelerators per worker for jobs larger than one node: the smallest node size, so that
        every pool can host a worker (a job's worker shape is the same on every type)."""
        return min(p.accelerators_per_node for p in self.pools)

    def pool(self, name: str) -> PoolDecl:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)

    def describe(self) -> str:
        parts = [f"{p.name}: {p.nodes} nodes x {p.accelerators_per_node} {p.model}" for p in self.pools]
        return (
            f"{self.name} ({self.node_count} nodes, {self.accelerators} accelerators; "
            + "; ".join(parts)
            + ")"
        )

    def pool_specs(self, table: ThroughputTable, reference: str = "v100") -> dict[str, PoolSpec]:
        """ComputePools as the core sees them. ``throughput`` is the geometric mean over job types
        of the 1-accelerator rate against ``reference`` (jobs carry exact per-type hints anyway)."""
        return {
            p.name: PoolSpec(
                name=p.name,
                vendor=p.vendor,
                model=p.model,
                resource=p.resource,
                node_selector={POOL_LABEL: p.name},
                throughput=relative_speed(table, p.worker_type, reference),
                cost_per_hour=p.cost_per_hour,
                quotas=dict(p.quotas),
            )
            for p in self.pools
        }

    def nodes(self) -> dict[str, NodeInfo]:
        out: dict[str, NodeInfo] = {}
        for p in self.pools:
            capacity = {
                "cpu": CPU_MILLI_PER_ACCELERATOR * p.accelerators_per_node,
                "memory": MEMORY_PER_ACCELERATOR * p.accelerators_per_node,
                p.resource: p.accelerators_per_node,
            }
            labels = {POOL_LABEL: p.name, "estuary.dev/vendor": p.vendor, "estuary.dev/model": p.model}
            for name in p.node_names():
                out[name] = NodeInfo(
                    name=name, labels={**labels, "kubernetes.io/hostname": name}, capacity=capacity
                )
        return out


def relative_speed(table: ThroughputTable, worker_type: str, reference: str) -> float:
    ratios = [
        table.rate(worker_type, j, 1) / table.rate(reference, j, 1)
        for j in table.job_types()
        if table.rate(worker_type, j, 1) > 0 and table.rate(reference, j, 1) > 0
    ]
    if not ratios:
        return 1.0
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios))


def pool_decl(name: str, worker_type: str, nodes: int, accelerators_per_node: int, **extra: Any) -> PoolDecl:
    """A pool with vendor, model and resource defaulted from a known worker type."""
    vendor, model, resource = KNOWN_TYPES.get(worker_type, ("nvidia", worker_type.upper(), "nvidia.com/gpu"))
    return PoolDecl(
        name=name,
        worker_type=worker_type,
        nodes=nodes,
        accelerators_per_node=accelerators_per_node,
        vendor=extra.pop("vendor", vendor),
        model=extra.pop("model", model),
        resource=extra.pop("resource", resource),
        **extra,
    )


def gavel_cluster(per_type: int = 36, per_node: int = 4) -> SimCluster:
    """Gavel's evaluation cluster: 36 K80 + 36 P100 + 36 V100, here as 9 nodes of 4 per type."""
    if per_type % per_node:
        raise ValueError("per_type must be a multiple of per_node")
    return SimCluster(
        "gavel", tuple(pool_decl(t, t, per_type // per_node, per_node) for t in ("k80", "p100", "v100"))
    )


# ---------------------------------------------------------------------------------------------
# YAML


_POOL_FIELDS = (
    "name",
    "type",
    "nodes",
    "acceleratorsPerNode",
    "vendor",
    "model",
    "resource",
    "costPerHour",
    "quotas",
)
_QUOTA_FIELDS = ("nominal", "borrowingLimit", "lendingLimit", "weight")


def _fail(source: str, path: str, problem: str) -> ClusterError:
    return ClusterError(f"{source}: {path}: {problem}")


def _int(source: str, path: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(source, path, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _opt_int(source: str, path: str, value: object) -> int | None:
    return None if value is None else _int(source, path, value, 0)


def _quota(source: str, path: str, raw: object) -> TenantQuota:
    if not isinstance(raw, Mapping):
        raise _fail(source, path, f"must be a mapping, got {raw!r}")
    unknown = [k for k in raw if k not in _QUOTA_FIELDS]
    if unknown:
        raise _fail(source, f"{path}.{unknown[0]}", f"unknown field (allowed: {', '.join(_QUOTA_FIELDS)})")
    weight = raw.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
        raise _fail(source, f"{path}.weight", f"must be a positive number, got {weight!r}")
    return TenantQuota(
        nominal=_int(source, f"{path}.nominal", raw.get("nominal", 0), 0),
        borrowing_limit=_opt_int(source, f"{path}.borrowingLimit", raw.get("borrowingLimit")),
        lending_limit=_opt_int(source, f"{path}.lendingLimit", raw.get("lendingLimit")),
        weight=float(weight),
    )


def parse_cluster(data: object, source: str = "<cluster>") -> SimCluster:
    if not isinstance(data, Mapping):
        raise _fail(source, "(top level)", "must be a mapping with 'pools'")
    raw_pools = data.get("pools")
    if not isinstance(raw_pools, list) or not raw_pools:
        raise _fail(source, "pools", "must be a non-empty list")
    pools: list[PoolDecl] = []
    for i, raw in enumerate(raw_pools):
        path = f"pools[{i}]"
        if not isinstance(raw, Mapping):
            raise _fail(source, path, "must be a mapping")
        unknown = [k for k in raw if k not in _POOL_FIELDS]
        if unknown:
            raise _fail(source, f"{path}.{unknown[0]}", f"unknown field (allowed: {', '.join(_POOL_FIELDS)})")
        for req in ("name", "type", "nodes", "acceleratorsPerNode"):
            if req not in raw:
                raise _fail(source, f"{path}.{req}", "is required")
        extra: dict[str, Any] = {}
        for key, attr in (("vendor", "vendor"), ("model", "model"), ("resource", "resource")):
            if key in raw:
                extra[attr] = str(raw[key])
        if "costPerHour" in raw:
            extra["cost_per_hour"] = float(raw["costPerHour"])
        quotas_raw = raw.get("quotas") or {}
        if not isinstance(quotas_raw, Mapping):
            raise _fail(source, f"{path}.quotas", "must be a mapping of tenant to quota")
        extra["quotas"] = {str(t): _quota(source, f"{path}.quotas.{t}", q) for t, q in quotas_raw.items()}
        pools.append(
            pool_decl(
                str(raw["name"]),
                str(raw["type"]),
                _int(source, f"{path}.nodes", raw["nodes"], 1),
                _int(source, f"{path}.acceleratorsPerNode", raw["acceleratorsPerNode"], 1),
                **extra,
            )
        )
    names = [p.name for p in pools]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise _fail(source, f"pools[{i}].name", f"duplicate pool name {n!r}")
    return SimCluster(str(data.get("name", Path(source).stem)), tuple(pools))


def load_cluster(path: str | Path) -> SimCluster:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise ClusterError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ClusterError(f"{p}: not valid YAML: {exc}") from exc
    return parse_cluster(data, str(p))


def check_types(cluster: SimCluster, table: ThroughputTable) -> None:
    """Every pool's worker type must have rates in the table."""
    known = set(table.worker_types())
    for i, p in enumerate(cluster.pools):
        if p.worker_type not in known:
            raise ClusterError(
                f"{cluster.name}: pools[{i}].type: unknown worker type {p.worker_type!r} "
                f"(known: {', '.join(sorted(known))})"
            )
