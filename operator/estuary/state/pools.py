"""ComputePools as the core sees them, and what is wrong with each one (pure).

Why it exists: every pool is judged alone. A pool that does not parse (an empty selector
included: it would select every node), names a vendor without a profile, or has tolerations a
pod would refuse is left out of scheduling with a finding that its status reports; a pool that
selects no node, or only nodes another pool counts, says so; no pool's mistake changes another
pool's capacity.

Which pool a node counts in (the rule, also in docs/scheduling.md): a node whose labels match the
selectors of several pools (and which has each pool's resource) counts in the OLDEST of them, by
creationTimestamp and then by name. A pool created later can therefore never take nodes from a
pool already in use; both report the overlap in an `Overlap` condition. The core is told the
result through a label on its own copies of the nodes (`MEMBER_LABEL`, never written to the
cluster), which each pool's core selector names, so its rule (the first pool that selects a node)
and this one always agree.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from estuary.api.base import LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN
from estuary.api.computepool import ComputePool
from estuary.model import NodeInfo, PoolSpec
from estuary.state import codec

MEMBER_LABEL = "estuary.dev/counted-in-pool"  # on the core's copies of nodes only


@dataclass(frozen=True)
class PoolProblem:
    """Why a pool is left out of scheduling (its Ready condition says it)."""

    reason: str
    message: str


@dataclass
class PoolJudgement:
    """One pool as read this step: its core spec (None when left out), the nodes counted in it,
    and the nodes it shares with other pools."""

    name: str
    raw: dict[str, Any]
    spec: PoolSpec | None = None
    problem: PoolProblem | None = None
    selected: list[str] = field(default_factory=list)  # nodes its selector picks (with its resource)
    counted: list[str] = field(default_factory=list)  # of those, the ones that count in it
    shared: dict[str, list[str]] = field(default_factory=dict)  # other pool -> nodes both select


def _age_key(raw: Mapping[str, Any]) -> tuple[float, str]:
    created = codec.timestamp(raw["metadata"].get("creationTimestamp"))
    return (created if created is not None else 0.0, str(raw["metadata"]["name"]))


def parse_error(err: ValidationError) -> str:
    where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:3])
    return f"the pool cannot be used as written ({where}); fix it with kubectl edit cpool"


def toleration_problem(tolerations: list[Any]) -> str | None:
    """What the API server would refuse in the pool's tolerations (they go into every worker pod;
    the CRD refuses them too, this catches pools stored before it did)."""
    for i, t in enumerate(tolerations):
        where, key, value = f"spec.tolerations[{i}]", t.key or "", t.value or ""
        if key and not re.match(LABEL_KEY_PATTERN, key):
            return f"{where}.key: {key!r} is not a valid taint key"
        if value and not re.match(LABEL_VALUE_PATTERN, value):
            return f"{where}.value: {value!r} is not a valid taint value"
        if t.operator == "Exists" and value:
            return f"{where}.value: must be empty when operator is Exists"
        if t.operator != "Exists" and not key:
            return f"{where}.operator: must be Exists when key is empty"
    return None


def judge(raw: dict[str, Any]) -> PoolJudgement:
    """Parse one pool; a pool that cannot be used gets a problem, never an exception."""
    name = str(raw["metadata"]["name"])
    try:
        spec = codec.pool_spec(raw)
    except ValidationError as err:
        return PoolJudgement(name, raw, problem=PoolProblem("InvalidSpec", parse_error(err)))
    except ValueError as err:
        return PoolJudgement(
            name, raw, problem=PoolProblem("InvalidSpec", f"{err}; fix it with kubectl edit")
        )
    if spec is None:
        vendor = (raw.get("spec") or {}).get("vendor")
        message = (
            f"vendor {vendor!r} has no vendor profile and the pool names no resourceName; add a "
            "profile (ESTUARY_VENDOR_PROFILES) or set spec.resourceName"
        )
        return PoolJudgement(name, raw, problem=PoolProblem("UnknownVendor", message))
    problem = toleration_problem(list(ComputePool.model_validate(raw).spec.tolerations or []))
    if problem is not None:
        message = (
            f"{problem}; every worker pod placed on the pool would be refused: fix it with kubectl edit cpool"
        )
        return PoolJudgement(name, raw, problem=PoolProblem("InvalidSpec", message))
    return PoolJudgement(name, raw, spec=spec)


Labelled = dict[str, tuple[NodeInfo, str, NodeInfo]]  # node -> (as read, its pool, as the core sees it)


def assign(
    raw_pools: Mapping[str, dict[str, Any]], nodes: Mapping[str, NodeInfo], labelled: Labelled | None = None
) -> tuple[dict[str, PoolSpec], dict[str, NodeInfo], dict[str, PoolJudgement]]:
    """(the core's pools, the core's nodes, every pool's judgement): each node counted in at
    most one pool, by the rule of the module docstring. `labelled`, kept by the caller between
    calls, hands back the very node the core saw last time when neither the node nor its pool
    changed (so the core's kept view is not rebuilt: core/workspace.py `sync`)."""
    judged = {name: judge(raw) for name, raw in raw_pools.items()}
    usable = sorted((j for j in judged.values() if j.spec is not None), key=lambda j: _age_key(j.raw))
    owner: dict[str, str] = {}
    for name in sorted(nodes):
        selecting = [j for j in usable if j.spec is not None and j.spec.selects(nodes[name])]
        for j in selecting:
            j.selected.append(name)
            for other in selecting:
                if other is not j:
                    j.shared.setdefault(other.name, []).append(name)
        if selecting:
            owner[name] = selecting[0].name
            selecting[0].counted.append(name)
    core_pools = {
        j.name: dataclasses.replace(j.spec, node_selector={MEMBER_LABEL: j.name})
        for j in usable
        if j.spec is not None
    }
    memo: Labelled = {} if labelled is None else labelled
    core_nodes = {
        name: _member(node, owner[name], memo) if name in owner else node for name, node in nodes.items()
    }
    for gone in memo.keys() - owner.keys():
        del memo[gone]
    return core_pools, core_nodes, judged


def _member(node: NodeInfo, pool: str, memo: Labelled) -> NodeInfo:
    """The node labelled as a member of `pool`: the one made last time, when it is the same."""
    kept = memo.get(node.name)
    if kept is not None and kept[0] is node and kept[1] == pool:
        return kept[2]
    labelled = dataclasses.replace(node, labels={**node.labels, MEMBER_LABEL: pool})
    memo[node.name] = (node, pool, labelled)
    return labelled
