"""Run records: each gang attempt's hold on accelerators, kept in the AIJob's status.

Why it exists: usage for chargeback is "how many accelerators, of which type, from when to when".
Every AIJob status write, the job controller's and the federation controller's alike, passes
through `kube/status.py: StatusWriter.status`, so one pure function there sees every transition:
an admission (a placement with `admittedAt`) opens a record; leaving Admitted/Running (finished,
requeued, suspended, preempted, released) closes it. The records are the researcher's own view
(`kubectl estuary usage` in her namespace); the ledger (`ledger.py`) copies them into per-tenant
objects that outlive the job.
"""

from __future__ import annotations

from datetime import UTC, datetime

from estuary.api.aijob import HOLDING, AIJobStatus, RunRecord

KEEP = 20  # records kept in status; older ones live on in the UsageLedger


def _stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def amend(current: AIJobStatus, accelerators_per_worker: int, update: AIJobStatus, now: float) -> AIJobStatus:
    """`update` plus the `runs` list it implies (`update` itself when it implies nothing)."""
    written = update.model_fields_set
    runs = list(current.runs)
    phase = update.phase if "phase" in written else current.phase
    placement = update.placement if "placement" in written else None
    admitted = placement is not None and bool(update.admitted_at) and phase in HOLDING
    open_at = next((i for i in reversed(range(len(runs))) if not runs[i].end_time), None)
    released = admitted or phase not in HOLDING or ("placement" in written and placement is None)
    if open_at is not None and released:
        end = update.completion_time or update.queued_at or _stamp(now)
        outcome = str(update.reason or phase or "Released")
        runs[open_at] = RunRecord(**{**runs[open_at].model_dump(), "end_time": end, "outcome": outcome})
    if admitted and placement is not None and update.admitted_at:
        runs.append(
            RunRecord(
                attempt=update.attempt if "attempt" in written else current.attempt,
                cluster=placement.cluster or "local",
                pool=placement.pool,
                vendor=placement.vendor,
                model=placement.model,
                accelerators=(placement.workers or len(placement.nodes)) * max(accelerators_per_worker, 0),
                start_time=update.admitted_at,
                **({"tenant": placement.tenant} if placement.tenant else {}),
            )
        )
    if runs == current.runs:
        return update
    return update.model_copy(update={"runs": runs[-KEEP:]})
