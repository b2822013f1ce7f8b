"""Data residency: whether a job's data may be processed in this cluster at all.

Why it exists: Hong Kong and mainland rules on cross-border data decide where a job may run. The
rule is checked before anything else and never bends: a job whose `residency` is neither "any" nor
this cluster's jurisdiction is never admitted here (Reason.RESIDENCY). A cluster without a
configured jurisdiction checks nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from estuary.model import JobRequest, Reason, TypeVerdict

from .candidates import Candidate


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
