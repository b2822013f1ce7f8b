"""Accelerator-hours and PFLOPS-hours per tenant over a period: the figures chargeback runs on.

Pure: run records in (from AIJob status or UsageLedger objects, as plain dicts), rows out; no
client, no clock (the caller passes `now` for runs still going). `kubectl estuary usage` and the
portal both call `summarize`. A run counts for the part of [start, end) it overlaps, so a period's
figures add up across consecutive periods. PFLOPS-hours are accelerator-hours times the model's
peak dense FP16/BF16 TFLOPS / 1000 (vendors/profiles.yaml); a model without a figure contributes
accelerator-hours and no PFLOPS-hours, and its rows say so (`pflops_known` false).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from estuary.vendors.loader import tflops_per_accelerator

TflopsLookup = Callable[[str, str], float | None]
CSV_COLUMNS = (
    "tenant",
    "accelerator",
    "period_start",
    "period_end",
    "runs",
    "accelerator_hours",
    "pflops_hours",
)


@dataclass(frozen=True, slots=True)
class Run:
    """One gang attempt's hold on accelerators, normalised from wherever it was recorded."""

    id: str  # namespace/job/uid/attempt
    tenant: str
    namespace: str
    job: str
    attempt: int
    cluster: str
    vendor: str
    model: str
    accelerators: int
    start: float
    end: float | None  # None while it runs
    tflops: float | None = None  # per accelerator, when the record carries it


@dataclass(frozen=True, slots=True)
class UsageRow:
    tenant: str
    accelerator: str  # vendor/model, or "*" when rows are per tenant only
    runs: int
    accelerator_hours: float
    pflops_hours: float
    pflops_known: bool  # False when some of these hours had no TFLOPS figure


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def format_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_id(namespace: str, job: str, uid: str | None, attempt: int) -> str:
    return f"{namespace}/{job}/{(uid or '')[:8]}/{attempt}"


def _run(record: Mapping[str, Any], tenant: str, namespace: str, job: str, id_: str) -> Run | None:
    start = parse_time(record.get("startTime"))
    if start is None:
        return None
    return Run(
        id=id_,
        tenant=tenant,
        namespace=namespace,
        job=job,
        attempt=int(record.get("attempt", 0)),
        cluster=str(record.get("cluster") or "local"),
        vendor=str(record.get("vendor") or ""),
        model=str(record.get("model") or ""),
        accelerators=int(record.get("accelerators") or 0),
        start=start,
        end=parse_time(record.get("endTime")),
        tflops=record.get("tflopsPerAccelerator"),
    )


def runs_of_job(job: Mapping[str, Any], tenant: str) -> list[Run]:
    """The run records in an AIJob's status."""
    meta = job["metadata"]
    ns, name = meta["namespace"], meta["name"]
    runs = (
        _run(r, tenant, ns, name, run_id(ns, name, meta.get("uid"), int(r.get("attempt", 0))))
        for r in (job.get("status") or {}).get("runs") or []
    )
    return [r for r in runs if r is not None]


def runs_of_ledger(ledger: Mapping[str, Any]) -> list[Run]:
    """The records of a UsageLedger object."""
    tenant = str(ledger["spec"]["tenant"])
    runs = (
        _run(r, tenant, str(r.get("namespace") or ""), str(r.get("job") or ""), str(r["id"]))
        for r in (ledger.get("status") or {}).get("records") or []
    )
    return [r for r in runs if r is not None]


def merge(*sources: Iterable[Run]) -> list[Run]:
    """One run per id: the same run may be in a job's status and in one or more ledgers. A closed
    record wins over an open one (the job may be gone; the ledger closed it)."""
    chosen: dict[str, Run] = {}
    for runs in sources:
        for run in runs:
            held = chosen.get(run.id)
            if held is None or (held.end is None and run.end is not None):
                chosen[run.id] = run
    return sorted(chosen.values(), key=lambda r: (r.start, r.id))


def overlap_hours(run: Run, start: float, end: float, now: float) -> float:
    """Hours of `run` inside [start, end); a running one counts up to `now`."""
    stop = min(run.end if run.end is not None else now, end)
    return max(0.0, stop - max(run.start, start)) / 3600.0


def summarize(
    runs: Iterable[Run],
    start: float,
    end: float,
    now: float,
    by_type: bool = True,
    tflops: TflopsLookup = tflops_per_accelerator,
) -> list[UsageRow]:
    """Per tenant (and per accelerator type unless `by_type` is False): runs, accelerator-hours and
    PFLOPS-hours within [start, end), sorted by tenant then type."""
    totals: dict[tuple[str, str], list[Any]] = {}
    for run in runs:
        hours = overlap_hours(run, start, end, now) * run.accelerators
        if hours <= 0:
            continue
        per_accelerator = run.tflops if run.tflops is not None else tflops(run.vendor, run.model)
        key = (run.tenant, f"{run.vendor}/{run.model}" if by_type else "*")
        entry = totals.setdefault(key, [0, 0.0, 0.0, True])
        entry[0] += 1
        entry[1] += hours
        entry[2] += hours * per_accelerator / 1000.0 if per_accelerator else 0.0
        entry[3] = entry[3] and per_accelerator is not None
    return [
        UsageRow(tenant, accel, runs_, acc_h, pf_h, known)
        for (tenant, accel), (runs_, acc_h, pf_h, known) in sorted(totals.items())
    ]


def to_csv(rows: Iterable[UsageRow], start: float, end: float) -> str:
    """CSV with a header; hours to 4 decimals (0.36 s of one accelerator)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            (
                row.tenant,
                row.accelerator,
                format_time(start),
                format_time(end),
                row.runs,
                f"{row.accelerator_hours:.4f}",
                f"{row.pflops_hours:.4f}" if row.pflops_known else f"{row.pflops_hours:.4f}+",
            )
        )
    return out.getvalue()


def to_table(rows: list[UsageRow]) -> str:
    """A kubectl-style table; a '+' after PFLOPS-hours marks hours on a model without a figure."""
    header = ("TENANT", "ACCELERATOR", "RUNS", "ACCELERATOR-HOURS", "PFLOPS-HOURS")
    body = [
        (
            r.tenant,
            r.accelerator,
            str(r.runs),
            f"{r.accelerator_hours:.2f}",
            f"{r.pflops_hours:.2f}" + ("" if r.pflops_known else "+"),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]
    return "\n".join(
        "   ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in (header, *body)
    )
