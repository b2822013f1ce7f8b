"""In-memory view of the cluster, fed by watch events, read by the controller.

Watch handlers call `apply()`; the controller's own writes call it with the object the API server
returned, so the next cycle already sees them (Kueue's "assume"). An event older than what is held
(by resourceVersion) is ignored, so a late watch event never undoes a newer write.

A watch can miss events: those between the operator's first listing and the start of its watches,
or those lost when a watch is re-made after a gap (410 Gone). So the cache is reconciled with a
fresh listing (`reconcile`): what the list lacks and is not newer than the list is dropped, what
it holds is added unless a deletion newer than it was already seen (a tombstone), and the handlers
(handlers/resync.py) do that once every watch has listed and then periodically. `synced` is set
after the first such reconcile; the controller acts only then.

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
        self._tombstones: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
        self.changed = threading.Event()
        self.synced = threading.Event()  # reconciled with a listing taken after the watches listed

    def apply(self, kind: str, event_type: str | None, obj: Obj) -> None:
        """Record a watch event (ADDED, MODIFIED, DELETED, or None for the initial listing)."""
        key = key_of(obj)
        with self._lock:
            store = self._objects[kind]
            if event_type == "DELETED":
                self._tombstones[kind][key] = _version(obj)
                held = store.pop(key, None)
                if kind == "pods":
                    self._unindex_pod(key, held or obj)
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

    def reconcile(self, kind: str, objects: list[Obj], list_version: str | None) -> list[str]:
        """Make the cache agree with a full listing taken at `list_version`; return the keys
        dropped. Held objects the list lacks are dropped unless newer than the list (a watch
        event that arrived after it); listed objects are taken unless what is held is newer or a
        deletion newer than them was seen. Without a comparable version, the list wins."""
        listed = {key_of(obj): obj for obj in objects}
        at = _version({"metadata": {"resourceVersion": list_version}}) or None
        with self._lock:
            store, tombs = self._objects[kind], self._tombstones[kind]
            gone = [k for k, o in store.items() if k not in listed and (at is None or _version(o) <= at)]
            for key in gone:
                held = store.pop(key)
                if kind == "pods":
                    self._unindex_pod(key, held)
            fresh = [obj for key, obj in listed.items() if tombs.get(key, -1) < _version(obj)]
            self._tombstones[kind] = {k: v for k, v in tombs.items() if at is not None and v > at}
        for obj in fresh:
            self.apply(kind, None, obj)
        if gone:
            self.changed.set()
        return gone

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
