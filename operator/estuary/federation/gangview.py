"""What the origin reads back from an attempt at an agentless provider (pure): the gang's state
from its pods, all or nothing, as the AIJob copy at an Estuary partner would show it.

`view()` builds the dict `remote.view()` reads from a copy (phase, reason, message, placement,
start and completion times on the provider's clock), so following, spend and the lease handshake
need not know which kind of partner they follow. Reasons only an agentless attempt has: `Fenced`
(a worker's fence stopped it or refused to start it), `WorkerFailed`, `WorkersLost` (a worker pod
was removed there: the provider's Kueue preempted the group, or someone deleted it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from estuary.api.aijob import Phase
from estuary.federation.attempt import ACCELERATOR, CREATED, SUSPEND, WORKERS
from estuary.fence import pod as fencepod
from estuary.kube import render

FENCED, WORKER_FAILED, WORKERS_LOST = "Fenced", "WorkerFailed", "WorkersLost"


def _worker_pods(pods: Iterable[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    out: dict[int, Mapping[str, Any]] = {}
    for pod in pods:
        rank = (pod["metadata"].get("labels") or {}).get(render.RANK_LABEL)
        if rank is not None and rank.isdigit():
            out[int(rank)] = pod
    return out


def _exit(pod: Mapping[str, Any]) -> str:
    name, node = pod["metadata"]["name"], (pod.get("spec") or {}).get("nodeName") or "?"
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            why = term.get("reason") or "Error"
            return f"worker {name} on node {node} exited with code {term.get('exitCode')} ({why})"
    return f"worker {name} on node {node} failed ({(pod.get('status') or {}).get('reason') or 'Failed'})"


def _waiting(pods: Mapping[int, Mapping[str, Any]], workers: int, queue: str | None) -> str:
    running = sum(1 for p in pods.values() if (p.get("status") or {}).get("phase") == "Running")
    for pod in pods.values():
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                if cond.get("reason") == "SchedulingGated" and queue:
                    return f"waiting for admission in the provider's Kueue queue {queue}"
                why = cond.get("message") or cond.get("reason")
                return f"{running} of {workers} workers running; {pod['metadata']['name']}: {why}"
    return f"{running} of {workers} workers running"


def gang(
    pods: Sequence[Mapping[str, Any]], workers: int, created: bool, suspended: bool, queue: str | None = None
) -> tuple[str | None, str | None, str]:
    """(phase, reason, message) of an attempt from its pods, as the partner's job controller would
    say it for a copy: all or nothing, whole gangs."""
    if suspended:
        return Phase.SUSPENDED.value, "Suspended", "suspended: its workers were removed"
    ranks = _worker_pods(pods)
    for pod in ranks.values():
        report = fencepod.fence_report(dict(pod))
        if report is not None:
            return Phase.FAILED.value, FENCED, f"worker {pod['metadata']['name']}: {report}"
    failed = [p for p in ranks.values() if (p.get("status") or {}).get("phase") == "Failed"]
    if failed:
        return Phase.FAILED.value, WORKER_FAILED, _exit(failed[0])
    missing = [r for r in range(workers) if r not in ranks or ranks[r]["metadata"].get("deletionTimestamp")]
    if missing and created:
        lost = ", ".join(render.pod_name("", r).lstrip("-") for r in missing)
        return (
            Phase.FAILED.value,
            WORKERS_LOST,
            f"{lost} removed at the provider (preempted there, or deleted)",
        )
    phases = [(ranks[r].get("status") or {}).get("phase") for r in range(workers) if r in ranks]
    if len(phases) == workers and all(p == "Succeeded" for p in phases):
        return Phase.SUCCEEDED.value, "Succeeded", f"all {workers} workers succeeded"
    if len(phases) == workers and all(p in ("Running", "Succeeded") for p in phases):
        return Phase.RUNNING.value, "Running", f"all {workers} workers running"
    return Phase.ADMITTED.value, "Admitted", _waiting(ranks, workers, queue)


def _times(pods: Iterable[Mapping[str, Any]], phase: str | None) -> tuple[str | None, str | None]:
    """(start, completion) on the provider's clock: all workers running, and the last one done."""
    starts = [str((p.get("status") or {}).get("startTime") or "") for p in pods]
    start = max(starts) if starts and all(starts) and phase != Phase.ADMITTED.value else None
    ends = [
        str(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt") or "")
        for p in pods
        for cs in (p.get("status") or {}).get("containerStatuses") or []
    ]
    done = max(ends) if ends and all(ends) and phase in (Phase.SUCCEEDED.value, Phase.FAILED.value) else None
    return start, done


def view(
    lease: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]], queue: str | None = None
) -> dict[str, Any]:
    """The attempt as an AIJob copy would show it (`remote.view()` reads it). `lease` None: only
    pods are left (their ConfigMap was deleted); they still count until they are gone."""
    source = lease if lease is not None else pods[0]
    meta = source["metadata"]
    notes = dict(meta.get("annotations") or {})
    name = meta["name"] if lease is not None else (meta.get("labels") or {}).get(render.JOB_LABEL, "")
    workers = int(notes.get(WORKERS) or len(pods))
    suspended = notes.get(SUSPEND) == "true"
    phase, reason, message = gang(pods, workers, notes.get(CREATED) == "true", suspended, queue)
    vendor, _, model = notes.get(ACCELERATOR, "/").partition("/")
    ranks = _worker_pods(pods)
    start, done = _times(ranks.values(), phase)
    placement = {
        "pool": (meta.get("namespace") or ""),
        "vendor": vendor,
        "model": model,
        "nodes": [str((ranks[r].get("spec") or {}).get("nodeName") or "") for r in sorted(ranks)],
        "workers": workers,
    }
    status = {"phase": phase, "reason": reason, "message": message, "placement": placement}
    status.update({"accelerator": f"{vendor}/{model}", "startTime": start, "completionTime": done})
    out_meta = {
        "name": name,
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid") if lease is not None else "",
        "labels": dict(meta.get("labels") or {}),
        "annotations": notes,
    }
    if lease is not None and meta.get("deletionTimestamp"):
        out_meta["deletionTimestamp"] = meta["deletionTimestamp"]
    elif lease is None and all(p["metadata"].get("deletionTimestamp") for p in pods):
        out_meta["deletionTimestamp"] = pods[0]["metadata"]["deletionTimestamp"]
    return {
        "metadata": out_meta,
        "spec": {"suspend": suspended},
        "status": {k: v for k, v in status.items() if v is not None},
    }
