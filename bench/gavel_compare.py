"""Gavel's setting at 1.2, 3.2, 5.2 and 6.0 jobs/h: Estuary's core against baselines and Gavel.

36 K80 + 36 P100 + 36 V100 (9 nodes of 4 per type), single-accelerator jobs generated exactly as
Gavel's ``simulate_scheduler_with_generated_jobs.py`` generates them (same seeds), jobs 4000-4999
measured, arrivals continuing until they finish. For each rate: average JCT of every policy, the
ratio of each baseline to Estuary, the offline lower bound, and Gavel's published numbers for its
own (time-sliced, migrating) policies on the same setting.

    .venv/bin/python bench/gavel_compare.py                    # all four rates, one process per CPU
    .venv/bin/python bench/gavel_compare.py --processes 1      # all in this process, with progress
    .venv/bin/python bench/gavel_compare.py --rates 3.2        # one rate
    .venv/bin/python bench/gavel_compare.py --smoke            # seconds (CI): 120 jobs, 2 rates
    .venv/bin/python bench/gavel_compare.py --policies estuary,preemptive --checkpoint-interval 1800

Beside the averages: p99 JCT, the longest first wait (does any job starve?), preemptions and
migrations of the measured jobs, per policy.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))

from estuary.sim import experiment as ex  # noqa: E402
from estuary.sim.cli import default_data_dir  # noqa: E402
from estuary.sim.engine import Assumptions  # noqa: E402
from estuary.sim.metrics import Summary  # noqa: E402
from estuary.sim.policies import DEFAULT_POLICIES, named  # noqa: E402
from estuary.sim.published import GAVEL_AVG_JCT_H, gavel_row  # noqa: E402
from estuary.sim.report import speed_line, table  # noqa: E402
from estuary.sim.throughputs import load_default  # noqa: E402


def _fmt(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.2f}"


def comparison_table(rows: list[dict[str, Any]], policies: list[str]) -> str:
    head = [
        "jobs/h",
        *policies,
        "lower bound",
        *[f"{p}/estuary" for p in policies if p != "estuary"],
        "Gavel fifo->fifo_perf",
        "Gavel LAS->LAS_perf",
    ]
    lines = [head]
    for r in rows:
        jct = r["avg_jct_h"]
        g = r["gavel"] or {}
        lines.append(
            [
                f"{r['rate']:g}",
                *[_fmt(jct[p]) for p in policies],
                _fmt(r["lower_bound_h"]),
                *[
                    _fmt(jct[p] / jct["estuary"]) if jct.get("estuary") else "-"
                    for p in policies
                    if p != "estuary"
                ],
                f"{_fmt(g.get('fifo'))} -> {_fmt(g.get('fifo_perf'))}",
                f"{_fmt(g.get('max_min_fairness'))} -> {_fmt(g.get('max_min_fairness_perf'))}",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["  ".join(c.rjust(widths[i]) for i, c in enumerate(line)) for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


@dataclass(frozen=True)
class Task:
    """One policy at one rate: what a worker process replays."""

    rate: float
    policy: str
    jobs: int
    measure: tuple[int, int]
    seed: int
    finite: bool
    data: Path
    progress: bool
    assumptions: Assumptions = field(default_factory=Assumptions)


@dataclass(frozen=True)
class Done:
    task: Task
    name: str
    measured_desc: str
    summary: Summary
    lower: Summary


def replay(task: Task) -> Done:
    table = load_default(task.data)
    exp = ex.gavel(table, task.rate, task.jobs, task.measure, task.seed, continue_arrivals=not task.finite)
    outcome = ex.run(exp, named([task.policy]), task.assumptions, progress=task.progress)
    return Done(task, exp.name, exp.measured_desc, outcome.summaries[0], outcome.lower)


def run_all(tasks: list[Task], processes: int) -> list[Done]:
    """Every task, in one process or spread over several (the costliest, the overloaded rates,
    first); results in the order of `tasks`."""
    if processes <= 1:
        return [replay(t) for t in tasks]
    by_cost = sorted(range(len(tasks)), key=lambda i: -tasks[i].rate)
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        done = pool.map(replay, [tasks[i] for i in by_cost], chunksize=1)
    results: list[Done | None] = [None] * len(tasks)
    for i, d in zip(by_cost, done, strict=True):
        results[i] = d
    return [d for d in results if d is not None]


def row(rate: float, done: list[Done], finite: bool) -> dict[str, Any]:
    summaries = [d.summary for d in done]
    return {
        "rate": rate,
        "avg_jct_h": {s.policy: s.avg_jct_h for s in summaries},
        "p95_jct_h": {s.policy: s.p95_jct_h for s in summaries},
        "p99_jct_h": {s.policy: s.p99_jct_h for s in summaries},
        "max_queueing_h": {s.policy: s.max_queueing_h for s in summaries},
        "preemptions": {s.policy: s.preemptions for s in summaries},
        "migrations": {s.policy: s.migrations for s in summaries},
        "makespan_h": {s.policy: s.makespan_h for s in summaries},
        "utilization": {s.policy: s.utilization for s in summaries},
        "lower_bound_h": done[0].lower.avg_jct_h,
        "gavel": None if finite else gavel_row(rate),
        "wall_s": {s.policy: s.wall_seconds for s in summaries},
        "jobs_simulated": {s.policy: s.jobs_simulated for s in summaries},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--rates",
        default=",".join(f"{r:g}" for r in GAVEL_AVG_JCT_H),
        help="comma-separated jobs/h (default 1.2,3.2,5.2,6)",
    )
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--measure", default="4000:5000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policies", default=",".join(DEFAULT_POLICIES))
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "gavel_compare.json")
    ap.add_argument("--quiet", action="store_true", help="no progress line")
    ap.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="replays run side by side, one (rate, policy) each (default: one per CPU; 1: in this process)",
    )
    ap.add_argument(
        "--checkpoint-interval",
        type=float,
        default=Assumptions().checkpoint_interval_s,
        help="seconds between a job's checkpoints; a preempted or moved job loses the work since its last",
    )
    ap.add_argument(
        "--finite",
        action="store_true",
        help="stop arrivals after --jobs (default: continue until the measured jobs finish, as Gavel does)",
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="120 jobs (measure 80:120, arrivals stop after 120) at 1.2 and 6 jobs/h",
    )
    args = ap.parse_args(argv)
    if args.smoke:
        args.rates, args.jobs, args.measure, args.finite, args.processes = "1.2,6", 120, "80:120", True, 1
    rates = [float(x) for x in args.rates.split(",")]
    lo, hi = (int(x) for x in args.measure.split(":"))
    policies = [p.strip() for p in args.policies.split(",")]
    if "estuary" not in policies:
        policies.insert(0, "estuary")
    named(policies)  # unknown names fail here, before any replay
    data = args.data or default_data_dir()
    progress = not args.quiet and args.processes <= 1
    costs = Assumptions(checkpoint_interval_s=args.checkpoint_interval)
    tasks = [
        Task(r, p, args.jobs, (lo, hi), args.seed, args.finite, data, progress, costs)
        for r in rates
        for p in policies
    ]

    started = time.perf_counter()
    results = run_all(tasks, args.processes)
    rows: list[dict[str, Any]] = []
    for rate in rates:
        done = [d for d in results if d.task.rate == rate]
        print(f"\n{done[0].name}, {done[0].measured_desc}:")
        print(table([*(d.summary for d in done), done[0].lower], reference="estuary"))
        for d in done:
            print("  " + speed_line(d.summary))
        rows.append(row(rate, done, args.finite))
    payload = {
        "jobs": args.jobs,
        "measure": [lo, hi],
        "seed": args.seed,
        "finite": args.finite,
        "checkpoint_interval_s": args.checkpoint_interval,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")

    elapsed = time.perf_counter() - started
    summed = sum(d.summary.wall_seconds for d in results)
    print(
        f"\nGavel setting (36 K80 + 36 P100 + 36 V100, 9 nodes of 4 per type), jobs {lo}-{hi - 1}, "
        f"seed {args.seed}; average JCT in hours:"
    )
    print(comparison_table(rows, policies))
    print("\np99 JCT h / longest first wait h / preemptions / migrations (measured jobs):")
    for r in rows:
        cells = [
            f"{p} {_fmt(r['p99_jct_h'][p])} / {_fmt(r['max_queueing_h'][p])} / "
            f"{r['preemptions'][p]} / {r['migrations'][p]}"
            for p in policies
        ]
        print(f"  {r['rate']:g} jobs/h: " + "; ".join(cells))
    print(
        f"\ntotal wall time {elapsed:.0f} s ({args.processes} process{'es' if args.processes > 1 else ''}; "
        f"replays summed {summed:.0f} s); results in {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
