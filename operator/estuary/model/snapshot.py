"""The cluster at one instant: pools, nodes, what other pods use, and the jobs Estuary runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from estuary.model.cluster import NodeInfo, PoolSpec
from estuary.model.jobs import RunningJob


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Input of one scheduling cycle.

    foreign_usage: per node, resources (Kubernetes names, CPU in millicores, memory in bytes)
    used by pods Estuary does not own. Estuary's own usage is derived from `running`, so jobs that
    are admitted but whose pods do not exist yet are already counted (no double booking).
    jurisdiction: where this cluster is, for data residency (None: not configured, no limit).
    nominated: keys of pending jobs that chose victims (or awaited terminating ones) in an earlier
    cycle and have not started yet (the shell reads them from the status reason
    `WaitingForPreemption`). The cycle decides them before every other pending job, so the room
    freed for a preemptor is still there when its victims are gone: the preemptor's hold lasts
    until it starts or preemption can no longer help it, not one cycle.
    """

    pools: Mapping[str, PoolSpec]
    nodes: Mapping[str, NodeInfo]
    running: Mapping[str, RunningJob] = field(default_factory=dict)
    foreign_usage: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    jurisdiction: str | None = None
    nominated: frozenset[str] = frozenset()
