"""The pass over the queue in queue order: each job its class's verdict, whole stretches at once.

Why it exists: in a queue of 10,000 jobs nearly every job waits with the verdict its class got
earlier in the same cycle. Looking at each job in Python was most of a steady cycle's cost (and of
the simulator's replays, whose overloaded queues hold thousands of jobs). This pass decides, in
queue order, only the jobs that need it, and hands every other job its class's verdict in bulk.

Which jobs need deciding (cycle.py `decide`): a class's first job, and any job of a class that has
no verdict that holds (its jobs are being admitted, or preempt). Every other job takes its
class's verdict in C loops (`map`, `compress`) over the stretch between two classes' first jobs:
no job among them could change anything. A verdict made by a class's job also holds for its later
jobs by age: jobs of one class share a priority, so they come in arrival order, and the oldest
tries the starvation guard first. Once the cycle's validity counter moves (verdicts.py: a quota
book with quotas, the order of pools under "any_free", a new strict-FIFO blocker) every verdict
must be checked again, and the rest of the queue goes through the per-job loop, as does the whole
queue when some jobs are nominated (decided first, out of queue order, which breaks the argument
on age). (Re-checking each class and going on in bulk was measured slower: under "any_free" the
counter moves at most admissions.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import compress, pairwise
from operator import attrgetter, itemgetter
from typing import Protocol

from estuary.core.classes import JobClass
from estuary.core.nomination import Firsts
from estuary.core.state import Queue
from estuary.core.verdicts import Verdict
from estuary.core.waiting import Entry, WaitingList
from estuary.model import JobRequest

_JOB, _CLASS, _KEY = itemgetter(0), itemgetter(1), attrgetter("key")


class Cycle(Protocol):
    """What the pass reads of the cycle (cycle.py `_Cycle`)."""

    @property
    def verdicts(self) -> Mapping[JobClass, Verdict]: ...
    @property
    def validity(self) -> int: ...
    @property
    def now(self) -> float: ...
    @property
    def reserve_after(self) -> float: ...
    def decide(self, job: JobRequest, cls: JobClass) -> Entry | None: ...


def in_queue_order(cycle: Cycle, queue: Queue, first: Firsts) -> WaitingList:
    """Steps 3 and 4 of a cycle in one pass (cycle.py): why each job waits, in queue order."""
    keys: list[str] = []
    entries: list[Entry] = []
    if first:
        _each(cycle, queue, first, keys, entries)
        return WaitingList(keys, entries)
    classes = list(map(_CLASS, queue))
    # Each class's first index (of a key written twice, the last value stays: the smallest index).
    starts = sorted(dict(zip(reversed(classes), range(len(classes) - 1, -1, -1), strict=True)).values())
    starts.append(len(queue))
    stretch = _Stretch(cycle, keys, entries)
    held, unheld = stretch.held, stretch.unheld

    def bulk(start: int, stop: int) -> None:  # each job its class's verdict, in C loops
        if start < stop:
            keys.extend(map(_KEY, map(_JOB, queue[start:stop])))
            entries.extend(map(held.__getitem__, classes[start:stop]))

    for head, end in pairwise(starts):
        # The class's first job, then the stretch's jobs of classes without a verdict that holds
        # one by one (a class's jobs being admitted, or preempting), the others in bulk.
        alone = [head]
        while alone:
            position = alone.pop()
            stretch.one(*queue[position])
            if cycle.validity != stretch.validity:  # from here on, each job decided as it comes
                _each(cycle, queue[position + 1 :], first, keys, entries)
                return WaitingList(keys, entries)
            if position == head and unheld:
                unsettled = map(unheld.__contains__, classes[head + 1 : end])
                alone = list(compress(range(head + 1, end), unsettled))
                alone.reverse()
            bulk(position + 1, alone[-1] if alone else end)
    return WaitingList(keys, entries)


class _Stretch:
    """The jobs looked at one by one, and which classes seen so far have a verdict that holds."""

    def __init__(self, cycle: Cycle, keys: list[str], entries: list[Entry]) -> None:
        self.cycle = cycle
        self.validity = cycle.validity
        self.held: dict[JobClass, Entry] = {}  # classes seen whose verdict holds: its entry
        self.unheld: set[JobClass] = set()  # classes seen without one (their jobs were admitted)
        self._add_key, self._add_entry = keys.append, entries.append

    def one(self, job: JobRequest, cls: JobClass) -> None:
        cycle = self.cycle
        verdict = cycle.verdicts.get(cls)
        if (
            verdict is not None
            and verdict.valid == self.validity
            and (verdict.tried_reserving or cycle.now - job.arrival < cycle.reserve_after)
        ):
            entry: Entry | None = verdict.entry
        else:
            entry = cycle.decide(job, cls)
            verdict = cycle.verdicts.get(cls)
            if verdict is not None and verdict.valid == cycle.validity:
                self.held[cls] = verdict.entry
                self.unheld.discard(cls)
            else:
                self.unheld.add(cls)
        if entry is not None:  # else admitted
            self._add_key(job.key)
            self._add_entry(entry)


def _each(
    cycle: Cycle,
    queue: Iterable[tuple[JobRequest, JobClass]],
    first: Firsts,
    keys: list[str],
    entries: list[Entry],
) -> None:
    """The per-job loop: each job its class's verdict while it holds, else decided."""
    add_key, add_entry = keys.append, entries.append
    verdicts, now, reserve_after = cycle.verdicts, cycle.now, cycle.reserve_after
    for job, cls in queue:
        verdict = verdicts.get(cls)
        if first and job.key in first:
            entry = first[job.key]
        elif (
            verdict is not None
            and verdict.valid == cycle.validity  # nothing it read moved since (verdicts.py)
            and (verdict.tried_reserving or now - job.arrival < reserve_after)
        ):
            entry = verdict.entry
        else:
            entry = cycle.decide(job, cls)
        if entry is not None:  # else admitted
            add_key(job.key)
            add_entry(entry)
