"""The order in which a cycle considers pending jobs.

Why it exists: ordering is where priority, arrival and fairness between tenants meet, and it must
be deterministic (no dict or set order, no randomness), so it is one function.

Queue order: priority descending, then level (time-sharing's queue by attained service; 0 for
every job under other policies), then arrival, then key; a key listed twice counts once.
Processing order, with fair sharing, within each priority level:
  1. jobs within their tenant's nominal quota in some allowed pool, in queue order (each is
     re-checked when its turn comes; one that now needs to borrow joins the borrowers);
  2. then borrowers: repeatedly the next job of the tenant with the lowest weighted borrowed share
     (quota.py), ties by the job's arrival and key. Shares are re-read after each decision, so a
     tenant that just borrowed more steps back.
Without fair sharing, processing order is the queue order. So it is when no pool has quotas (the
cycle checks): every job that some pool offers is then within nominal and every share is 0, and
the only jobs fair sharing would move (to the end of their level) are those no pool offers, whose
NO_POOL or RESIDENCY verdict depends on nothing that the order changes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import groupby
from operator import attrgetter

from estuary.model import JobRequest


def queue_key(job: JobRequest) -> tuple[int, int, float, str]:
    return (-job.priority, job.level, job.arrival, job.key)


def in_queue_order(pending: Iterable[JobRequest]) -> list[JobRequest]:
    # Two stable sorts on attributes (no Python key function per job): by arrival and key, then
    # by priority descending; the same order as sorting by `queue_key`, ties kept as given.
    ordered = sorted(pending, key=attrgetter("level", "arrival", "key"))
    ordered.sort(key=attrgetter("priority"), reverse=True)
    if len(set(map(attrgetter("key"), ordered))) == len(ordered):
        return ordered
    unique: list[JobRequest] = []
    seen: set[str] = set()
    for job in ordered:
        if job.key not in seen:
            seen.add(job.key)
            unique.append(job)
    return unique


def _push(borrowers: dict[str, list[tuple[int, float, str, JobRequest]]], job: JobRequest) -> None:
    heapq.heappush(borrowers.setdefault(job.tenant, []), (job.level, job.arrival, job.key, job))


def processing_order(
    ordered: Sequence[JobRequest],
    fair: bool,
    within_nominal: Callable[[JobRequest], bool],
    share: Callable[[str], float],
) -> Iterator[JobRequest]:
    """Lazily yield jobs; the caller decides each before asking for the next (shares change)."""
    if not fair:
        yield from ordered
        return
    for _, level in groupby(ordered, key=lambda j: j.priority):
        jobs = list(level)
        first = [j for j in jobs if within_nominal(j)]
        firsts = {j.key for j in first}
        borrowers: dict[str, list[tuple[int, float, str, JobRequest]]] = {}
        for job in jobs:
            if job.key not in firsts:
                _push(borrowers, job)
        for job in first:
            if within_nominal(job):
                yield job
            else:
                _push(borrowers, job)
        tenants = [(share(t), *q[0][:3], t) for t, q in sorted(borrowers.items())]
        heapq.heapify(tenants)
        while tenants:
            tenant = heapq.heappop(tenants)[4]
            mine = borrowers[tenant]
            yield heapq.heappop(mine)[3]
            if mine:
                heapq.heappush(tenants, (share(tenant), *mine[0][:3], tenant))
