"""Numbers that say how well a policy did on a replay: JCT, makespan, queueing, utilization, shares.

Metrics are computed over a measurement set (e.g. Gavel's jobs 4000-4999, after the cluster has
filled), the same way for every policy and for the offline lower bound (each job alone on its
fastest type, never queued), so the rows of one table are comparable.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from estuary.sim.engine import JobRecord, SimResult

HOUR = 3600.0

Measured = Callable[[JobRecord], bool]


def window(lo: int, hi: int) -> Measured:
    """Jobs whose stream index is in [lo, hi)."""
    return lambda r: lo <= r.index < hi


def everything(_: JobRecord) -> bool:
    return True


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), like numpy's default."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@dataclass(frozen=True)
class Summary:
    """One row of the results table; times in hours."""

    policy: str
    measured: int
    completed: int
    unschedulable: int
    unfinished: int
    avg_jct_h: float
    p50_jct_h: float
    p95_jct_h: float
    makespan_h: float
    avg_queueing_h: float
    utilization: float  # busy accelerator-time / capacity over the measured span
    preemptions: int = 0
    migrations: int = 0
    p99_jct_h: float = float("nan")
    max_queueing_h: float = float("nan")  # the longest first wait: does any job starve?
    tenant_share: dict[str, float] = field(default_factory=dict)  # of accelerator-time, whole run
    cycles: int = 0
    core_seconds: float = 0.0
    wall_seconds: float = 0.0
    jobs_simulated: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def busy_integral(timeline: Sequence[tuple[float, int]], start: float, end: float) -> float:
    """Accelerator-seconds in [start, end] of a step function given as (time, value) changes."""
    total = 0.0
    for i, (t, v) in enumerate(timeline):
        t_next = timeline[i + 1][0] if i + 1 < len(timeline) else end
        a, b = max(t, start), min(t_next, end)
        if b > a:
            total += v * (b - a)
    return total


def summarize(result: SimResult, measured: Measured = everything) -> Summary:
    rows = [r for r in result.records.values() if measured(r)]
    done = [r for r in rows if r.end is not None]
    jcts = [r.end - r.arrival for r in done if r.end is not None]
    queues = [r.first_start - r.arrival for r in done if r.first_start is not None]
    unsched = sum(1 for r in rows if r.unschedulable is not None)
    start = min((r.arrival for r in rows), default=0.0)
    end = max((r.end for r in done if r.end is not None), default=start)
    span = end - start
    util = (
        min(1.0, busy_integral(result.timeline, start, end) / (result.cluster.accelerators * span))
        if span > 0
        else 0.0
    )  # min: float noise of a long integral
    used = sum(result.tenant_accel_seconds.values())
    return Summary(
        policy=result.policy,
        measured=len(rows),
        completed=len(done),
        unschedulable=unsched,
        unfinished=len(rows) - len(done) - unsched,
        avg_jct_h=statistics.fmean(jcts) / HOUR if jcts else float("nan"),
        p50_jct_h=percentile(jcts, 50) / HOUR,
        p95_jct_h=percentile(jcts, 95) / HOUR,
        makespan_h=span / HOUR,
        avg_queueing_h=statistics.fmean(queues) / HOUR if queues else float("nan"),
        utilization=util,
        preemptions=sum(r.preemptions for r in rows),
        migrations=sum(r.migrations for r in rows),
        p99_jct_h=percentile(jcts, 99) / HOUR,
        max_queueing_h=max(queues, default=float("nan")) / HOUR,
        tenant_share={t: v / used for t, v in sorted(result.tenant_accel_seconds.items())} if used else {},
        cycles=result.cycles,
        core_seconds=result.core_seconds,
        wall_seconds=result.wall_seconds,
        jobs_simulated=len(result.records),
    )


def lower_bound(records: Iterable[JobRecord], accelerators: int) -> Summary:
    """Each job alone on its fastest type from its arrival: JCT = fastest runtime, no queueing.

    Not achievable when jobs compete; it bounds every policy's JCT from below. Utilization is
    what the same work would occupy at fastest speed over that span."""
    rows = list(records)
    jcts = [r.fastest_runtime for r in rows]
    start = min((r.arrival for r in rows), default=0.0)
    end = max((r.arrival + r.fastest_runtime for r in rows), default=start)
    span = end - start
    work = sum(r.fastest_runtime * r.accelerators for r in rows)
    return Summary(
        policy="lower-bound",
        measured=len(rows),
        completed=len(rows),
        unschedulable=0,
        unfinished=0,
        avg_jct_h=statistics.fmean(jcts) / HOUR if jcts else float("nan"),
        p50_jct_h=percentile(jcts, 50) / HOUR,
        p95_jct_h=percentile(jcts, 95) / HOUR,
        makespan_h=span / HOUR,
        avg_queueing_h=0.0,
        utilization=work / (accelerators * span) if span > 0 else 0.0,
    )


def measured_records(result: SimResult, measured: Measured) -> list[JobRecord]:
    return [r for r in result.records.values() if measured(r)]
