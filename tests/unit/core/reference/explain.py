"""`estuary explain`: how a job fares on each pool it accepts, right now, with the numbers.

Why it exists: "why is my job pending?" is the question users of every anchor project ask most.
This answers it for one job outside a cycle, per accepted type and matching pool, including the
pools where it fits, with the same checks a cycle runs (evaluate.py). It sees the snapshot as is:
not the queue ahead of the job, nor this cycle's reservations (the cycle's `Waiting` has those).
"""

from __future__ import annotations

from estuary.model import JobRequest, Snapshot, TypeVerdict

from . import residency
from .candidates import candidates
from .evaluate import evaluate
from .workspace import Workspace


def explain(snapshot: Snapshot, job: JobRequest, now: float) -> tuple[TypeVerdict, ...]:
    """One verdict per pool matching an accepted type, in the user's order of preference.

    `now` is the caller's clock; verdicts today do not depend on it (waiting time matters only
    against the queue, which `run_cycle` sees). Empty when no pool offers an accepted type.
    """
    del now
    cands = candidates(job, snapshot.pools)
    forbidden = residency.forbids(job, snapshot.jurisdiction)
    if forbidden is not None:
        return residency.verdicts(cands, forbidden)
    ws = Workspace(snapshot)
    return tuple(evaluate(ws, job, c, cache=None).verdict() for c in cands)
