"""The mutable view of the cluster that one cycle (or one `explain`) works on.

Why it exists: the snapshot is frozen; a cycle needs to "assume" its own admissions so later jobs
see them, and preemption needs cheap what-ifs ("if these jobs were gone, would it fit?"). This
module builds the per-pool free maps and the quota book once from a snapshot, and offers the two
moves on them: `assume` (a job now holds resources) and `release`/`restore` (like Kueue's
SimulateWorkloadRemoval: take running jobs out, then put them back).

Nodes belong to the first pool, by name, whose `selects(node)` is true; other nodes are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from estuary.model import JobRequest, NodeInfo, PoolSpec, Reason, Resources, RunningJob, Snapshot
from estuary.model.cluster import tolerated

from .capacity import PoolState
from .placement import Eligible
from .quota import QuotaBook, job_accelerators


def assign_nodes(pools: Mapping[str, PoolSpec], nodes: Mapping[str, NodeInfo]) -> dict[str, str]:
    """node name -> pool name: the first pool by name that selects the node."""
    ordered = [pools[name] for name in sorted(pools)]
    owner: dict[str, str] = {}
    for name in sorted(nodes):
        for pool in ordered:
            if pool.selects(nodes[name]):
                owner[name] = pool.name
                break
    return owner


def healthy_capacity(pool: PoolState) -> int:
    """Accelerators on ready nodes, less the unhealthy ones."""
    return sum(
        max(0, pool.allocatable[name].accelerators - node.unhealthy_accelerators)
        for name, node in pool.members.items()
        if node.ready
    )


class Workspace:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.node_pool = assign_nodes(snapshot.pools, snapshot.nodes)
        self.running: list[RunningJob] = [snapshot.running[k] for k in sorted(snapshot.running)]
        load: dict[str, Resources] = {}
        for job in self.running:
            for node in job.assignment.nodes:
                load[node] = load.get(node, Resources()) + job.job.per_worker
        self.load: Mapping[str, Resources] = load  # Estuary's running workers per node
        members: dict[str, list[NodeInfo]] = {name: [] for name in snapshot.pools}
        for node, pool in self.node_pool.items():
            members[pool].append(snapshot.nodes[node])
        self.pools: dict[str, PoolState] = {
            name: PoolState(snapshot.pools[name], members[name], snapshot.foreign_usage, load)
            for name in sorted(snapshot.pools)
        }
        self.quota = QuotaBook(
            snapshot.pools, {name: healthy_capacity(p) for name, p in self.pools.items()}, self.running
        )
        self._eligible: dict[tuple[object, ...], Eligible] = {}
        self.static_memo: dict[tuple[object, ...], tuple[Reason, str] | None] = {}  # see evaluate.py
        self._running_in: dict[str, list[RunningJob]] = {}
        for job in self.running:
            self._running_in.setdefault(job.assignment.pool, []).append(job)

    def running_in(self, pool: str) -> list[RunningJob]:
        """Running jobs assigned to a pool, by key."""
        return self._running_in.get(pool, [])

    def eligible(self, pool: str, job: JobRequest) -> Eligible:
        """Nodes of the pool whose taints the pool's and job's tolerations cover and whose labels
        match the job's node selector (None: all of them)."""
        selector = tuple(sorted(job.node_selector.items()))
        key = (pool, job.tolerations, selector)
        if key not in self._eligible:
            state = self.pools[pool]
            tolerations = state.spec.tolerations + job.tolerations
            ok = frozenset(
                name
                for name, node in state.members.items()
                if tolerated(node.taints, tolerations) and all(node.labels.get(k) == v for k, v in selector)
            )
            self._eligible[key] = None if len(ok) == len(state.members) else ok
        return self._eligible[key]

    def _move(self, job: RunningJob, sign: int) -> None:
        per_worker = job.job.per_worker
        for node in job.assignment.nodes:
            pool = self.node_pool.get(node)
            if pool is not None:
                if sign > 0:
                    self.pools[pool].give((node,), per_worker)
                else:
                    self.pools[pool].take((node,), per_worker)
        self.quota.add(job.assignment.pool, job.job.tenant, -sign * job_accelerators(job))

    def release(self, jobs: Iterable[RunningJob]) -> None:
        """What-if: these running jobs are gone (their nodes and quota free up)."""
        for job in jobs:
            self._move(job, +1)

    def restore(self, jobs: Iterable[RunningJob]) -> None:
        """Undo `release`."""
        for job in jobs:
            self._move(job, -1)

    @contextmanager
    def without(self, jobs: list[RunningJob]) -> Iterator[None]:
        self.release(jobs)
        try:
            yield
        finally:
            self.restore(jobs)

    def assume(self, job: JobRequest, pool: str, nodes: tuple[str, ...], hold: bool = False) -> None:
        """The job now holds one worker on each listed node and its accelerators in the quota.
        `hold`: it waits for victims to leave first (see `QuotaBook.hold`)."""
        self.pools[pool].take(nodes, job.per_worker)
        amount = job.per_worker.accelerators * len(nodes)
        if hold:
            self.quota.hold(pool, job.tenant, amount)
        else:
            self.quota.add(pool, job.tenant, amount)
