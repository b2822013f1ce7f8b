"""Merge a job's pod template with the parts of a worker pod that Estuary owns (pure functions).

The template is the starting point; the container named `worker` (added when the template has
none) receives the image, launcher, rendezvous environment, resources and rendezvous port, and
Estuary's volumes (`/dev/shm`, the checkpoint mount). The CRD already refused any template that
sets what Estuary owns (`api/ownership.py`), so nothing here has to pick a winner for those; what
both may set is merged: env (Estuary's first, so the job's variables may refer to them as
`$(MASTER_ADDR)`; the job's value replaces a vendor default), resources (the job's other
resources such as `rdma/hca` are kept), ports, volumes and volumeMounts.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from estuary.api.aijob import AIJobSpec
from estuary.api.ownership import WORKER_CONTAINER, is_owned_env

SHM_VOLUME = "estuary-shm"
CHECKPOINT_ENV = "ESTUARY_CHECKPOINT_DIR"


@dataclass(frozen=True)
class OwnedParts:
    """What Estuary puts into the worker container."""

    image: str
    command: list[str]
    args: list[str]
    env: dict[str, str]  # Estuary's variables and the vendor's defaults
    job_env: list[dict[str, Any]]  # spec.env, in order
    resources: dict[str, str]  # requests = limits
    port: int


def _merge_env(
    owned: dict[str, str], job_env: list[dict[str, Any]], template_env: list[dict[str, Any]]
) -> list:  # type: ignore[type-arg]
    mine = [{"name": k, "value": v} for k, v in sorted(owned.items())]
    # The CRD refused owned names already; only a vendor profile added after the CRD was generated
    # (ESTUARY_VENDOR_PROFILES) can slip one through, and then Estuary's value still wins.
    theirs = [e for e in job_env + template_env if not is_owned_env(e["name"])]
    named = {e["name"] for e in theirs}
    merged = [e for e in mine if e["name"] not in named] + theirs
    # One entry per name, the last one winning (the template's over spec.env), in first-seen order.
    last = {e["name"]: e for e in merged}
    return [last[n] for n in dict.fromkeys(e["name"] for e in merged)]


def _worker(spec: AIJobSpec, owned: OwnedParts, base: dict[str, Any]) -> dict[str, Any]:
    worker = copy.deepcopy(base)
    worker.update({"name": WORKER_CONTAINER, "image": owned.image})
    if owned.command:
        worker["command"] = owned.command
    if owned.args:
        worker["args"] = owned.args
    worker["env"] = _merge_env(owned.env, owned.job_env, base.get("env") or [])
    resources = worker.setdefault("resources", {})
    for part in ("requests", "limits"):
        resources[part] = {**(resources.get(part) or {}), **owned.resources}
    ports = worker.get("ports") or []
    if not any(p.get("containerPort") == owned.port for p in ports):
        ports = [{"name": "rendezvous", "containerPort": owned.port}, *ports]
    worker["ports"] = ports
    mounts = list(worker.get("volumeMounts") or [])
    if spec.shm_size is not None:
        mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})
    if spec.checkpoint is not None:
        mount = {"name": spec.checkpoint.volume, "mountPath": spec.checkpoint.mount_path}
        if spec.checkpoint.sub_path:
            mount["subPath"] = spec.checkpoint.sub_path
        mounts.append(mount)
    if mounts:
        worker["volumeMounts"] = mounts
    return worker


def merge_pod_spec(spec: AIJobSpec, owned: OwnedParts) -> dict[str, Any]:
    """The worker pod's spec before the per-worker fields (node pin, hostname, ...) are set."""
    pod = copy.deepcopy(spec.pod_spec)
    containers = pod.get("containers") or []
    base: dict[str, Any] = next((c for c in containers if c.get("name") == WORKER_CONTAINER), {})
    others = [c for c in containers if c.get("name") != WORKER_CONTAINER]
    pod["containers"] = [_worker(spec, owned, base), *others]
    if spec.shm_size is not None:
        shm = {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": str(spec.shm_size)}}
        pod["volumes"] = [*(pod.get("volumes") or []), shm]
    selector = spec.pool_node_selector()
    if selector:
        pod["nodeSelector"] = selector
    pod.setdefault("enableServiceLinks", False)
    return pod
