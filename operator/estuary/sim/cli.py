"""``estuary sim``: replay a job stream through the scheduling core under several policies.

    estuary sim gavel  --rate 3.2 --jobs 5000 --measure 4000:5000 --seed 0 --out out/sim
    estuary sim trace  --trace ../shared/data/gavel/traces/msr/seed=0/0e4a51.trace --out out/trace
    estuary sim philly --cluster bench/clusters/philly-1000.yaml --limit 10000 --out out/philly

Prints a results table (with the offline lower bound and, for the Gavel setting, Gavel's published
numbers), and writes ``results.json``, ``jobs.csv``, ``jct_cdf.png`` and ``utilization.png`` to --out.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from estuary.sim import experiment as ex
from estuary.sim.cluster import ClusterError, load_cluster
from estuary.sim.engine import Assumptions
from estuary.sim.metrics import Summary
from estuary.sim.policies import DEFAULT_POLICIES, POLICIES, named
from estuary.sim.published import gavel_row
from estuary.sim.report import (
    plot_jct_cdf,
    plot_utilization,
    speed_line,
    table,
    tenant_table,
    write_jobs_csv,
    write_json,
)
from estuary.sim.throughputs import load_default

REPO_ROOT = Path(__file__).resolve().parents[3]


def default_data_dir() -> Path:
    """--data, else $ESTUARY_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("ESTUARY_DATA")
    if env:
        return Path(env)
    beside_repo = REPO_ROOT.parent / "shared" / "data"
    return beside_repo if beside_repo.is_dir() else Path("..") / "shared" / "data"


def _window(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:END job indices, got {text!r}") from None
    if not 0 <= lo < hi:
        raise argparse.ArgumentTypeError(f"need 0 <= START < END, got {text!r}")
    return lo, hi


def _policies(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in POLICIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown policy {unknown[0] if unknown else text!r} (known: {', '.join(POLICIES)})"
        )
    return names


def _common() -> argparse.ArgumentParser:
    """The options every setting takes: policies, output, data, seed, window, assumptions."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--policies",
        type=_policies,
        default=list(DEFAULT_POLICIES),
        help=f"comma-separated, from: {', '.join(POLICIES)} (default: all)",
    )
    common.add_argument("--out", type=Path, default=Path("out/sim"), help="output folder (default out/sim)")
    common.add_argument(
        "--data", type=Path, default=None, help="shared data folder (default $ESTUARY_DATA or ../shared/data)"
    )
    common.add_argument("--seed", type=int, default=0)
    common.add_argument(
        "--measure",
        type=_window,
        default=None,
        help="measure jobs START:END of the stream (default: gavel 80%%-100%%, else all)",
    )
    common.add_argument(
        "--checkpoint-interval",
        type=float,
        default=600.0,
        help="seconds between checkpoints; a preempted job loses the work since its last "
        "(default 600; 0: loses nothing)",
    )
    common.add_argument(
        "--restart-overhead",
        type=float,
        default=60.0,
        help="seconds a preempted job needs to start again (default 60)",
    )
    common.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds a preempted job keeps its accelerators while stopping (default 30)",
    )
    common.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    common.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    return common


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="estuary sim",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Replay a job stream through Estuary's scheduling core under several policies.\n"
        "Writes results.json, jobs.csv, jct_cdf.png and utilization.png to --out.",
        epilog="examples:\n"
        "  estuary sim gavel --rate 3.2 --jobs 5000 --measure 4000:5000 --seed 0 --out out/sim\n"
        "  estuary sim trace --trace ../shared/data/gavel/traces/msr/seed=0 --oversize cap\n"
        "  estuary sim philly --cluster bench/clusters/philly-1000.yaml --limit 10000 --compress 20",
    )
    sub = p.add_subparsers(dest="setting", required=True)
    common = [_common()]
    gavel = "Gavel's setting: 36 K80 + 36 P100 + 36 V100, generated single-accelerator jobs"
    _gavel_options(sub.add_parser("gavel", parents=common, help=gavel))
    _trace_options(sub.add_parser("trace", parents=common, help="a Gavel msr trace file or folder"))
    _philly_options(sub.add_parser("philly", parents=common, help="the Philly trace on a declared cluster"))
    return p


def _gavel_options(g: argparse.ArgumentParser) -> None:
    g.add_argument("--rate", type=float, default=3.2, help="arrivals per hour (default 3.2)")
    g.add_argument("--jobs", type=int, default=5000, help="jobs of interest (default 5000)")
    g.add_argument(
        "--per-node", type=int, default=4, help="accelerators per node (default 4: 9 nodes a type)"
    )
    g.add_argument(
        "--finite",
        action="store_true",
        help="stop arrivals after --jobs (default: continue until the measured jobs finish, as Gavel does)",
    )


def _trace_options(t: argparse.ArgumentParser) -> None:
    t.add_argument("--trace", type=Path, required=True, help=".trace file, or a folder of them (merged)")
    t.add_argument("--cluster", type=Path, default=None, help="cluster YAML (default: the Gavel cluster)")
    t.add_argument(
        "--oversize",
        choices=("drop", "cap"),
        default="drop",
        help="jobs of more than 8 accelerators: drop (default) or cap to 8",
    )
    t.add_argument("--limit", type=int, default=None, help="first N jobs only")


def _philly_options(ph: argparse.ArgumentParser) -> None:
    ph.add_argument("--cluster", type=Path, required=True, help="cluster YAML")
    ph.add_argument("--trace", type=Path, default=None, help="philly.csv (default: DATA/philly/philly.csv)")
    ph.add_argument(
        "--limit", type=int, default=10_000, help="first N jobs by submission time (default 10000)"
    )
    ph.add_argument(
        "--reference", default="p100", help="worker type a Philly duration was measured on (default p100)"
    )
    ph.add_argument("--max-accelerators", type=int, default=None, help="drop jobs asking for more")
    ph.add_argument(
        "--compress",
        type=float,
        default=1.0,
        help="divide the gaps between submissions by this (more load from the same jobs)",
    )


def build(args: argparse.Namespace, data: Path) -> ex.Experiment:
    table = load_default(data)
    if args.setting == "gavel":
        return ex.gavel(table, args.rate, args.jobs, args.measure, args.seed, args.per_node, not args.finite)
    if args.setting == "trace":
        cluster = load_cluster(args.cluster) if args.cluster else None
        return ex.trace(table, args.trace, cluster, args.oversize, args.limit, args.measure)
    path = args.trace or data / "philly" / "philly.csv"
    return ex.philly(
        table,
        path,
        load_cluster(args.cluster),
        args.limit,
        args.seed,
        args.reference,
        args.max_accelerators,
        args.measure,
        args.compress,
    )


def ratios(summaries: list[Summary], to: str = "estuary") -> dict[str, float]:
    ref = next((s for s in summaries if s.policy == to), None)
    if ref is None or not ref.avg_jct_h:
        return {}
    return {s.policy: s.avg_jct_h / ref.avg_jct_h for s in summaries}


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    data = args.data or default_data_dir()
    try:
        exp = build(args, data)
    except (ClusterError, FileNotFoundError, ValueError) as exc:
        print(f"estuary sim: error: {exc}", file=sys.stderr)
        return 1
    for note in exp.notes:
        print(note)
    print(f"cluster {exp.cluster.describe()}")
    assumptions = Assumptions(args.checkpoint_interval, args.restart_overhead, args.grace)
    outcome = ex.run(exp, named(args.policies), assumptions, progress=not args.quiet)
    published = _print_results(args, exp, outcome)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", _payload(args, argv, exp, outcome, assumptions, published))
    write_jobs_csv(out / "jobs.csv", outcome.results, exp.measured)
    if not args.no_plots:
        _plot(out, exp, outcome)
    plots = "" if args.no_plots else ", jct_cdf.png, utilization.png"
    print(f"\nwrote {out}/results.json, jobs.csv{plots}")
    return 0


Published = dict[str, float | None] | None  # Gavel's own numbers for the rate, where known


def _print_results(args: argparse.Namespace, exp: ex.Experiment, outcome: ex.Outcome) -> Published:
    """The results table, Gavel's published row where it applies, tenant shares, replay speeds;
    returns the published row."""
    rows = [*outcome.summaries, outcome.lower]
    print(f"\n{exp.name}, {exp.measured_desc}:")
    print(table(rows, reference="estuary" if "estuary" in args.policies else None))
    published = gavel_row(args.rate) if args.setting == "gavel" and not args.finite else None
    if published is not None:
        print(
            "Gavel's own simulator (time-sliced 6-minute rounds, free migration), avg JCT h: "
            + ", ".join(f"{k} {'-' if v is None else f'{v:.2f}'}" for k, v in published.items())
        )
    shares = tenant_table(outcome.summaries)
    if shares and len(rows[0].tenant_share) > 1:
        print("\nshare of accelerator-time by tenant:\n" + shares)
    print()
    for s in outcome.summaries:
        print(speed_line(s))
    return published


def _payload(
    args: argparse.Namespace,
    argv: list[str] | None,
    exp: ex.Experiment,
    outcome: ex.Outcome,
    assumptions: Assumptions,
    published: Published,
) -> dict[str, Any]:
    """results.json: the setting, its assumptions, every policy's summary and the ratios."""
    return {
        "setting": exp.name,
        "argv": list(argv) if argv is not None else sys.argv[1:],
        "cluster": exp.cluster.describe(),
        "measured": exp.measured_desc,
        "notes": exp.notes,
        "assumptions": {
            "checkpoint_interval_s": assumptions.checkpoint_interval_s,
            "restart_overhead_s": assumptions.restart_overhead_s,
            "termination_grace_s": assumptions.termination_grace_s,
            "gang": "all workers start together on one pool; under 'preemptive' a job may yield its "
            "turn or move to a faster pool (each stop costs grace, the work since its last checkpoint "
            "and a restart), under the other policies it runs to completion there",
        },
        "policies": {n: POLICIES[n].description for n in args.policies},
        "summaries": [s.to_json() for s in outcome.summaries],
        "lower_bound": outcome.lower.to_json(),
        "avg_jct_ratio_to_estuary": ratios(outcome.summaries),
        "published_gavel_avg_jct_h": published,
        "derived_throughputs": dict(exp.table.derived),
    }


def _plot(out: Path, exp: ex.Experiment, outcome: ex.Outcome) -> None:
    """jct_cdf.png (the measured jobs against the lower bound) and utilization.png."""
    measured = [r for r in outcome.results[0].records.values() if exp.measured(r)]
    span = (
        (min(r.arrival for r in measured), max(r.end or r.arrival for r in measured))
        if measured and exp.measured_desc != "all jobs"
        else None
    )
    plot_jct_cdf(
        out / "jct_cdf.png",
        outcome.results,
        exp.measured,
        outcome.lower_jcts,
        f"{exp.name}: JCT, {exp.measured_desc}",
    )
    plot_utilization(out / "utilization.png", outcome.results, f"{exp.name}: accelerators in use", span)


if __name__ == "__main__":
    raise SystemExit(main())
