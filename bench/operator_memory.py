"""The operator's memory with 10,000 AIJobs, against a plain client holding the same listing.

Starts its own small kwok cluster (NVIDIA + Ascend nodes), creates the AIJobs (most of them can
never fit, so they stay queued with a reason and a verdict per type; a few small ones run and
finish), then in the same run:
  1. baseline: a plain Python process lists every AIJob with the official client and keeps the
     answer (what any Python controller with a cache must at least hold): its resident memory;
  2. Estuary: the operator starts (its cache primed from a listing), writes every job's status,
     and its resident memory is sampled once every job has one (median of samples) and at peak.
Issue #14's target: at most 500 MB with 10,000 AIJobs.

    python bench/operator_memory.py                 # 10,000 jobs (minutes)
    python bench/operator_memory.py --smoke         # 300 jobs (CI)
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubernetes import client

import operator_e2e as e2e
from devcluster import binaries, clusters

NAMESPACE = "memory"
HOLD = """
import os, sys, time
from kubernetes import client, config
config.load_kube_config()
api = client.CustomObjectsApi()
listed = api.list_namespaced_custom_object("estuary.dev", "v1alpha1", "memory", "aijobs")
rss = next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]
print(len(listed["items"]), int(rss) / 1024)
"""


def create_jobs(api: client.ApiClient, count: int, finishing: int) -> None:
    """`finishing` small jobs that run for a second, the rest too big for the cluster."""
    custom = client.CustomObjectsApi(api)

    def one(i: int) -> None:
        if i < finishing:
            body = e2e.aijob(f"small-{i}", 1, 1)
            body["metadata"]["annotations"] = {"estuary.dev/sim-duration-ms": "1000"}
        else:
            body = e2e.aijob(f"big-{i}", 64, 8)
        custom.create_namespaced_custom_object(e2e.GROUP, e2e.VERSION, NAMESPACE, "aijobs", body)

    with ThreadPoolExecutor(max_workers=8) as threads:
        list(threads.map(one, range(count)))


def rss_mb(pid: int) -> float:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def has_status(obj: dict[str, Any]) -> bool:
    return bool((obj.get("status") or {}).get("phase"))


def operator_memory(api: client.ApiClient, kubeconfig: Path, count: int, workdir: Path) -> dict[str, float]:
    started = time.monotonic()
    proc = e2e.start_operator(kubeconfig, workdir / "operator-memory.log")
    told = e2e.Mark(has_status)  # one watch, not a listing of 10,000 jobs every few seconds
    watcher = e2e.watch_jobs(client.CustomObjectsApi(api), NAMESPACE, told)
    try:
        deadline = time.monotonic() + 1800
        while len(told.seen) < count and time.monotonic() < deadline:
            time.sleep(5)
        settled_s = time.monotonic() - started
        statuses = len(told.seen)
        watcher.stop()
        samples = []
        for _ in range(6):  # the steady state: every job has its status, the loop keeps ticking
            samples.append(rss_mb(proc.pid))
            time.sleep(5)
        cpu_s, peak_mb = e2e._process_usage(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    return {
        "rss_mb": statistics.median(samples),
        "peak_mb": peak_mb,
        "cpu_s": cpu_s,
        "all_statuses_s": settled_s,
        "with_status": statuses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--finishing", type=int, default=200, help="small jobs that run and finish")
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--smoke", action="store_true", help="300 jobs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.jobs, args.finishing = 300, 20
    workdir = Path(tempfile.mkdtemp(prefix="estuary-bench-"))
    manager = clusters.Manager(binaries.ensure(), workdir / "kwok", clusters.Progress())
    spec = e2e.cluster_spec(args.nodes)
    handle = manager.start(spec, workdir / "kubeconfig")
    try:
        e2e.prepare(handle, (NAMESPACE,))
        api = handle.api_client()
        e2e.create_pools(client.CustomObjectsApi(api))
        began = time.monotonic()
        create_jobs(api, args.jobs, args.finishing)
        create_s = time.monotonic() - began
        env = {**os.environ, "KUBECONFIG": str(handle.kubeconfig)}
        held = subprocess.run(
            [sys.executable, "-c", HOLD], env=env, capture_output=True, text=True, check=True
        )
        listed, plain_mb = held.stdout.split()
        ours = operator_memory(api, handle.kubeconfig, args.jobs, workdir)
    finally:
        manager.stop(spec.name)
    plain = float(plain_mb)
    print(f"\nOperator memory: {args.jobs} AIJobs ({args.finishing} run and finish), {args.nodes} nodes")
    print(f"  created in {create_s:.0f} s; plain client holding the listing of {listed}: {plain:.0f} MB")
    print(
        f"  Estuary: RSS {ours['rss_mb']:.0f} MB (median of 6 samples once {ours['with_status']:.0f} jobs "
        f"had a status, {ours['all_statuses_s']:.0f} s after start), peak {ours['peak_mb']:.0f} MB, "
        f"{ours['cpu_s']:.0f} CPU s"
    )
    print(
        f"  ratio Estuary / plain client: {ours['rss_mb'] / plain:.2f}; "
        f"{(ours['rss_mb'] - plain) * 1024 / args.jobs:.1f} KB per job beyond the plain listing"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
