"""Operator latency at a steady arrival rate, and its speed against a plain client, in one run.

Starts its own kwok cluster (NVIDIA + Ascend nodes) and, on the same API server:
  1. plain client: pods equivalent to a burst of jobs' workers, created as fast as it can
     (operator_e2e.baseline): its pods-Running rate is the baseline;
  2. the API floor: the API requests of Estuary's burst up to the pods, sent by a plain client
     with nothing to decide (operator_e2e.api_floor: the AIJobs created one by one as in 3, the
     operator's part on 8 threads), twice: with bare pods and a Service that selects nothing (the
     cost of the requests), and with Estuary's own Service and pods (kube/render.py: what any
     operator that creates Estuary's objects can reach on this API server);
  3. Estuary, burst: the same jobs as AIJobs, created at once (operator_e2e.estuary): pods
     Running per second, as a ratio of the plain client's (issue #14's target: at least 0.7)
     and of the floor with Estuary's objects;
  1-3 are repeated in rounds (5 by default; each in namespaces of its own, the previous round's
  AIJobs deleted first, each burst started once the machine is quiet: benchkit.quiesce) and the
  medians of the per-round ratios printed: one round lasts a few seconds and a single one's ratio
  varies by a fifth or more between rounds;
  4. Estuary, steady: a fresh operator process; AIJobs arrive at a fixed rate (2 jobs/s) into the
     capacity the burst left free, so each job's latency is the operator's, not a backlog's:
     creation -> all workers Running per job (p50, p99), and the API requests per job by kind,
     from the operator's own metrics (the happy path's target: workers + 3 writes).

    python bench/operator_steady.py                  # 200 nodes, 60 s at 2 jobs/s (minutes)
    python bench/operator_steady.py --smoke          # 20 nodes, 10 s, 2 rounds (CI)
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubernetes import client

import operator_e2e as e2e
from devcluster import binaries, clusters

WRITE_VERBS = ("create", "patch", "delete")


def requests(port: int) -> dict[tuple[str, str], float]:
    """The operator's API requests so far, by (verb, resource)."""
    out: dict[tuple[str, str], float] = {}
    for name, value in e2e._scrape(f"http://127.0.0.1:{port}/metrics").items():
        if name.startswith("estuary_api_requests_total{"):
            labels = dict(part.split("=", 1) for part in name[name.index("{") + 1 : -1].split(","))
            out[(labels["verb"].strip('"'), labels["resource"].strip('"'))] = value
    return out


def steady(
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    shapes: list[tuple[int, int]],
    rate: float,
    workdir: Path,
) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)
    port = 18000 + os.getpid() % 1000
    proc = e2e.start_operator(kubeconfig, workdir / "operator-steady.log", port)
    try:
        e2e.wait_ready(port, proc)
        time.sleep(3)  # the burst's jobs seen by a first tick
        before = requests(port)
        admitted, running = e2e.Mark(e2e.admitted_or_running), e2e.Mark(e2e.job_running)
        watcher = e2e.watch_jobs(custom, namespace, admitted, running)
        created: dict[str, float] = {}
        start = time.monotonic()
        for j, (workers, per) in enumerate(shapes):
            time.sleep(max(0.0, start + j / rate - time.monotonic()))
            name = f"steady-{j}"
            custom.create_namespaced_custom_object(
                e2e.GROUP, e2e.VERSION, namespace, "aijobs", e2e.aijob(name, workers, per)
            )
            created[name] = time.monotonic()
        deadline = time.monotonic() + 300
        while len(running.seen) < len(shapes) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)  # let the last writes' counters settle
        watcher.stop()
        after = requests(port)
        cpu_s, peak_mb = e2e._process_usage(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    latencies = [running.seen[n] - created[n] for n in running.seen]
    to_admit = [admitted.seen[n] - created[n] for n in admitted.seen]
    delta = {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}
    jobs = max(len(shapes), 1)
    return {
        "jobs": len(shapes),
        "jobs_running": len(running.seen),
        "workers_per_job": sum(w for w, _ in shapes) / jobs,
        "p50_s": statistics.median(latencies) if latencies else float("nan"),
        "p99_s": e2e.pct(latencies, 0.99),
        "admit_p50_s": statistics.median(to_admit) if to_admit else float("nan"),
        "admit_p99_s": e2e.pct(to_admit, 0.99),
        "writes_per_job": sum(v for (verb, _), v in delta.items() if verb in WRITE_VERBS) / jobs,
        "requests_per_job": {f"{verb} {res}": v / jobs for (verb, res), v in sorted(delta.items())},
        "operator_cpu_s": cpu_s,
        "operator_peak_rss_mb": peak_mb,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--burst-jobs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=2.0, help="steady arrivals, jobs per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long jobs keep arriving")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rounds", type=int, default=5, help="burst rounds (plain, floors, Estuary each); medians"
    )
    parser.add_argument("--smoke", action="store_true", help="20 nodes, 10 burst jobs, 10 s, 2 rounds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.nodes, args.burst_jobs, args.seconds, args.rounds = 20, 10, 10.0, 2
    capacity = args.nodes * 8
    burst = e2e.job_shapes(args.burst_jobs, args.seed, capacity=capacity // 2)  # 3/8 of it at most
    used = sum(w * p for w, p in burst)
    arrivals = e2e.job_shapes(int(args.rate * args.seconds), args.seed + 1, capacity=capacity - used)
    workdir = Path(tempfile.mkdtemp(prefix="estuary-bench-"))
    manager = clusters.Manager(binaries.ensure(), workdir / "kwok", clusters.Progress())
    spec = e2e.cluster_spec(args.nodes)
    handle = manager.start(spec, workdir / "kubeconfig")
    try:
        rounds = [f"r{r}" for r in range(args.rounds)]
        e2e.prepare(
            handle,
            (*(f"{kind}-{r}" for r in rounds for kind in ("baseline", "floor", "own", "estuary")), "steady"),
        )
        api = handle.api_client()
        nodes = [
            (f"{p.name}-{i}", p.resource, p.accelerators_per_node)
            for p in spec.node_pools
            for i in range(p.count)
        ]
        bursts: list[tuple[str, float, float, float, float]] = []  # round, plain, floors, Estuary
        quiet: list[float] = []  # the machine's busy share when each burst started
        every_burst_ran = True
        for previous, r in zip([None, *rounds], rounds, strict=False):  # one API server for all
            if previous is not None:  # the last round's jobs stay: the steady jobs fill what is left
                e2e.clear_jobs(api, f"estuary-{previous}")
            base = e2e.baseline(api, f"baseline-{r}", burst, nodes)
            floor = e2e.api_floor(api, f"floor-{r}", burst, nodes)
            own = e2e.api_floor(api, f"own-{r}", burst, nodes, own_objects=True)
            ours = e2e.estuary(api, handle.kubeconfig, f"estuary-{r}", burst, workdir)
            rates = (base["running_per_s"], floor["running_per_s"], own["running_per_s"])
            bursts.append((r, *rates, ours["pods_running_per_s"]))
            quiet += [base["start_busy"], floor["start_busy"], own["start_busy"], ours["start_busy"]]
            every_burst_ran = every_burst_ran and ours["jobs_running"] == ours["jobs"]
        flow = steady(api, handle.kubeconfig, "steady", arrivals, args.rate, workdir)
    finally:
        manager.stop(spec.name)
    print(f"\nOperator on the local control plane: {args.nodes} nodes, {os.cpu_count()} cores")
    print(
        f"  burst of {len(burst)} jobs ({sum(w for w, _ in burst)} workers), pods Running/s per round: "
        "plain client; the same jobs' API requests without an operator (the API floor: AIJobs created "
        "one by one; per job on 8 threads: dry run, admission status, Service, workers) with bare pods, "
        "and with Estuary's own Service and pods (what any operator creating those objects can reach "
        "here); Estuary; each started once the machine was quiet (CPUs busy at most "
        f"{max(quiet):.0%} over the second before)"
    )
    for r, plain, floor_rate, own_rate, ours_rate in bursts:
        print(
            f"    round {r}: plain {plain:6.1f}, floor {floor_rate:6.1f} ({floor_rate / plain:.2f}), "
            f"with Estuary's objects {own_rate:6.1f} ({own_rate / plain:.2f}), "
            f"Estuary {ours_rate:6.1f} (ratio {ours_rate / plain:.2f}; "
            f"of that floor {ours_rate / own_rate:.2f})"
        )
    medians = [statistics.median(rates[i] / rates[0] for _, *rates in bursts) for i in (1, 2, 3)]
    print(
        f"  median of {len(bursts)} rounds, per plain client: floor {medians[0]:.2f}, floor with "
        f"Estuary's objects {medians[1]:.2f}, Estuary {medians[2]:.2f}"
    )
    print(
        f"  steady {args.rate:g} jobs/s, {flow['jobs']} jobs ({flow['workers_per_job']:.2f} workers/job): "
        f"create -> all workers Running p50 {flow['p50_s']:.2f} s, p99 {flow['p99_s']:.2f} s "
        f"({flow['jobs_running']} Running); create -> Admitted p50 {flow['admit_p50_s']:.2f} s, "
        f"p99 {flow['admit_p99_s']:.2f} s"
    )
    extra = flow["writes_per_job"] - flow["workers_per_job"]
    print(
        f"  API writes per job {flow['writes_per_job']:.2f} (workers + {extra:.2f}); "
        f"operator {flow['operator_cpu_s']:.1f} CPU s, peak RSS {flow['operator_peak_rss_mb']:.0f} MB"
    )
    for what, per_job in flow["requests_per_job"].items():
        print(f"    {what:32s} {per_job:6.2f} per job")
    return 0 if flow["jobs_running"] == flow["jobs"] and every_burst_ran else 1


if __name__ == "__main__":
    sys.exit(main())
