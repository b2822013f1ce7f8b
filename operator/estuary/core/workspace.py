"""The mutable view of the cluster that cycles (and `explain`) work on.

Why it exists: the snapshot is frozen; a cycle needs to "assume" its own admissions so later jobs
see them, and preemption needs cheap what-ifs ("if these jobs were gone, would it fit?"). This
module builds the per-pool free maps and the quota book from a snapshot once, and then keeps them
in step with later snapshots by applying only what changed (`sync`: running jobs that started,
ended or changed), so a cycle's setup costs what changed, not the size of the cluster. Moves:
- `assume` (a job now holds resources) and `reserve` (the starvation guard hides nodes) are
  journaled, and `rollback` undoes them at the end of a cycle: the view then mirrors the snapshot
  again, exactly as a fresh build would;
- `release`/`restore` (like Kueue's SimulateWorkloadRemoval: take running jobs out, put them back)
  are always balanced inside one what-if.

Nodes belong to the first pool, by name, whose `selects(node)` is true; other nodes are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import NamedTuple

from estuary.core.capacity import PoolState
from estuary.core.placement import Eligible
from estuary.core.quota import QuotaBook, job_accelerators
from estuary.model import JobRequest, NodeInfo, PoolSpec, Reason, Resources, RunningJob, Snapshot
from estuary.model.cluster import tolerated


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


def _same(new: Mapping[str, object], old: Mapping[str, object]) -> bool:
    return new is old or new == old


class _Assumed(NamedTuple):
    job: JobRequest
    pool: str
    nodes: tuple[str, ...]
    hold: bool


class _Group:
    """Running jobs of one kind (one tenant in one pool, ...), listed by key on demand."""

    __slots__ = ("_jobs", "_listed", "_lowest")

    def __init__(self) -> None:
        self._jobs: dict[str, RunningJob] = {}
        self._listed: list[RunningJob] | None = None
        self._lowest = 0

    def put(self, job: RunningJob) -> None:
        self._jobs[job.job.key] = job
        self._listed = None

    def drop(self, job: RunningJob) -> None:
        del self._jobs[job.job.key]
        self._listed = None

    def by_key(self) -> list[RunningJob]:
        if self._listed is None:
            self._listed = [self._jobs[key] for key in sorted(self._jobs)]
            self._lowest = min((job.job.priority for job in self._listed), default=0)
        return self._listed

    def below(self, priority: int) -> list[RunningJob]:
        """The jobs of priority lower than `priority`, by key."""
        jobs = self.by_key()
        return [] if self._lowest >= priority else [job for job in jobs if job.job.priority < priority]


class Workspace:
    def __init__(self, snapshot: Snapshot) -> None:
        self._inputs = (snapshot.pools, snapshot.nodes, snapshot.foreign_usage)
        self.node_pool = assign_nodes(snapshot.pools, snapshot.nodes)
        self.running: dict[str, RunningJob] = dict(snapshot.running)
        load: dict[str, Resources] = {}
        for job in self.running.values():
            for node in job.assignment.nodes:
                load[node] = load.get(node, Resources()) + job.job.per_worker
        self.load = load  # Estuary's running workers per node
        members: dict[str, list[NodeInfo]] = {name: [] for name in snapshot.pools}
        for node, pool in self.node_pool.items():
            members[pool].append(snapshot.nodes[node])
        self.pools: dict[str, PoolState] = {
            name: PoolState(snapshot.pools[name], members[name], snapshot.foreign_usage, load)
            for name in sorted(snapshot.pools)
        }
        self.quota = QuotaBook(
            snapshot.pools,
            {name: healthy_capacity(p) for name, p in self.pools.items()},
            self.running.values(),
        )
        # Both depend on pools and nodes only, so they live as long as this view (see `sync`).
        self._eligible: dict[tuple[object, ...], Eligible] = {}
        self.static_memo: dict[tuple[object, ...], tuple[Reason, str] | None] = {}  # see evaluate.py
        # For preemption: running jobs by (pool, tenant), and terminating ones by pool.
        self._of: dict[tuple[str, str], _Group] = {}
        self._leaving: dict[str, _Group] = {}
        for job in self.running.values():
            self._index(job, add=True)
        self._journal: list[_Assumed | str] = []

    # -- keeping in step with snapshots ---------------------------------------------------------
    def sync(self, snapshot: Snapshot) -> bool:
        """Make this view the one `snapshot` would build, by applying the running jobs that
        changed. False (nothing done) when pools, nodes or foreign usage changed: build anew."""
        pools, nodes, foreign = self._inputs
        if not (
            _same(snapshot.pools, pools)
            and _same(snapshot.nodes, nodes)
            and _same(snapshot.foreign_usage, foreign)
        ):
            return False
        self._inputs = (snapshot.pools, snapshot.nodes, snapshot.foreign_usage)
        now = snapshot.running
        for key in sorted(self.running.keys() - now.keys()):
            self._stop(self.running[key])
        for key, job in now.items():
            old = self.running.get(key)
            if old is job:
                continue
            if old is not None:
                if old == job:
                    self.running[key] = job
                    continue
                self._stop(old)
            self._start(job)
        return True

    def _start(self, job: RunningJob) -> None:
        self.running[job.job.key] = job
        self._move(job, -1)
        self._index(job, add=True)
        for node in job.assignment.nodes:
            self.load[node] = self.load.get(node, Resources()) + job.job.per_worker

    def _stop(self, job: RunningJob) -> None:
        del self.running[job.job.key]
        self._move(job, +1)
        self._index(job, add=False)
        for node in job.assignment.nodes:
            self.load[node] = self.load[node] - job.job.per_worker

    def _index(self, job: RunningJob, add: bool) -> None:
        pool = job.assignment.pool
        groups = [self._of.setdefault((pool, job.job.tenant), _Group())]
        if job.terminating:
            groups.append(self._leaving.setdefault(pool, _Group()))
        for group in groups:
            group.put(job) if add else group.drop(job)

    # -- reading --------------------------------------------------------------------------------
    def running_of(self, pool: str, tenant: str) -> list[RunningJob]:
        """A tenant's running jobs assigned to a pool, by key."""
        group = self._of.get((pool, tenant))
        return [] if group is None else group.by_key()

    def running_below(self, pool: str, tenant: str, priority: int) -> list[RunningJob]:
        """A tenant's running jobs in a pool whose priority is lower than `priority`, by key."""
        group = self._of.get((pool, tenant))
        return [] if group is None else group.below(priority)

    def terminating_in(self, pool: str) -> list[RunningJob]:
        """The terminating jobs assigned to a pool, by key."""
        group = self._leaving.get(pool)
        return [] if group is None else group.by_key()

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

    # -- what-ifs -------------------------------------------------------------------------------
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

    # -- a cycle's own moves, undone by `rollback` ----------------------------------------------
    def assume(self, job: JobRequest, pool: str, nodes: tuple[str, ...], hold: bool = False) -> None:
        """The job now holds one worker on each listed node and its accelerators in the quota.
        `hold`: it waits for victims to leave first (see `QuotaBook.hold`)."""
        self.pools[pool].take(nodes, job.per_worker)
        amount = job.per_worker.accelerators * len(nodes)
        if hold:
            self.quota.hold(pool, job.tenant, amount)
        else:
            self.quota.add(pool, job.tenant, amount)
        self._journal.append(_Assumed(job, pool, nodes, hold))

    def reserve(self, pool: str, nodes: Iterable[str], holder: str) -> None:
        """Hide nodes of a pool from every later placement this cycle (the starvation guard)."""
        self.pools[pool].reserve(nodes, holder)
        self._journal.append(pool)

    def rollback(self) -> None:
        """Undo every `assume` and `reserve` since the last rollback, latest first."""
        for entry in reversed(self._journal):
            if isinstance(entry, str):
                self.pools[entry].unreserve()
                continue
            self.pools[entry.pool].give(entry.nodes, entry.job.per_worker)
            amount = entry.job.per_worker.accelerators * len(entry.nodes)
            if entry.hold:
                self.quota.unhold(entry.pool, entry.job.tenant, amount)
            else:
                self.quota.add(entry.pool, entry.job.tenant, -amount)
        self._journal.clear()
