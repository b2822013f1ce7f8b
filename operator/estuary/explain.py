"""`estuary explain`: why a job is where it is, for every accepted accelerator type, with numbers.

Reads the cluster through the same pure function a controller step starts from
(state/snapshot.py) and asks the core the same question the cycle asks. It never writes: it may
be run by anyone, about anyone's jobs, and an AIJob that does not parse is reported, not raised.
"""

from __future__ import annotations

import time

from kubernetes import client, config

from estuary import core
from estuary.kube import listing
from estuary.state import codec, snapshot
from estuary.state.cache import ClusterCache


def render(job_key: str, cache: ClusterCache, jurisdiction: str | None, now: float) -> str:
    raw = cache.get("aijobs", job_key)
    if raw is None:
        return f"AIJob {job_key} not found"
    view = snapshot.read(cache, now, jurisdiction)
    invalid = view.invalid.get(job_key)
    if invalid is not None:
        return f"AIJob {job_key} is not valid: {invalid.message}"
    job = view.jobs.get(job_key)
    if job is None:
        return f"AIJob {job_key} is being deleted"
    status = job.status
    lines = [
        f"AIJob {job_key} (tenant {job.tenant}, priority {job.obj.spec.priority})",
        f"  phase:    {status.phase or 'New'}",
    ]
    if status.placement is not None:
        p = status.placement
        lines.append(
            f"  runs on:  {p.cluster} pool {p.pool} ({p.vendor} {p.model}), nodes {', '.join(p.nodes)}"
        )
    if status.queue_position:
        lines.append(f"  position: {status.queue_position} in the queue")
    if status.reason:
        lines.append(f"  reason:   {status.reason}: {status.message or ''}")
    lines.append("  accelerator types, in the job's order of preference:")
    verdicts = core.explain(view.snapshot(), codec.job_request(job.obj, job.tenant), now)
    if not verdicts:
        lines.append("    no ComputePool offers any of them")
    for v in verdicts:
        verdict = "fits now" if v.fits else f"{v.reason.value if v.reason else 'no'}"
        lines.append(
            f"    {v.vendor}/{v.model} in pool {v.pool}: {verdict} - {v.message} "
            f"(relative runtime {v.est_runtime_factor:.2f})"
        )
    return "\n".join(lines)


def from_cluster(name: str, namespace: str, kubeconfig: str | None, jurisdiction: str | None) -> str:
    """List the cluster with the kubeconfig's credentials, then render (`estuary explain`)."""
    config.load_kube_config(config_file=kubeconfig)
    cache = ClusterCache()
    listing.load(client.ApiClient(), cache)
    return render(f"{namespace}/{name}", cache, jurisdiction, time.time())
