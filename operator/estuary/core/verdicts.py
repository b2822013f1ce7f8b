"""A waiting job's verdict: made of each pool's failure, and handed on while it still holds.

Why it exists: in a queue of 10,000 jobs most jobs wait, and most of them for a reason a job of
their class (classes.py) was already given this cycle. This module says what a verdict is (reason,
message and one `TypeVerdict` per pool tried), how it is assembled from the pools' failures, and
what it takes to still hold; cycle.py decides when to ask.

When a class's verdict still holds. A waiting job's verdict reads: static checks of each pool
(fixed for the view's life), node-level failures (cached per pool and shape for the whole cycle:
free capacity only shrinks within a cycle, so a shape that did not fit does not fit later), the
preemption memo (also per cycle), the quota books of its pools, the order of its pools under
"any_free" (follows free capacity), and the job's age (whether the starvation guard is tried). So
a verdict is reused while the quota version of each of the class's pools with quotas and the pool
ranking's version are unchanged (both only grow, so their sum is the `stamp`), and, for a job old
enough to reserve, the verdict already tried to. Between two moves of the cycle (its `epoch`)
nothing can change at all. Anything else decides the job again.
"""

from __future__ import annotations

from dataclasses import dataclass

from estuary.core.candidates import Candidate
from estuary.core.evaluate import Failure
from estuary.model import Reason, TypeVerdict, Waiting

# Closest to running first: the reason a waiting job shows when its pools disagree.
_RANK = {
    Reason.PRIORITY: 0,
    Reason.FRAGMENTED: 1,
    Reason.CAPACITY: 2,
    Reason.UNHEALTHY: 3,
    Reason.QUOTA: 4,
    Reason.SELECTOR: 5,
    Reason.NEVER_FITS: 6,
}
_PREEMPTION_HELPS = frozenset(
    {Reason.CAPACITY, Reason.FRAGMENTED, Reason.UNHEALTHY, Reason.QUOTA, Reason.PRIORITY}
)
NEVER_HERE = frozenset({Reason.RESIDENCY, Reason.NO_POOL, Reason.SELECTOR, Reason.NEVER_FITS})

Entry = tuple[Reason, str, tuple[TypeVerdict, ...]]  # a Waiting without key and position
Tried = list[tuple[Candidate, Failure]]  # each allowed pool's failure, in policy order
Decided = dict[str, Waiting]  # waiting jobs by key, in queue order


@dataclass(frozen=True, slots=True)
class Verdict:
    """A class's latest verdict in this cycle, and what it takes to still hold."""

    entry: Entry
    stamp: int  # the class's quota and pool-ranking versions when made
    tried_reserving: bool
    epoch: int  # the cycle's epoch when made: while it is unchanged, nothing has moved
    always: bool = False  # RESIDENCY or NO_POOL: holds for the whole cycle


@dataclass(frozen=True, slots=True)
class Assembled:
    """A class's waiting verdict, made of each allowed pool's failure in policy order."""

    tried: tuple[tuple[Candidate, Failure], ...]
    reason: Reason  # of the pool closest to running
    message: str
    verdicts: tuple[TypeVerdict, ...]  # one per pool tried
    helps: tuple[Candidate, ...]  # the pools where preemption could make room
    helps_names: tuple[str, ...]


def _closest(tried: tuple[Candidate, Failure]) -> int:
    return _RANK.get(tried[1][0], 9)


def assemble(tried: Tried, last: Assembled | None) -> Assembled:
    """Reason and message of the pool closest to running, a verdict per pool, and the pools where
    preemption could help. `last`, the class's previous assembly, is returned as it is if its
    failures recur, and each of its pool verdicts is reused where that pool's failure recurs."""
    key = tuple(tried)
    if last is not None and last.tried == key:
        return last
    reason, message = min(key, key=_closest)[1]
    verdicts = []
    for index, (cand, failure) in enumerate(key):
        if last is not None and index < len(last.tried) and last.tried[index] == (cand, failure):
            verdicts.append(last.verdicts[index])  # this pool's verdict did not change
        else:
            pool = cand.pool
            verdicts.append(TypeVerdict(pool.name, pool.vendor, pool.model, False, *failure, cand.factor))
    helps = tuple(c for c, (why, _) in key if why in _PREEMPTION_HELPS)
    return Assembled(key, reason, message, tuple(verdicts), helps, tuple(c.pool.name for c in helps))
