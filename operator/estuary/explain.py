"""`estuary explain`: why a job is where it is, for every accepted accelerator type, with numbers."""

from __future__ import annotations

import argparse
import time

from kubernetes import client, config

from estuary.control.controller import Controller, Settings
from estuary.core import explain
from estuary.kube import listing
from estuary.state import codec
from estuary.state.cache import ClusterCache


def render(job_key: str, cache: ClusterCache, jurisdiction: str | None, now: float) -> str:
    raw = cache.get("aijobs", job_key)
    if raw is None:
        return f"AIJob {job_key} not found"
    controller = Controller(cache, api=None, settings=Settings(jurisdiction=jurisdiction))  # type: ignore[arg-type]
    jobs = controller.parse_jobs(now)
    snapshot, _ = controller.snapshot(jobs, now)
    job = jobs.get(job_key)
    if job is None:
        return f"AIJob {job_key} is not valid: {(raw.get('status') or {}).get('message')}"
    status = raw.get("status") or {}
    lines = [
        f"AIJob {job_key} (tenant {job.tenant}, priority {job.obj.spec.priority})",
        f"  phase:    {status.get('phase', 'New')}",
    ]
    if status.get("placement"):
        p = status["placement"]
        lines.append(
            f"  runs on:  {p['cluster']} pool {p['pool']} ({p['vendor']} {p['model']}), "
            f"nodes {', '.join(p.get('nodes', []))}"
        )
    if status.get("queuePosition"):
        lines.append(f"  position: {status['queuePosition']} in the queue")
    if status.get("reason"):
        lines.append(f"  reason:   {status['reason']}: {status.get('message', '')}")
    request = codec.job_request(job.obj, job.tenant)
    lines.append("  accelerator types, in the job's order of preference:")
    verdicts = explain(snapshot, request, now)
    if not verdicts:
        lines.append("    no ComputePool offers any of them")
    for v in verdicts:
        verdict = "fits now" if v.fits else f"{v.reason.value if v.reason else 'no'}"
        lines.append(
            f"    {v.vendor}/{v.model} in pool {v.pool}: {verdict} - {v.message} "
            f"(relative runtime {v.est_runtime_factor:.2f})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="estuary explain", description=__doc__)
    parser.add_argument("name", help="AIJob name")
    parser.add_argument("-n", "--namespace", default="default")
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--jurisdiction", default=None, help="this cluster's jurisdiction")
    args = parser.parse_args(argv)
    config.load_kube_config(config_file=args.kubeconfig)
    cache = ClusterCache()
    listing.load(client.ApiClient(), cache)
    print(render(f"{args.namespace}/{args.name}", cache, args.jurisdiction, time.time()))
    return 0
