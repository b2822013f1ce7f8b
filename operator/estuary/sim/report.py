"""Presents replay results: a terminal table, a JSON file, per-job CSV and PNG plots.

Kept apart from the metrics so the numbers can be computed (and tested) without matplotlib, and
so benchmarks can print the same table. Plots use the Agg backend: no display is needed.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from estuary.sim.engine import SimResult
from estuary.sim.metrics import HOUR, Measured, Summary


def _num(x: float, fmt: str = ".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def table(summaries: Sequence[Summary], reference: str | None = None) -> str:
    """Rows of avg/p95 JCT, makespan, queueing, utilization; ``reference``: the policy whose avg
    JCT the ratio column divides by."""
    ref = next((s for s in summaries if s.policy == reference), None)
    header = [
        "policy",
        "jobs",
        "done",
        "avg JCT h",
        "p50 h",
        "p95 h",
        "makespan h",
        "avg queue h",
        "util",
        "preempt",
    ]
    if ref is not None:
        header.append(f"JCT / {reference}")
    rows = [header]
    for s in summaries:
        row = [
            s.policy,
            str(s.measured),
            str(s.completed),
            _num(s.avg_jct_h),
            _num(s.p50_jct_h),
            _num(s.p95_jct_h),
            _num(s.makespan_h, ".1f"),
            _num(s.avg_queueing_h),
            f"{s.utilization:.0%}",
            str(s.preemptions),
        ]
        if ref is not None:
            row.append(_num(s.avg_jct_h / ref.avg_jct_h) if ref.avg_jct_h else "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def tenant_table(summaries: Sequence[Summary], top: int = 8) -> str:
    """Share of accelerator-time per tenant (largest first), one column per policy."""
    shown = [s for s in summaries if s.tenant_share]
    if not shown:
        return ""
    totals: dict[str, float] = {}
    for s in shown:
        for t, v in s.tenant_share.items():
            totals[t] = totals.get(t, 0.0) + v
    tenants = sorted(totals, key=lambda t: -totals[t])[:top]
    rows = [["tenant", *[s.policy for s in shown]]]
    rows += [[t, *[f"{s.tenant_share.get(t, 0.0):.1%}" for s in shown]] for t in tenants]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)) for r in rows
    )


def speed_line(s: Summary) -> str:
    rate = s.jobs_simulated / s.wall_seconds if s.wall_seconds else float("nan")
    share = s.core_seconds / s.wall_seconds if s.wall_seconds else float("nan")
    return (
        f"{s.policy}: {s.jobs_simulated} jobs in {s.wall_seconds:.1f} s wall ({rate:.0f} jobs/s), "
        f"{s.cycles} core cycles, {s.core_seconds:.1f} s in the core ({share:.0%})"
    )


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=_default) + "\n")


def _default(o: object) -> object:
    if isinstance(o, float) and math.isnan(o):
        return None
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def write_jobs_csv(path: Path, results: Sequence[SimResult], measured: Measured) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "policy",
                "key",
                "index",
                "tenant",
                "job_type",
                "accelerators",
                "measured",
                "arrival_s",
                "first_start_s",
                "end_s",
                "jct_s",
                "pool",
                "preemptions",
                "fastest_runtime_s",
                "unschedulable",
            ]
        )
        for res in results:
            for r in res.records.values():
                w.writerow(
                    [
                        res.policy,
                        r.key,
                        r.index,
                        r.tenant,
                        r.job_type,
                        r.accelerators,
                        int(measured(r)),
                        f"{r.arrival:.1f}",
                        "" if r.first_start is None else f"{r.first_start:.1f}",
                        "" if r.end is None else f"{r.end:.1f}",
                        "" if r.jct is None else f"{r.jct:.1f}",
                        r.pool or "",
                        r.preemptions,
                        f"{r.fastest_runtime:.1f}",
                        r.unschedulable or "",
                    ]
                )


_STYLES = ("-", "--", "-.", ":")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_jct_cdf(
    path: Path,
    results: Sequence[SimResult],
    measured: Measured,
    lower_bound_jcts: Sequence[float] | None = None,
    title: str = "",
) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    curves: list[tuple[str, list[float]]] = []
    for res in results:
        curves.append(
            (
                res.policy,
                sorted(r.jct / HOUR for r in res.records.values() if measured(r) and r.jct is not None),
            )
        )
    if lower_bound_jcts:
        curves.append(("lower-bound", sorted(x / HOUR for x in lower_bound_jcts)))
    for i, (name, xs) in enumerate(curves):
        if xs:
            ys = [(k + 1) / len(xs) for k in range(len(xs))]
            style = (0, (1, 1)) if name == "lower-bound" else _STYLES[i % len(_STYLES)]
            ax.step(xs, ys, where="post", label=name, linestyle=style, alpha=0.85)
    ax.set_xscale("log")
    ax.set_xlabel("job completion time (hours, log scale)")
    ax.set_ylabel("fraction of jobs")
    ax.set_title(title or "CDF of job completion time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_utilization(
    path: Path, results: Sequence[SimResult], title: str = "", span: tuple[float, float] | None = None
) -> None:
    """Busy accelerators / all accelerators over time, as step curves (hours on x)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, res in enumerate(results):
        total = res.cluster.accelerators
        xs = [t / HOUR for t, _ in res.timeline] + [res.end_time / HOUR]
        ys = [b / total for _, b in res.timeline] + [res.timeline[-1][1] / total]
        ax.step(
            xs,
            ys,
            where="post",
            label=res.policy,
            linewidth=0.8,
            alpha=0.85,
            linestyle=_STYLES[i % len(_STYLES)],
        )
    if span is not None:
        ax.axvspan(span[0] / HOUR, span[1] / HOUR, color="grey", alpha=0.12, label="measured span")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("simulated time (hours)")
    ax.set_ylabel("accelerators in use")
    ax.set_title(title or "Accelerator utilization")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
