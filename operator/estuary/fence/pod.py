"""A worker pod with the fence (pure): the two fence containers, a shared emptyDir for their state,
and a shared process namespace so the fence can see and stop the workers.

The fence containers come last among the init containers (after any of the job's own, such as a
data download), so the workers start right after the lease is confirmed. They run as the pod's
user when the pod names one (signals need the same user), else as root with only CAP_KILL. They
request little, and request it explicitly, because a namespace with a ResourceQuota on cpu or
memory refuses containers that do not.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from estuary.fence.lease import LEASE_SECONDS

VOLUME = "estuary-fence"
MOUNT = "/var/run/estuary-fence"
FENCE = "estuary.dev/fence"  # on an AIJob copy: "true" asks for the fence beside its workers
WAIT_CONTAINER = "fence-wait"
WATCH_CONTAINER = "fence"
RESOURCES = {
    "requests": {"cpu": "10m", "memory": "48Mi"},
    "limits": {"cpu": "200m", "memory": "128Mi"},
}


@dataclass(frozen=True)
class FenceSpec:
    image: str
    lease_kind: str  # configmap (agentless provider) | aijob (the copy, at an Estuary partner)
    lease_name: str
    lease_seconds: int
    grace_seconds: int
    period_seconds: float = 2.0


def _args(command: str, fence: FenceSpec, namespace: str) -> list[str]:
    return [
        "fence",
        command,
        "--object",
        f"{fence.lease_kind}/{fence.lease_name}",
        "--namespace",
        namespace,
        "--lease-seconds",
        str(fence.lease_seconds),
        "--grace-seconds",
        str(fence.grace_seconds),
        "--period",
        f"{fence.period_seconds:g}",
        "--state-dir",
        MOUNT,
    ]


def _security(pod_spec: dict[str, Any]) -> dict[str, Any]:
    user = (pod_spec.get("securityContext") or {}).get("runAsUser")
    if user is not None:
        return {"runAsUser": user, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    return {
        "runAsUser": 0,
        "runAsNonRoot": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["KILL"]},
    }


def _container(
    name: str, command: str, fence: FenceSpec, namespace: str, pod_spec: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "image": fence.image,
        "command": ["estuary"],
        "args": _args(command, fence, namespace),
        "resources": copy.deepcopy(RESOURCES),
        "securityContext": _security(pod_spec),
        "volumeMounts": [{"name": VOLUME, "mountPath": MOUNT}],
        "terminationMessagePolicy": "File",
    }
    if command == "watch":
        out["restartPolicy"] = "Always"  # a native sidecar: it runs beside the workers
    return out


def fenced(pod: dict[str, Any], fence: FenceSpec) -> dict[str, Any]:
    """`pod` with the fence added (a new dict; `pod` is not changed)."""
    out = copy.deepcopy(pod)
    spec = out["spec"]
    namespace = out["metadata"]["namespace"]
    spec["shareProcessNamespace"] = True
    spec["volumes"] = [*(spec.get("volumes") or []), {"name": VOLUME, "emptyDir": {"sizeLimit": "1Mi"}}]
    spec["initContainers"] = [
        *(spec.get("initContainers") or []),
        _container(WAIT_CONTAINER, "wait", fence, namespace, spec),
        _container(WATCH_CONTAINER, "watch", fence, namespace, spec),
    ]
    for container in spec["containers"]:  # the workers may read the stop file (read-only)
        mounts = container.setdefault("volumeMounts", [])
        mounts.append({"name": VOLUME, "mountPath": MOUNT, "readOnly": True})
    return out


def fence_report(pod: dict[str, Any]) -> str | None:
    """What the pod's fence said, if it stopped the workers or refused to start them."""
    for status in (pod.get("status") or {}).get("initContainerStatuses") or []:
        if status.get("name") not in (WAIT_CONTAINER, WATCH_CONTAINER):
            continue
        for state in (status.get("state") or {}, status.get("lastState") or {}):
            message = str((state.get("terminated") or {}).get("message") or "")
            if message.startswith("fenced:"):
                return message
    return None


def burst_namespaces(env: Mapping[str, str]) -> frozenset[str]:
    raw = env.get("ESTUARY_BURST_NAMESPACES") or "estuary-burst"
    return frozenset(n.strip() for n in raw.split(",") if n.strip())


def for_copies(
    job: Mapping[str, Any], manifests: list[dict[str, Any]], env: Mapping[str, str] = os.environ
) -> list[dict[str, Any]]:
    """At an Estuary partner: the worker pods of a copy whose origin asked for the fence
    (annotation estuary.dev/fence) get it; the fence reads the copy itself, whose lease token the
    origin renews. Only in a burst namespace: elsewhere the annotation is an ordinary job's (and
    asking for a fence nobody renews could only stop one's own job)."""
    meta = job.get("metadata") or {}
    notes = meta.get("annotations") or {}
    if notes.get(FENCE) != "true" or meta.get("namespace") not in burst_namespaces(env):
        return manifests
    grace = ((job.get("spec") or {}).get("preemption") or {}).get("gracePeriodSeconds", 30)
    spec = FenceSpec(
        env.get("ESTUARY_FENCE_IMAGE") or "estuary",
        "aijob",
        str(meta["name"]),
        int(notes.get(LEASE_SECONDS) or 120),
        int(grace),
    )
    return [fenced(m, spec) if m.get("kind") == "Pod" else m for m in manifests]
