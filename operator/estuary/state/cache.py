"""In-memory view of the cluster, fed by watch events, read by the controller.

Watch handlers call `apply()`; the controller's own writes call it with the object the API server
returned, so the next cycle already sees them (Kueue's "assume"). An event older than what is held
(by resourceVersion) is ignored, so a late watch event never undoes a newer write.

A job's pods are the pods whose controller owner reference is that AIJob (by uid), never pods that
merely carry its labels: anyone may label a pod, only the API server sets a uid.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

KINDS = ("aijobs", "computepools", "nodes", "pods", "namespaces", "federationlinks")
Obj = dict[str, Any]
# Labels kube/render.py puts on every worker pod (a unit test keeps the two in step):
JOB_LABEL = "estuary.dev/job-name"  # the job's name: for selectors, never for trust
ATTEMPT_LABEL = "estuary.dev/attempt"  # the gang attempt the worker belongs to


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The controller owner reference of an object, if an AIJob is its controller."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if (
            ref.get("controller")
            and ref.get("kind") == "AIJob"
            and str(ref.get("apiVersion", "")).startswith("estuary.dev/")
        ):
            return dict(ref)
    return None


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    """Whether the AIJob with this uid is the object's controller."""
    ref = controller_of(obj)
    return bool(uid) and ref is not None and ref.get("uid") == uid


def _version(obj: Mapping[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


def key_of(obj: Mapping[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta["name"])


class ClusterCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, Obj]] = {kind: {} for kind in KINDS}
        self._pods_by_job: dict[str, set[str]] = defaultdict(set)
        self.changed = threading.Event()

    def apply(self, kind: str, event_type: str | None, obj: Obj) -> None:
        """Record a watch event (ADDED, MODIFIED, DELETED, or None for the initial listing)."""
        key = key_of(obj)
        with self._lock:
            store = self._objects[kind]
            if event_type == "DELETED":
                store.pop(key, None)
                if kind == "pods":
                    self._unindex_pod(key, obj)
            else:
                held = store.get(key)
                if held is not None and _version(held) > _version(obj):
                    return
                if kind == "pods" and held is not None:
                    self._unindex_pod(key, held)
                store[key] = obj
                if kind == "pods":
                    self._index_pod(key, obj)
        self.changed.set()

    def _index_pod(self, key: str, pod: Obj) -> None:
        ref = controller_of(pod)
        if ref is not None:
            self._pods_by_job[f"{pod['metadata']['namespace']}/{ref.get('name')}"].add(key)

    def _unindex_pod(self, key: str, pod: Obj) -> None:
        ref = controller_of(pod)
        if ref is not None:
            self._pods_by_job[f"{pod['metadata']['namespace']}/{ref.get('name')}"].discard(key)

    def replace_all(self, kind: str, objects: list[Obj]) -> None:
        """Start from a full listing (operator start): nothing stale survives."""
        with self._lock:
            self._objects[kind] = {}
            if kind == "pods":
                self._pods_by_job.clear()
        for obj in objects:
            self.apply(kind, None, obj)

    def get(self, kind: str, key: str) -> Obj | None:
        with self._lock:
            return self._objects[kind].get(key)

    def items(self, kind: str) -> dict[str, Obj]:
        """A shallow copy: safe to iterate while events keep arriving."""
        with self._lock:
            return dict(self._objects[kind])

    def pods_of(self, job_key: str, uid: str) -> list[Obj]:
        """The pods the AIJob `job_key` with this uid controls (by owner reference)."""
        with self._lock:
            pods = self._objects["pods"]
            held = (pods[k] for k in sorted(self._pods_by_job.get(job_key, ())) if k in pods)
            return [pod for pod in held if owned_by(pod, uid)]

    def tenant_of(self, namespace: str, default: str) -> str:
        ns = self.get("namespaces", namespace)
        labels = (ns or {}).get("metadata", {}).get("labels") or {}
        return str(labels.get("estuary.dev/tenant") or default)
