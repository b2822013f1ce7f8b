"""Plots of the time-sharing study (issue 13): JCT CDFs per load, and the gain against the
checkpoint interval, from the folders `estuary sim` wrote (results.json, jobs.csv).

Why it exists: the tables in bench/README.md give averages and tails; the CDFs show where in the
distribution `preemptive` gains or loses, and the sweep shows how the gain falls as checkpoints
get rarer (a preempted or moved job loses up to one interval of work). Needs the `sim` extra
(matplotlib); never imported by the operator or the unit tier.

    .venv/bin/python bench/preemptive_plots.py cdf --title "Gavel setting, 5.2 jobs/h" \\
        --out bench/results/jct_cdf_5.2.png out/full/est-5.2 preemptive=out/full/pre-5.2
    .venv/bin/python bench/preemptive_plots.py sweep --baseline out/full/est-5.2 \\
        --out bench/results/gain_vs_checkpoint.png out/sweep/ckpt-*
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

HOUR = 3600.0


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def measured_jcts(folder: Path) -> dict[str, list[float]]:
    """Each policy's measured JCTs in hours, sorted, from a run's jobs.csv."""
    out: dict[str, list[float]] = {}
    with open(folder / "jobs.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["measured"] in ("1", "True", "true") and row["jct_s"]:
                out.setdefault(row["policy"], []).append(float(row["jct_s"]) / HOUR)
    return {policy: sorted(xs) for policy, xs in out.items()}


def summary(folder: Path, policy: str) -> dict[str, Any]:
    payload = json.loads((folder / "results.json").read_text())
    for s in payload["summaries"]:
        if s["policy"] == policy:
            return {**s, "assumptions": payload["assumptions"]}
    raise SystemExit(f"{folder}/results.json has no policy {policy!r}")


def _save(
    plt: Any, fig: Any, ax: Any, out: Path, labels: tuple[str, str, str], ticks: list[float] | None = None
) -> None:
    """Log x axis (with these ticks, if given), labels (x, y, title), grid and legend; to `out`."""
    ax.set_xscale("log")
    if ticks:
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(labels[2])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def cdf(runs: list[str], out: Path, title: str) -> None:
    """`runs`: folders, each optionally as LABEL=FOLDER (the label replaces the policy's name)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, run in enumerate(runs):
        label, _, folder = run.rpartition("=")
        for policy, xs in measured_jcts(Path(folder)).items():
            ys = [(k + 1) / len(xs) for k in range(len(xs))]
            name = label or policy
            ax.step(xs, ys, where="post", label=name, linestyle=("-", "--", "-.", ":")[i % 4])
    _save(plt, fig, ax, out, ("job completion time (hours, log scale)", "fraction of measured jobs", title))


def sweep(folders: list[Path], baseline: Path, out: Path) -> list[tuple[float, float, float, float]]:
    """(checkpoint interval min, restart s, preemptive avg JCT h, gain = Estuary / preemptive).
    A run with interval 0 and no restart (moves for free, as Gavel assumes) is drawn as a line."""
    base = summary(baseline, "estuary")["avg_jct_h"]
    points = []
    for folder in folders:
        s = summary(folder, "preemptive")
        a = s["assumptions"]
        points.append(
            (a["checkpoint_interval_s"] / 60, a["restart_overhead_s"], s["avg_jct_h"], base / s["avg_jct_h"])
        )
    points.sort()
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for restart in sorted({p[1] for p in points if p[0] > 0}):
        xs = [p for p in points if p[1] == restart and p[0] > 0]
        ax.plot([p[0] for p in xs], [p[3] for p in xs], marker="o", label=f"restart {restart:g} s")
    for p in points:
        if p[0] == 0:
            ax.axhline(p[3], color="green", linestyle="--", linewidth=0.8, label="no cost (as Gavel)")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    title = f"5.2 jobs/h: gain of preemptive over today's policy (Estuary {base:.2f} h)"
    labels = ("checkpoint interval (minutes, log scale)", "avg JCT: Estuary / preemptive", title)
    _save(plt, fig, ax, out, labels, sorted({p[0] for p in points if p[0] > 0}))
    return points


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cdf", help="JCT CDFs of the measured jobs of the given runs")
    c.add_argument("runs", nargs="+", help="run folders, each optionally LABEL=FOLDER")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--title", default="CDF of job completion time")
    s = sub.add_parser("sweep", help="gain over Estuary against the checkpoint interval")
    s.add_argument("folders", nargs="+", type=Path)
    s.add_argument("--baseline", type=Path, required=True, help="a run with policy estuary")
    s.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.what == "cdf":
        cdf(args.runs, args.out, args.title)
    else:
        for interval, restart, jct, gain in sweep(args.folders, args.baseline, args.out):
            print(f"checkpoint {interval:g} min, restart {restart:g} s: {jct:.2f} h, gain {gain:.2f}x")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
