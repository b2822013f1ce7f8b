"""What a job and a tenant have used, for the portal's job page and usage pages: pure arithmetic on
run records (AIJob `status.runs`, UsageLedgers) through `estuary.usage`, the same code as
`kubectl estuary usage`, so the portal and the plugin never disagree."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from estuary import usage
from estuary.vendors.loader import tflops_per_accelerator

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Period:
    label: str  # YYYY-MM
    start: float
    end: float


def month(text: str | None, now: float) -> Period:
    """The calendar month (UTC) named `YYYY-MM`, or the current one when absent or malformed."""
    found = MONTH.match(text or "")
    if found:
        year, mon = int(found[1]), int(found[2])
    else:
        today = datetime.fromtimestamp(now, UTC)
        year, mon = today.year, today.month
    start = datetime(year, mon, 1, tzinfo=UTC)
    days = calendar.monthrange(year, mon)[1]
    end = start.timestamp() + days * 86400
    return Period(label=f"{year:04d}-{mon:02d}", start=start.timestamp(), end=end)


@dataclass(frozen=True)
class RunLine:
    """One gang attempt of a job: where, how many accelerators, for how long, and what it cost."""

    attempt: int
    where: str  # pool (cluster)
    accelerator: str
    accelerators: int
    start: str
    end: str  # empty while running
    accelerator_hours: float
    pflops_hours: float | None  # None when the model has no TFLOPS figure
    cost: float | None  # None when the price is not known to the user


@dataclass(frozen=True)
class JobCost:
    runs: tuple[RunLine, ...]
    accelerator_hours: float
    pflops_hours: float
    pflops_known: bool
    cost: float | None  # None when some run's price is unknown


def job_cost(raw: Mapping[str, Any], prices: Mapping[str, float], now: float) -> JobCost:
    """Every recorded run of the job, up to `now` for one still running; prices by pool name."""
    records = {int(r.get("attempt", 0)): r for r in (raw.get("status") or {}).get("runs") or []}
    lines = []
    for run in usage.runs_of_job(raw, tenant=""):
        hours = usage.overlap_hours(run, run.start, float("inf"), now) * run.accelerators
        tflops = tflops_per_accelerator(run.vendor, run.model)
        pool = str(records.get(run.attempt, {}).get("pool") or "")
        price = prices.get(pool) if run.cluster == "local" else None
        lines.append(
            RunLine(
                attempt=run.attempt,
                where=f"{pool} ({run.cluster})",
                accelerator=f"{run.vendor}/{run.model}",
                accelerators=run.accelerators,
                start=usage.format_time(run.start),
                end=usage.format_time(run.end) if run.end is not None else "",
                accelerator_hours=hours,
                pflops_hours=hours * tflops / 1000.0 if tflops else None,
                cost=hours * price if price is not None else None,
            )
        )
    costs = [line.cost for line in lines]
    return JobCost(
        runs=tuple(lines),
        accelerator_hours=sum(line.accelerator_hours for line in lines),
        pflops_hours=sum(line.pflops_hours or 0.0 for line in lines),
        pflops_known=all(line.pflops_hours is not None for line in lines),
        cost=sum(c for c in costs if c is not None) if None not in costs else None,
    )


def tenant_usage(
    jobs: Iterable[tuple[Mapping[str, Any], str]],
    ledgers: Iterable[Mapping[str, Any]],
    period: Period,
    now: float,
) -> list[usage.UsageRow]:
    """Per tenant and accelerator type over the period, from jobs (with their tenants) and ledgers;
    a run in both counts once."""
    from_jobs = [run for raw, tenant in jobs for run in usage.runs_of_job(raw, tenant)]
    from_ledgers = [run for ledger in ledgers for run in usage.runs_of_ledger(ledger)]
    runs = usage.merge(from_jobs, from_ledgers)
    return usage.summarize(runs, period.start, period.end, now)
