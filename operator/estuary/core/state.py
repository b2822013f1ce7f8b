"""What one scheduling cycle hands to the next: derived data, never a decision.

Why it exists: most of what a cycle needs does not change between two cycles: the free map of
1,000 nodes, the class of each pending job, each class's candidate pools. Rebuilding them every
cycle made a cycle's cost follow the cluster's and the queue's size. A `CycleState` keeps them; the
caller owns it and passes it to every `run_cycle` (`state=`), the core stays a function of its
inputs: with a fresh state, a carried one or none at all, the result is the same (the differential
tests check exactly this), only the time differs.

What it keeps, and when it lets go:
- the workspace (free maps, quota usage, running jobs per pool), brought up to date with each
  snapshot by the running jobs that started, ended or changed; rebuilt when pools, nodes or
  foreign usage changed (`Workspace.sync`);
- each pending job's class, by key, while the caller passes the very same (or an equal)
  `JobRequest`; classes are dropped with the workspace, since their candidate pools depend on it;
- nothing else: failures, verdicts and reservations live for one cycle only.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence
from itertools import compress
from operator import attrgetter, is_, not_

from estuary.core.attained import Ranker
from estuary.core.classes import ClassKey, JobClass, class_key
from estuary.core.queue import in_queue_order, queue_key
from estuary.core.workspace import Workspace
from estuary.model import JobRequest, PoolSpec, Snapshot

Queue = list[tuple[JobRequest, JobClass]]  # pending jobs in queue order, with their classes
_KEY = attrgetter("key")


def _pair_order(pair: tuple[JobRequest, JobClass]) -> tuple[int, int, float, str]:
    return queue_key(pair[0])


class CycleState:
    """Caller-owned memory of a scheduler (one per scheduling loop or simulation run)."""

    def __init__(self) -> None:
        self._workspace: Workspace | None = None
        self._pools: dict[str, PoolSpec] = {}
        self._classes: dict[ClassKey, JobClass] = {}
        self._jobs: dict[str, JobRequest] = {}  # the queue's jobs by key
        self._class_of_key: dict[str, JobClass] = {}
        self._queue: Queue = []  # the last cycle's queue, in queue order
        self._numbers: dict[tuple[object, ...], int] = {}
        self.ranker = Ranker()  # time-sharing: each pending job's level (core/attained.py)

    def workspace(self, snapshot: Snapshot) -> Workspace:
        """The working view of `snapshot`: the kept one brought up to date, or a new one."""
        if self._workspace is None or not self._workspace.sync(snapshot):
            self._workspace = Workspace(snapshot)
            self._pools = dict(snapshot.pools)
            self._forget_jobs()
        return self._workspace

    def forget(self) -> None:
        """Drop everything (after a cycle failed half-way, the workspace may be inconsistent)."""
        self._workspace = None
        self._forget_jobs()

    def _forget_jobs(self) -> None:
        self._classes.clear()
        self._jobs = {}
        self._class_of_key = {}
        self._queue = []
        self._numbers.clear()

    def queue(self, pending: Sequence[JobRequest]) -> Queue:
        """The pending jobs in queue order (queue.py), each with its class: the last cycle's queue
        with the jobs that left taken out and the new ones put in, or sorted anew when many
        changed or a key is listed twice (call `workspace` first: classes follow its pools)."""
        keys = list(map(_KEY, pending))
        listed = set(keys)
        same = list(map(is_, map(self._jobs.get, keys), pending))  # the very request as last time
        if len(listed) == len(keys) == len(self._jobs) and all(same):
            return self._queue  # nothing came, left or changed
        fresh = list(compress(pending, map(not_, same)))
        gone = self._jobs.keys() - listed
        if len(listed) != len(keys) or 4 * len(fresh) > len(keys):
            ordered = in_queue_order(pending)
            self._class_of_key = {job.key: self._class_for(job) for job in ordered}
            self._jobs = {job.key: job for job in ordered}
            self._queue = [(job, self._class_of_key[job.key]) for job in ordered]
        else:
            gone.update(job.key for job in fresh if job.key in self._jobs)
            for key in gone:  # a few: find each by bisection
                old = self._jobs.pop(key)
                del self._queue[bisect_left(self._queue, queue_key(old), key=_pair_order)]
            for job in fresh:
                cls = self._class_of_key[job.key] = self._class_for(job)
                insort(self._queue, (job, cls), key=_pair_order)
                self._jobs[job.key] = job
        queue = self._queue
        if len(self._classes) > 2 * len(self._jobs) + 1000:
            self._forget_classes()  # may forget the queue too: the next cycle sorts anew
        return queue

    def _class_for(self, job: JobRequest) -> JobClass:
        old = self._jobs.get(job.key)
        if old is not None and old == job:  # an equal request, rebuilt by the caller
            return self._class_of_key[job.key]
        return self._class_of(job)

    def _forget_classes(self) -> None:
        """Classes of jobs that left pile up: keep those in use (their numbers stay valid), or
        start over when the numbers pile up too."""
        self._classes = {cls.key: cls for _, cls in self._queue}
        if len(self._numbers) > 4 * len(self._classes) + 1000:
            self._forget_jobs()

    def _class_of(self, job: JobRequest) -> JobClass:
        key = class_key(job)
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = JobClass(key, job, self._pools, self._intern)
        return cls

    def _intern(self, key: tuple[object, ...]) -> int:
        return self._numbers.setdefault(key, len(self._numbers))
