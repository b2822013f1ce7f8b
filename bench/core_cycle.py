"""Scheduling-core cycle time: 10,000 pending jobs over 1,000 nodes, against baselines.

One cycle of ``estuary.core.run_cycle`` is what the operator runs after every change; its cost
bounds how fast Estuary reacts and how fast the simulator replays. The cluster (1,000 nodes of 8
accelerators: V100, P100, K80, Ascend) is first filled to about 90% by running jobs, then 10,000
pending jobs of Philly's sizes (mostly 1 accelerator, some 2-32) are offered. Reported: the median
of repeated cycles per policy, and its ratio to two baselines measured in the same run on the same
input: the core with the "any_free" strict-FIFO policy, and a trivial first-fit pass that looks at
every job once (a floor for any scheduler in Python).

    .venv/bin/python bench/core_cycle.py            # full size (about a minute)
    .venv/bin/python bench/core_cycle.py --smoke    # seconds (CI)
    .venv/bin/python bench/core_cycle.py --profile  # where the time goes (cProfile, top 25)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))

from estuary.core import Policy, run_cycle  # noqa: E402
from estuary.model import Assignment, JobRequest, RunningJob, Snapshot  # noqa: E402
from estuary.sim.cli import default_data_dir  # noqa: E402
from estuary.sim.cluster import POOL_LABEL, SimCluster, pool_decl  # noqa: E402
from estuary.sim.throughputs import load_default  # noqa: E402
from estuary.sim.traces import load_philly  # noqa: E402
from estuary.sim.workload import to_sim_job  # noqa: E402


def build(nodes: int, jobs: int, fill: float, data: Path) -> tuple[Snapshot, list[JobRequest]]:
    table = load_default(data)
    quarter = nodes // 4
    cluster = SimCluster(
        "bench",
        (
            pool_decl("v100", "v100", quarter, 8),
            pool_decl("p100", "p100", quarter, 8),
            pool_decl("k80", "k80", quarter, 8),
            pool_decl("ascend", "ascend910", nodes - 3 * quarter, 8),
        ),
    )
    trace, _ = load_philly(data / "philly" / "philly.csv", table, limit=jobs * 3, max_accelerators=32)
    requests = [s.request for s in (to_sim_job(t, cluster, table) for t in trace) if s is not None]
    pools = cluster.pool_specs(table, "v100")
    node_infos = cluster.nodes()
    free = {n: info.capacity[pools[info.labels[POOL_LABEL]].resource] for n, info in node_infos.items()}
    by_pool = {p: [n for n, info in node_infos.items() if info.labels[POOL_LABEL] == p] for p in pools}
    target = fill * cluster.accelerators
    used = 0
    running: dict[str, RunningJob] = {}
    rest: list[JobRequest] = []
    for req in requests:  # fill the cluster first-fit until `fill` of it is busy
        placed = None
        if used < target:
            for p in pools:
                if not any(a.matches(pools[p].vendor, pools[p].model) for a in req.accepted):
                    continue
                chosen = [n for n in by_pool[p] if free[n] >= req.per_worker.accelerators][: req.workers]
                if len(chosen) == req.workers:
                    placed = Assignment(p, tuple(chosen))
                    break
        if placed is None:
            rest.append(req)
            continue
        for n in placed.nodes:
            free[n] -= req.per_worker.accelerators
        used += req.workers * req.per_worker.accelerators
        running[req.key] = RunningJob(req, placed, started=0.0)
    return Snapshot(pools=pools, nodes=node_infos, running=running), rest[:jobs]


def first_fit(snapshot: Snapshot, pending: Sequence[JobRequest]) -> int:
    """The floor: one pass, each job placed on the first nodes with room in its first matching pool."""
    free: dict[str, int] = {}
    for name, info in snapshot.nodes.items():
        pool = snapshot.pools[info.labels[POOL_LABEL]]
        free[name] = info.capacity.get(pool.resource, 0)
    for r in snapshot.running.values():
        for n in r.assignment.nodes:
            free[n] -= r.job.per_worker.accelerators
    by_pool: dict[str, list[str]] = {}
    for name, info in snapshot.nodes.items():
        by_pool.setdefault(info.labels[POOL_LABEL], []).append(name)
    admitted = 0
    for job in pending:
        for pname, pool in snapshot.pools.items():
            if not any(a.matches(pool.vendor, pool.model) for a in job.accepted):
                continue
            chosen = [n for n in by_pool[pname] if free[n] >= job.per_worker.accelerators][: job.workers]
            if len(chosen) == job.workers:
                for n in chosen:
                    free[n] -= job.per_worker.accelerators
                admitted += 1
                break
    return admitted


def cycle(snapshot: Snapshot, pending: Sequence[JobRequest], policy: Policy) -> Callable[[], object]:
    return lambda: run_cycle(snapshot, pending, 0.0, policy)


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times = []
    out: object = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--nodes", type=int, default=1_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--fill", type=float, default=0.9, help="share of accelerators busy before the cycle")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--smoke", action="store_true", help="200 jobs, 40 nodes, 3 repeats")
    ap.add_argument("--profile", action="store_true", help="profile one Estuary cycle (cProfile, top 25)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.jobs, args.nodes, args.repeats = 200, 40, 3
    data = args.data or default_data_dir()

    t0 = time.perf_counter()
    snapshot, pending = build(args.nodes, args.jobs, args.fill, data)
    setup = time.perf_counter() - t0
    busy = sum(r.job.workers * r.job.per_worker.accelerators for r in snapshot.running.values())
    print(
        f"core cycle benchmark: {len(pending)} pending jobs, {len(snapshot.nodes)} nodes, "
        f"{len(snapshot.running)} running jobs holding {busy} accelerators; setup {setup:.1f} s; "
        f"python {platform.python_version()}, median of {args.repeats}"
    )

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run_cycle(snapshot, pending, 0.0, Policy())
        prof.disable()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(25)
        print(s.getvalue())
        return 0

    floor, admitted_ff = median_time(lambda: first_fit(snapshot, pending), args.repeats)
    rows: list[tuple[str, float, int]] = [("first-fit pass (floor)", floor, int(str(admitted_ff)))]
    policies = {
        "estuary (Policy())": Policy(),
        "any_free strict FIFO": Policy(type_choice="any_free", backfill=False),
        "any_free + backfill": Policy(type_choice="any_free", backfill=True),
    }
    for name, policy in policies.items():
        t, res = median_time(cycle(snapshot, pending, policy), args.repeats)
        rows.append((name, t, len(getattr(res, "admissions", ()))))
    base = {n: t for n, t, _ in rows}["any_free strict FIFO"]
    print(f"{'cycle':28s} {'median ms':>10s} {'admitted':>9s} {'x first-fit':>12s} {'x any_free FIFO':>16s}")
    for name, t, admitted in rows:
        print(f"{name:28s} {t * 1e3:10.1f} {admitted:9d} {t / floor:12.1f} {t / base:16.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
