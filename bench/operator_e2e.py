"""Operator speed on a real local control plane, against a plain client on the same API server.

Starts its own kwok cluster (NVIDIA + Ascend nodes), then in one run:
  1. baseline: a plain client creates pods equivalent to the jobs' workers (same resources, pinned
     to nodes) as fast as it can; we time creation and binding (all Running);
  2. Estuary: the operator runs as a child process; AIJobs of 1-8 workers are created at once; we
     time admission, binding, and each job's creation-to-all-workers-Running latency;
and prints medians, p99s, rates and Estuary's rate as a ratio of the baseline's, plus the operator's
CPU seconds, peak memory and API writes per job (from its own metrics).

    python bench/operator_e2e.py                 # 1,000 nodes, 1,000 jobs (minutes)
    python bench/operator_e2e.py --smoke         # 20 nodes, 20 jobs (seconds; used in CI)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "hack"))
sys.path.insert(0, str(REPO / "bench"))

from kubernetes import client, watch  # noqa: E402

from benchkit import (  # noqa: E402
    GROUP,
    TYPES,
    VERSION,
    aijob,
    create_pools,
    prepare,
    quiesce,
    start_operator,
    wait_ready,
)
from devcluster import binaries, clusters, topology  # noqa: E402
from estuary.api.aijob import AIJob  # noqa: E402
from estuary.control.pods import choice_for  # noqa: E402
from estuary.kube import render  # noqa: E402
from estuary.model import PoolSpec  # noqa: E402
from estuary.vendors import profiles  # noqa: E402


def cluster_spec(nodes: int) -> topology.ClusterSpec:
    half = max(nodes // 2, 1)
    pools = tuple(
        topology.NodePool(
            name=model.lower(),
            count=half,
            vendor=vendor,
            model=model,
            resource=resource,
            accelerators_per_node=8,
            cpu="96",
            memory="1024Gi",
            pods="110",
            labels={"topology.kubernetes.io/zone": "bench-a"},
        )
        for vendor, model, resource in TYPES
    )
    return topology.ClusterSpec(name="bench", jurisdiction="hk", node_pools=pools)


def job_shapes(count: int, seed: int, capacity: int) -> list[tuple[int, int]]:
    """(workers, accelerators per worker): 1-8 workers, 1-8 accelerators, seeded; at most `count`
    jobs and at most 3/4 of `capacity` in all, so every job can run at once (the latency measured
    is the operator's, not queueing for capacity)."""
    rnd = random.Random(seed)
    shapes: list[tuple[int, int]] = []
    used = 0
    for _ in range(count * 10):
        workers, per = rnd.choice([1, 1, 1, 2, 2, 4, 8]), rnd.choice([1, 2, 4, 8])
        if len(shapes) == count:
            break
        if used + workers * per <= capacity * 3 // 4:
            used += workers * per
            shapes.append((workers, per))
    return shapes


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


class Mark:
    """Records, per object (by name), the first time a watch sees it in a state."""

    def __init__(self, done: Callable[[dict[str, Any]], bool]) -> None:
        self.done = done
        self.seen: dict[str, float] = {}


class RawWatch(watch.Watch):  # type: ignore[misc]
    """Events as the API server's JSON: never turned into the client's models (V1Pod and back
    cost the bench more CPU than the operator it measures, on the same 2 cores)."""

    def get_return_type(self, func: Any) -> None:
        return None


class Watcher:
    """One watch of one kind feeding several marks (one connection, each event parsed once)."""

    def __init__(self, stream: Any, marks: list[Mark], **kwargs: Any) -> None:
        self.marks = marks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(stream, kwargs), daemon=True)
        self._thread.start()

    def _run(self, stream: Any, kwargs: dict[str, Any]) -> None:
        while not self._stop.is_set():
            try:
                for event in RawWatch().stream(stream, timeout_seconds=30, **kwargs):
                    obj, now = event["raw_object"], time.monotonic()
                    for mark in self.marks:
                        if mark.done(obj):
                            mark.seen.setdefault(obj["metadata"]["name"], now)
                    if self._stop.is_set():
                        break
            except Exception:  # a dropped watch restarts; the bench measures, it does not judge
                time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()


def admitted_or_running(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") in ("Admitted", "Running")


def job_running(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") == "Running"


def watch_jobs(custom: client.CustomObjectsApi, namespace: str, *marks: Mark) -> Watcher:
    return Watcher(
        custom.list_namespaced_custom_object,
        list(marks),
        group=GROUP,
        version=VERSION,
        namespace=namespace,
        plural="aijobs",
    )


def _pod_running(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") == "Running"


def placements(
    shapes: list[tuple[int, int]], nodes: list[tuple[str, str, int]]
) -> list[tuple[int, str, str, int]]:
    """(job index, node, resource, accelerators) per worker: pinned to the first node with room,
    as a plain client that did the placing itself would."""
    free = {name: cap for name, _, cap in nodes}
    resource_of = {name: res for name, res, _ in nodes}
    out = []
    for j, (workers, per) in enumerate(shapes):
        for _ in range(workers):
            node = next((n for n in sorted(free) if free[n] >= per), None)
            if node is None:
                break
            free[node] -= per
            out.append((j, node, resource_of[node], per))
    return out


def pinned_pod(name: str, node: str, resource: str, per: int) -> dict[str, Any]:
    amount = {"cpu": "1", "memory": "1Gi", resource: str(per)}
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "tolerations": [{"operator": "Exists"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
                }
            },
            "containers": [
                {"name": "w", "image": "bench", "resources": {"requests": amount, "limits": amount}}
            ],
        },
    }


def _until_running(running: Mark, count: int, start: float) -> float:
    """Seconds from `start` until `count` pods were Running (NaN if none ever was)."""
    deadline = time.monotonic() + 600
    while len(running.seen) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return (max(running.seen.values()) - start) if running.seen else float("nan")


def baseline(
    api: client.ApiClient, namespace: str, shapes: list[tuple[int, int]], nodes: list[tuple[str, str, int]]
) -> dict[str, float]:
    """Plain client: one pod per worker, pinned to nodes with room, created serially."""
    core = client.CoreV1Api(api)
    pods = [
        (f"base-{j}-{i}", node, res, per) for i, (j, node, res, per) in enumerate(placements(shapes, nodes))
    ]
    running = Mark(_pod_running)
    watcher = Watcher(core.list_namespaced_pod, [running], namespace=namespace)
    busy = quiesce()
    start = time.monotonic()
    for name, node, resource, per in pods:
        core.create_namespaced_pod(namespace, pinned_pod(name, node, resource, per))
    created = time.monotonic() - start
    bound = _until_running(running, len(pods), start)
    watcher.stop()
    core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
    return {
        "pods": len(pods),
        "create_s": created,
        "create_per_s": len(pods) / created,
        "running_s": bound,
        "running_per_s": len(running.seen) / bound,
        "start_busy": busy,
    }


def _bare_objects(name: str, workers: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """A headless Service that selects nothing, and bare pinned pods."""
    service = {"metadata": {"name": name}, "spec": {"clusterIP": "None", "selector": {"job": name}}}
    return [service] + [pinned_pod(f"{name}-w{rank}", *worker) for rank, worker in enumerate(workers)]


def _estuary_objects(job: dict[str, Any], workers: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """The headless Service and worker pods Estuary's own renderer makes of the created AIJob,
    pinned where `placements` put them (in the pools `create_pools` makes, which tolerate all)."""
    model_job = AIJob.model_validate(job)
    out = [render.service(model_job)]
    for rank, (node, resource, _) in enumerate(workers):
        vendor, model = next((v, m) for v, m, r in TYPES if r == resource)
        pool = PoolSpec(model.lower(), vendor, model, resource)
        choice, profile = choice_for(model_job, pool), profiles()[vendor]
        tolerate_all = [{"operator": "Exists"}]
        out.append(
            render.worker_pod(
                model_job, choice, profile, resource, pool.name, node, rank, len(workers), 1, tolerate_all
            )
        )
    return out


def api_floor(
    api: client.ApiClient,
    namespace: str,
    shapes: list[tuple[int, int]],
    nodes: list[tuple[str, str, int]],
    own_objects: bool = False,
) -> dict[str, float]:
    """The API requests of Estuary's burst up to the pods, sent by a plain client with no
    decisions to make: the AIJobs created one after another as in `estuary` (the user's part),
    and as each is created, on 8 threads, a dry run of its first worker, the admission status,
    the headless Service and the workers (the operator's part). The pods-Running rate no operator
    that keeps those requests can pass on this API server (the Running status is left out, so
    the floor is if anything too kind). `own_objects`: the Service and pods are Estuary's own
    (kube/render.py: the launch environment, owner, labels, DNS name; the Service selects them,
    so the controller-manager keeps its Endpoints), not a bare pod and a Service that selects
    nothing: what any operator that creates Estuary's objects can reach. Its objects are deleted
    afterwards."""
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    by_job: dict[int, list[tuple[str, str, int]]] = {}
    for j, node, resource, per in placements(shapes, nodes):
        by_job.setdefault(j, []).append((node, resource, per))
    running = Mark(_pod_running)
    watcher = Watcher(core.list_namespaced_pod, [running], namespace=namespace)

    def operator_side(j: int, job: dict[str, Any]) -> None:
        name, workers = job["metadata"]["name"], by_job[j]
        service, *pods = _estuary_objects(job, workers) if own_objects else _bare_objects(name, workers)
        core.create_namespaced_pod(namespace, pods[0], dry_run="All")
        status = {"status": {"phase": "Admitted", "reason": "Admitted", "message": "admitted", "attempt": 1}}
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "aijobs", name, status)
        core.create_namespaced_service(namespace, service)
        for pod in pods:
            core.create_namespaced_pod(namespace, pod)

    busy = quiesce()
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as threads:
        done = []
        for j in sorted(by_job):
            body = aijob(f"floor-{j}", *shapes[j])
            job = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "aijobs", body)
            done.append(threads.submit(operator_side, j, job))
        for answer in done:
            answer.result()
    pods = sum(len(w) for w in by_job.values())
    bound = _until_running(running, pods, start)
    watcher.stop()
    core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
    for svc in core.list_namespaced_service(namespace).items:  # before their owners: no race with GC
        core.delete_namespaced_service(svc.metadata.name, namespace)
    custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, "aijobs")
    return {"pods": pods, "running_s": bound, "running_per_s": len(running.seen) / bound, "start_busy": busy}


def estuary(
    api: client.ApiClient, kubeconfig: Path, namespace: str, shapes: list[tuple[int, int]], workdir: Path
) -> dict[str, float]:
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    create_pools(custom)
    port = 19000 + os.getpid() % 1000
    proc = start_operator(kubeconfig, workdir / "operator.log", port)
    try:
        wait_ready(port, proc)  # timing starts once the operator is up, however loaded the machine
        admitted, running, pods = Mark(admitted_or_running), Mark(job_running), Mark(_pod_running)
        watchers = [
            watch_jobs(custom, namespace, admitted, running),
            Watcher(core.list_namespaced_pod, [pods], namespace=namespace),
        ]
        created: dict[str, float] = {}
        busy = quiesce()
        start = time.monotonic()
        for j, (workers, per) in enumerate(shapes):
            name = f"job-{j}"
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "aijobs", aijob(name, workers, per)
            )
            created[name] = time.monotonic()
        create_s = time.monotonic() - start
        deadline = time.monotonic() + 900
        expected_pods = sum(w for w, _ in shapes)
        while len(running.seen) < len(shapes) and time.monotonic() < deadline:
            time.sleep(0.5)
        for w in watchers:
            w.stop()
        latencies = [running.seen[n] - created[n] for n in running.seen]
        admit_s = max(admitted.seen.values()) - start if admitted.seen else float("nan")
        bound_s = max(pods.seen.values()) - start if pods.seen else float("nan")
        samples = _scrape(f"http://127.0.0.1:{port}/metrics")
        writes = sum(v for k, v in samples.items() if k.startswith("estuary_api_requests_total"))
        cpu_s, peak_mb = _process_usage(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    return {
        "jobs": len(shapes),
        "jobs_running": len(running.seen),
        "pods": expected_pods,
        "create_s": create_s,
        "admitted_per_s": len(admitted.seen) / admit_s,
        "pods_running_per_s": len(pods.seen) / bound_s,
        "p50_create_to_running_s": statistics.median(latencies) if latencies else float("nan"),
        "p99_create_to_running_s": pct(latencies, 0.99),
        "operator_cpu_s": cpu_s,
        "operator_peak_rss_mb": peak_mb,
        "api_writes_per_job": writes / max(len(shapes), 1),
        "start_busy": busy,
    }


def clear_jobs(api: client.ApiClient, namespace: str, timeout: float = 120) -> None:
    """Delete a namespace's AIJobs and pods and wait until no pod is left (their accelerators are
    free again for the next round)."""
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, "aijobs")
    core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
    deadline = time.monotonic() + timeout
    while core.list_namespaced_pod(namespace, limit=1).items and time.monotonic() < deadline:
        time.sleep(0.5)


def _scrape(url: str) -> dict[str, float]:
    out = {}
    for line in urllib.request.urlopen(url, timeout=5).read().decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _process_usage(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) and peak resident memory of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmHWM")
    )
    return cpu, peak / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="20 nodes, 20 jobs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.nodes, args.jobs = 20, 20
    shapes = job_shapes(args.jobs, args.seed, capacity=args.nodes * 8)
    workdir = Path(tempfile.mkdtemp(prefix="estuary-bench-"))
    manager = clusters.Manager(binaries.ensure(), workdir / "kwok", clusters.Progress())
    spec = cluster_spec(args.nodes)
    handle = manager.start(spec, workdir / "kubeconfig")
    try:
        prepare(handle, ("baseline", "estuary"))
        api = handle.api_client()
        nodes = [
            (f"{p.name}-{i}", p.resource, p.accelerators_per_node)
            for p in spec.node_pools
            for i in range(p.count)
        ]
        base = baseline(api, "baseline", shapes, nodes)
        ours = estuary(api, handle.kubeconfig, "estuary", shapes, workdir)
    finally:
        manager.stop(spec.name)
    ratio = {
        "admission_rate_vs_plain_pod_creation": ours["admitted_per_s"]
        * (base["pods"] / max(len(shapes), 1))
        / base["create_per_s"],
        "pods_running_rate_vs_plain_client": ours["pods_running_per_s"] / base["running_per_s"],
    }
    report = {
        "machine": {"cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d")},
        "nodes": args.nodes,
        "baseline": base,
        "estuary": ours,
        "ratios": ratio,
    }
    print(
        f"\nOperator on the local control plane: {args.nodes} nodes, {len(shapes)} jobs "
        f"({ours['pods']} worker pods), seed {args.seed}"
    )
    print(
        f"  plain client : {base['create_per_s']:8.1f} pods created/s, "
        f"{base['running_per_s']:8.1f} pods Running/s ({base['pods']} pods)"
    )
    print(
        f"  estuary      : {ours['admitted_per_s']:8.1f} jobs admitted/s, "
        f"{ours['pods_running_per_s']:8.1f} pods Running/s ({ours['jobs_running']} jobs Running)"
    )
    print(
        f"  create->Running per job: p50 {ours['p50_create_to_running_s']:.2f}s, "
        f"p99 {ours['p99_create_to_running_s']:.2f}s"
    )
    print(
        f"  operator: {ours['operator_cpu_s']:.1f} CPU s, peak RSS {ours['operator_peak_rss_mb']:.0f} MB, "
        f"{ours['api_writes_per_job']:.1f} API writes per job"
    )
    print(f"  ratio pods Running/s, estuary / plain client: {ratio['pods_running_rate_vs_plain_client']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if ours["jobs_running"] == len(shapes) else 1


if __name__ == "__main__":
    sys.exit(main())
