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

from collections.abc import Mapping, Sequence

from estuary.core.classes import ClassKey, JobClass, class_key
from estuary.core.workspace import Workspace
from estuary.model import JobRequest, PoolSpec, Snapshot, Waiting


class CycleState:
    """Caller-owned memory of a scheduler (one per scheduling loop or simulation run)."""

    def __init__(self) -> None:
        self._workspace: Workspace | None = None
        self._pools: dict[str, PoolSpec] = {}
        self._classes: dict[ClassKey, JobClass] = {}
        self._jobs: dict[str, tuple[JobRequest, JobClass]] = {}  # key -> (job as last seen, class)
        self._numbers: dict[tuple[object, ...], int] = {}
        self.last_waiting: Mapping[str, Waiting] = {}  # the last cycle's, reused where unchanged

    def workspace(self, snapshot: Snapshot) -> Workspace:
        """The working view of `snapshot`: the kept one brought up to date, or a new one."""
        if self._workspace is None or not self._workspace.sync(snapshot):
            self._workspace = Workspace(snapshot)
            self._pools = dict(snapshot.pools)
            self._classes.clear()
            self._jobs.clear()
            self._numbers.clear()
        return self._workspace

    def forget(self) -> None:
        """Drop everything (after a cycle failed half-way, the workspace may be inconsistent)."""
        self._workspace = None
        self._classes.clear()
        self._jobs.clear()
        self._numbers.clear()
        self.last_waiting = {}

    def classes(self, jobs: Sequence[JobRequest]) -> list[JobClass]:
        """Each job's class, in the same order (call `workspace` first: classes follow its pools)."""
        known = self._jobs
        found: list[JobClass] = []
        for job in jobs:
            entry = known.get(job.key)
            if entry is None or entry[0] is not job:
                cls = entry[1] if entry is not None and entry[0] == job else self._class_of(job)
                entry = known[job.key] = (job, cls)
            found.append(entry[1])
        if len(known) > 2 * len(found) + 1000:  # forget jobs that left the queue
            self._forget_others(jobs, found)
        return found

    def _forget_others(self, jobs: Sequence[JobRequest], classes: list[JobClass]) -> None:
        if len(self._numbers) > 4 * len(set(classes)) + 1000:
            self._classes.clear()  # numbers of gone classes pile up: start over
            self._jobs.clear()
            self._numbers.clear()
            return
        self._jobs = {job.key: (job, cls) for job, cls in zip(jobs, classes, strict=True)}
        self._classes = {cls.key: cls for cls in classes}

    def _class_of(self, job: JobRequest) -> JobClass:
        key = class_key(job)
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = JobClass(key, job, self._pools, self._intern)
        return cls

    def _intern(self, key: tuple[object, ...]) -> int:
        return self._numbers.setdefault(key, len(self._numbers))
