"""What the chaos tier measures in each one-second sample: pure functions over listed objects.

Each takes what one list call returned (AIJobs, Pods, Nodes as plain dicts), so a sample is judged
at one resourceVersion per kind, and the unit tests (tests/unit/test_chaos_measures.py) show each
measure firing on a made-up cluster. docs/operations.md ("Chaos tier") says what each one means.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

FINISHED = ("Succeeded", "Failed")
LIVE_POD = ("Pending", "Running", "Unknown", None)  # phase None: just created, not yet reported
ACCELERATOR_RESOURCES = ("nvidia.com/gpu", "huawei.com/Ascend910")
JOB_LABEL, RANK_LABEL = "estuary.dev/job-name", "estuary.dev/worker-rank"
ORIGIN_NAME, ORIGIN_NAMESPACE = "estuary.dev/origin-name", "estuary.dev/origin-namespace"


def _count(value: Any) -> int:
    return int(str(value or "0"))


def allocatable(nodes: Iterable[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """(node, accelerator resource) -> allocatable count."""
    out = {}
    for node in nodes:
        for resource, amount in ((node.get("status") or {}).get("allocatable") or {}).items():
            if resource in ACCELERATOR_RESOURCES:
                out[(node["metadata"]["name"], resource)] = _count(amount)
    return out


def bound_overallocation(
    pods: Iterable[dict[str, Any]], capacity: dict[tuple[str, str], int]
) -> dict[tuple[str, str], int]:
    """(node, resource) -> accelerators requested by the live pods bound there beyond allocatable."""
    used: Counter[tuple[str, str]] = Counter()
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or (pod.get("status") or {}).get("phase") not in LIVE_POD:
            continue
        for container in pod["spec"].get("containers") or []:
            for resource, amount in ((container.get("resources") or {}).get("requests") or {}).items():
                if resource in ACCELERATOR_RESOURCES:
                    used[(node, resource)] += _count(amount)
    return {key: n - capacity.get(key, 0) for key, n in used.items() if n > capacity.get(key, 0)}


def booking_overallocation(
    jobs: Iterable[dict[str, Any]], capacity: dict[tuple[str, str], int]
) -> dict[tuple[str, str], int]:
    """(node, resource) -> accelerators Estuary's own bookings place there beyond allocatable: the
    `status.placement` of every unfinished job placed in this cluster (a released job keeps its
    placement, and its accelerators, until its pods are gone), workers x acceleratorsPerWorker."""
    booked: Counter[tuple[str, str]] = Counter()
    for job in jobs:
        status = job.get("status") or {}
        placement = status.get("placement") or {}
        if status.get("phase") in FINISHED or not placement or placement.get("link"):
            continue
        for node in placement.get("nodes") or []:
            booked[(node, placement["resource"])] += int(job["spec"]["acceleratorsPerWorker"])
    return {key: n - capacity.get(key, 0) for key, n in booked.items() if n > capacity.get(key, 0)}


def _owner(pod: dict[str, Any]) -> str:
    refs = [r for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")]
    return refs[0]["uid"] if refs else f"label:{pod['metadata'].get('labels', {}).get(JOB_LABEL)}"


def duplicate_workers(pods: Iterable[dict[str, Any]]) -> list[str]:
    """Job ranks with more than one live worker pod in one cluster (any attempt): the same worker
    running twice. Keys: namespace/job#rank."""
    seen: Counter[tuple[str, str, str]] = Counter()
    names: dict[tuple[str, str, str], str] = {}
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        if JOB_LABEL not in labels or (pod.get("status") or {}).get("phase") not in LIVE_POD:
            continue
        key = (pod["metadata"]["namespace"], _owner(pod), labels.get(RANK_LABEL, "?"))
        seen[key] += 1
        names[key] = f"{key[0]}/{labels[JOB_LABEL]}#{key[2]}"
    return sorted(names[key] for key, n in seen.items() if n > 1)


def _running_jobs(pods: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    """(namespace, job name) of every job with a Running worker pod."""
    return {
        (p["metadata"]["namespace"], p["metadata"]["labels"][JOB_LABEL])
        for p in pods
        if JOB_LABEL in (p["metadata"].get("labels") or {})
        and (p.get("status") or {}).get("phase") == "Running"
    }


def double_runs(
    home_pods: Iterable[dict[str, Any]],
    partner_pods: Iterable[dict[str, Any]],
    copies: Iterable[dict[str, Any]],
) -> list[str]:
    """Home jobs with Running workers in both clusters at once, or in two copies at the partner.
    A copy names its origin job in the labels estuary.dev/origin-namespace and -name."""
    origin = {}
    for copy in copies:
        labels = copy["metadata"].get("labels") or {}
        if ORIGIN_NAME in labels:
            origin[(copy["metadata"]["namespace"], copy["metadata"]["name"])] = (
                labels.get(ORIGIN_NAMESPACE, "?"),
                labels[ORIGIN_NAME],
            )
    away: defaultdict[tuple[str, str], int] = defaultdict(int)
    for key in _running_jobs(partner_pods):
        if key in origin:
            away[origin[key]] += 1
    home = _running_jobs(home_pods)
    return sorted(f"{ns}/{name}" for (ns, name), n in away.items() if n > 1 or (ns, name) in home)


@dataclass
class StuckWatch:
    """Unfinished jobs whose state has not changed for `limit_s` while they hold accelerators in
    this cluster (a placement and no link): a gang admitted or running that goes nowhere, or one
    released whose accelerators are never given back. Waiting without a placement is not stuck
    here (the queue may be full); whether every job finished is judged at the end of the run."""

    limit_s: float
    since: dict[str, tuple[tuple[Any, ...], float]] = field(default_factory=dict)
    stuck: dict[str, str] = field(default_factory=dict)  # job -> what it was stuck in

    def observe(self, jobs: Iterable[dict[str, Any]], now: float) -> list[str]:
        """Record a sample; returns the jobs stuck at this moment."""
        out = []
        for job in jobs:
            key = f"{job['metadata']['namespace']}/{job['metadata']['name']}"
            status = job.get("status") or {}
            placement = status.get("placement") or {}
            state = (
                status.get("phase"),
                status.get("reason"),
                status.get("attempt"),
                tuple(placement.get("nodes") or ()),
            )
            if key not in self.since or self.since[key][0] != state:
                self.since[key] = (state, now)
            holding = placement and not placement.get("link") and status.get("phase") not in FINISHED
            if holding and now - self.since[key][1] >= self.limit_s:
                out.append(key)
                self.stuck.setdefault(
                    key, f"{status.get('phase')}/{status.get('reason')} on {placement.get('nodes')}"
                )
        return out
