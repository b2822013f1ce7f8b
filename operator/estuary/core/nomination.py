"""Nominated preemptors go first: the room freed for a preemptor is still there when it is free.

Why it exists: a preemptor holds the room its victims will leave only for the rest of the cycle
that chose them. Victims take a while to stop; once they are gone, the next cycle sees free room
and would hand it, in queue order, to whichever job comes first: a requeued higher-priority
borrower would take back the very room its tenant was evicted from, be evicted again by the same
reclaimer, and so on forever (a livelock without any crash). So a job that chose victims, or
waits for terminating ones, in an earlier cycle (`Snapshot.nominated`, kept by the caller from
the last cycle's `WaitingForPreemption` verdicts) is decided before every other pending job,
in queue order among themselves. It starts as soon as its victims are gone, or holds the room
again for the rest of this cycle while they terminate; when preemption can no longer help it,
it waits like any job and the caller drops its nomination. Its hold counts against its tenant's
quota, so the reclaimer's idle nominal is not lent to others while it waits (quota.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Set

from estuary.core.classes import JobClass
from estuary.core.verdicts import Entry
from estuary.model import JobRequest

Firsts = dict[str, Entry | None]  # nominated jobs, decided first: why each waits (None: admitted)


def decide_first(
    queue: Iterable[tuple[JobRequest, JobClass]],
    nominated: Set[str],
    decide: Callable[[JobRequest, JobClass], Entry | None],
) -> Firsts:
    """Decide the nominated pending jobs, in queue order; by key what each got (None: admitted)."""
    if not nominated:
        return {}
    return {job.key: decide(job, cls) for job, cls in queue if job.key in nominated}
