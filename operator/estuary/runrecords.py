"""Run records: each gang attempt's hold on accelerators, kept in the AIJob's status.

Why it exists: usage for chargeback is "how many accelerators, of which type, from when to when".
Every status write of the controller (and of federation) passes through `Controller.patch_status`,
so one pure function there sees every transition: an admission (a placement with `admittedAt`)
opens a record; leaving Admitted/Running (finished, requeued, suspended, preempted, released)
closes it. The records are the researcher's own view (`kubectl estuary usage` in her namespace);
the ledger (`ledger.py`) copies them into per-tenant objects that outlive the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

KEEP = 20  # records kept in status; older ones live on in the UsageLedger
HOLDING = ("Admitted", "Running")


def _stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _close(record: dict[str, Any], end: str, outcome: str) -> dict[str, Any]:
    return {**record, "endTime": end, "outcome": outcome}


def amend(
    status: Mapping[str, Any], accelerators_per_worker: int, changes: Mapping[str, Any], now: float
) -> dict[str, Any]:
    """`changes` plus the `runs` list they imply (unchanged when they imply nothing)."""
    out = dict(changes)
    runs = [dict(r) for r in status.get("runs") or []]
    before = len(runs), [r.get("endTime") for r in runs]
    open_ = next((r for r in reversed(runs) if not r.get("endTime")), None)
    phase = changes.get("phase", status.get("phase"))
    placement = changes.get("placement")
    admitted = placement and changes.get("admittedAt") and phase in HOLDING
    released = open_ is not None and (
        admitted or phase not in HOLDING or ("placement" in changes and placement is None)
    )
    if released and open_ is not None:
        end = changes.get("completionTime") or changes.get("queuedAt") or _stamp(now)
        outcome = str(changes.get("reason") or phase or "Released")
        runs[runs.index(open_)] = _close(open_, str(end), outcome)
    if admitted and placement is not None:
        workers = int(placement.get("workers") or len(placement.get("nodes") or []))
        runs.append(
            {
                "attempt": int(changes.get("attempt", status.get("attempt", 0))),
                "cluster": placement.get("cluster") or "local",
                "pool": placement.get("pool") or "",
                "vendor": placement.get("vendor") or "",
                "model": placement.get("model") or "",
                "accelerators": workers * max(accelerators_per_worker, 0),
                "startTime": changes["admittedAt"],
            }
        )
    if (len(runs), [r.get("endTime") for r in runs]) != before:
        out["runs"] = runs[-KEEP:]
    return out
