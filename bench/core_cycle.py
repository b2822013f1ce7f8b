"""Scheduling-core cycle time: 10,000 pending jobs over 1,000 nodes, against a floor and the old core.

One cycle of ``estuary.core.run_cycle`` is what the operator runs after every change; its cost
bounds how fast Estuary reacts and how fast the simulator replays. The cluster (1,000 nodes of 8
accelerators: V100, P100, K80, Ascend) is first filled to about 90% by running jobs, then 10,000
pending jobs of Philly's sizes (mostly 1 accelerator, some 2-32) are offered. Measured, interleaved
in the same run on the same inputs, per policy:
  - first-fit: a trivial pass that looks at every job once (a floor for any scheduler in Python);
  - before: the frozen copy of the core before the incremental cycle (tests/unit/core/reference);
  - cold: ``run_cycle`` with a fresh ``CycleState`` (the first cycle after a start);
  - steady: ``run_cycle`` with the ``CycleState`` of the previous cycle, after that cycle's
    admissions started and one running job finished (what a running scheduler sees).
Printed: medians of wall and CPU time, and ratios (of CPU times) to first-fit and to before. On
a shared machine the wall time includes waiting for a core; the CPU time of this single-threaded
process is what a call takes on a quiet machine, and the ratios are measured in the same run.

    .venv/bin/python bench/core_cycle.py            # full size (a few minutes)
    .venv/bin/python bench/core_cycle.py --smoke    # seconds (CI)
    .venv/bin/python bench/core_cycle.py --profile  # where a steady cycle spends its time (cProfile)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))
sys.path.insert(0, str(REPO))

from tests.unit.core import reference  # noqa: E402  (the frozen core before the incremental cycle)

from estuary.core import CycleState, Policy, run_cycle  # noqa: E402
from estuary.model import Assignment, CycleResult, JobRequest, RunningJob, Snapshot  # noqa: E402
from estuary.sim.cli import default_data_dir  # noqa: E402
from estuary.sim.cluster import POOL_LABEL, SimCluster, pool_decl  # noqa: E402
from estuary.sim.policies import POLICIES  # noqa: E402
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


def advance(snapshot: Snapshot, pending: list[JobRequest], result: CycleResult, step: int) -> Inputs:
    """The next cycle's input: the admitted jobs run, and one running job finished."""
    jobs = {j.key: j for j in pending}
    running = dict(snapshot.running)
    for a in result.admissions:
        running[a.job_key] = RunningJob(jobs[a.job_key], a.assignment, started=float(step))
    del running[sorted(running)[(7919 * step) % len(running)]]
    admitted = {a.job_key for a in result.admissions}
    return Snapshot(snapshot.pools, snapshot.nodes, running), [j for j in pending if j.key not in admitted]


Inputs = tuple[Snapshot, list[JobRequest]]


def admitted(out: object) -> int:
    return out if isinstance(out, int) else len(out.admissions)  # type: ignore[attr-defined]


Times = dict[str, list[float]]


def timed(times: Times, name: str, fn: Callable[..., object], *args: object, **kwargs: object) -> object:
    """Call fn; append its wall time to times[name] and its CPU time to times["cpu " + name]. On a
    shared machine the CPU time is what the call would take alone (the process is single-threaded);
    the wall time includes waiting for a core."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    times.setdefault(name, []).append(time.perf_counter() - t0)
    times.setdefault(f"cpu {name}", []).append(time.process_time() - c0)
    return out


def measure(snapshot: Snapshot, pending: list[JobRequest], policy: Policy, repeats: int) -> Times:
    """Interleaved: first-fit, before and cold on the initial input; then, along a sequence of
    steady cycles, first-fit, before and steady on each next input."""
    times: Times = {}
    frozen = reference.frozen_policy(policy)
    for _ in range(repeats):
        for name, fn, args, kwargs in (
            ("first-fit", first_fit, (snapshot, pending), {}),
            ("before", reference.run_cycle, (snapshot, pending, 0.0, frozen), {}),
            ("cold", run_cycle, (snapshot, pending, 0.0, policy), {"state": CycleState()}),
        ):
            out = timed(times, name, fn, *args, **kwargs)
            times.setdefault(f"{name} admitted", []).append(admitted(out))
    state = CycleState()
    inputs: Inputs = (snapshot, pending)
    result = run_cycle(*inputs, 0.0, policy, state=state)
    for step in range(1, repeats + 1):
        inputs = advance(*inputs, result, step)
        timed(times, "steady first-fit", first_fit, *inputs)
        timed(times, "steady before", reference.run_cycle, *inputs, 0.0, frozen)
        out = timed(times, "steady", run_cycle, *inputs, 0.0, policy, state=state)
        assert isinstance(out, CycleResult)
        result = out
    return times


def report(name: str, times: Times) -> None:
    """Medians, wall and CPU; ratios of CPU times (the wall's follow the machine's load)."""
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = [  # label, measured, its first-fit floor, its "before" (for the x before column)
        ("first-fit pass (floor)", "first-fit", "first-fit", None),
        ("before (frozen core)", "before", "first-fit", None),
        ("cold (fresh state)", "cold", "first-fit", "before"),
        ("steady: first-fit pass", "steady first-fit", "steady first-fit", None),
        ("steady: before", "steady before", "steady first-fit", None),
        ("steady (carried state)", "steady", "steady first-fit", "steady before"),
    ]
    print(
        f"\n{name}: admitted in the first cycle {med['cold admitted']:.0f} "
        f"(before {med['before admitted']:.0f}, first-fit {med['first-fit admitted']:.0f})"
    )
    print(
        f"  {'cycle':26s} {'wall ms':>9s} {'CPU ms':>9s} {'x first-fit':>12s} {'x before':>9s}"
        f" {'(wall x first-fit)':>19s}"
    )
    for label, key, floor, before in rows:
        cpu = med[f"cpu {key}"]
        ratio = "" if before is None else f"{cpu / med[f'cpu {before}']:9.3f}"
        print(
            f"  {label:26s} {med[key] * 1e3:9.1f} {cpu * 1e3:9.1f} {cpu / med[f'cpu {floor}']:12.3f}"
            f" {ratio:>9s} {med[key] / med[floor]:19.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--nodes", type=int, default=1_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--fill", type=float, default=0.9, help="share of accelerators busy before the cycle")
    ap.add_argument("--policies", default="estuary,fifo-agnostic,agnostic-backfill")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--smoke", action="store_true", help="200 jobs, 40 nodes, 3 repeats")
    ap.add_argument("--profile", action="store_true", help="profile one steady cycle (cProfile, top 25)")
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
        f"python {platform.python_version()}, median of {args.repeats}; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    if args.profile:
        state = CycleState()
        first = run_cycle(snapshot, pending, 0.0, Policy(), state=state)
        inputs = advance(snapshot, pending, first, 1)
        prof = cProfile.Profile()
        prof.enable()
        run_cycle(*inputs, 0.0, Policy(), state=state)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())
        return 0
    for name in args.policies.split(","):
        report(name, measure(snapshot, pending, POLICIES[name].policy, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
