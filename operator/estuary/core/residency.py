"""Data residency: whether a job's data may be processed in this cluster at all.

Why it exists: Hong Kong and mainland rules on cross-border data decide where a job may run. The
rule is checked before anything else and never bends: a job whose `residency` is neither "any" nor
this cluster's jurisdiction is never admitted here (Reason.RESIDENCY). A cluster without a
configured jurisdiction checks nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from estuary.core.candidates import Candidate
from estuary.model import JobRequest, Reason, TypeVerdict


def forbids(job: JobRequest, jurisdiction: str | None) -> str | None:
    """Why the job may not run in this cluster, or None if it may."""
    if jurisdiction is None or job.residency in ("any", jurisdiction):
        return None
    return f"data must stay in {job.residency}; this cluster is in {jurisdiction}"


def verdicts(cands: Iterable[Candidate], message: str) -> tuple[TypeVerdict, ...]:
    """One RESIDENCY verdict per pool the job would otherwise consider."""
    return tuple(
        TypeVerdict(c.pool.name, c.pool.vendor, c.pool.model, False, Reason.RESIDENCY, message, c.factor)
        for c in cands
    )


def never_here(
    job: JobRequest, cands: Sequence[Candidate], jurisdiction: str | None
) -> tuple[Reason, str, tuple[TypeVerdict, ...]] | None:
    """Why no job like this one may run in this cluster (RESIDENCY, or NO_POOL when no pool offers
    an accepted type), as a cycle's waiting entry; None when some pool may take it."""
    forbidden = forbids(job, jurisdiction)
    if forbidden is not None:
        return (Reason.RESIDENCY, forbidden, verdicts(cands, forbidden))
    if not cands:
        types = ", ".join(f"{a.vendor}/{a.model or 'any'}" for a in job.accepted) or "none"
        return (Reason.NO_POOL, f"no ComputePool offers an accepted type ({types})", ())
    return None
