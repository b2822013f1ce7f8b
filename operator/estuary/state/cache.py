"""In-memory view of the cluster, fed by watch events, read by the controller.

Watch handlers call `apply()`; the controller's own writes call it with the object the API server
returned, so the next cycle already sees them. An event older than what is held (by
resourceVersion) is ignored, so a late watch event never undoes a newer write.

A write the controller has decided but not yet sent is *assumed* (Kueue's "assume"): `assume()`
puts the object as it will be in front of the one held, so every read (`get`, `items`) and the
next tick see it (an admitted job and its booked accelerators) while a background worker writes
it; watch events meanwhile update the object behind it. `settle()` drops the assumption once the
write is answered (with the answer) or failed (then the object held shows again: the job is back
in the queue, nothing booked).

What comes in is trimmed first (`trimmed`): `metadata.managedFields` and kubectl's
last-applied-configuration annotation are bookkeeping of who wrote which field, read by nothing
here, and often larger than the rest of the object; with 10,000 AIJobs they would be most of the
operator's memory (bench/operator_memory.py). controller-runtime strips them the same way
(`cache.TransformStripManagedFields`). Keys and strings are interned: every object arrives
decoded on its own, so without it 10,000 jobs hold 10,000 copies of each key and of the same
waiting message (93 MB against 34 MB for 10,000 queued jobs).

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

import sys
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
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


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def trimmed(obj: Obj) -> Obj:
    """The object without what the operator never reads, its strings interned (see the module
    docstring)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k != "managedFields"}
        annotations = meta.get("annotations")
        if annotations and LAST_APPLIED in annotations:
            meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
        obj = {**obj, "metadata": meta}
    compact: Obj = _interned(obj)
    return compact


def _interned(value: Any) -> Any:
    if isinstance(value, dict):
        return {sys.intern(k): _interned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interned(v) for v in value]
    return sys.intern(value) if isinstance(value, str) else value


def key_of(obj: Mapping[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta["name"])


class ClusterCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, Obj]] = {kind: {} for kind in KINDS}
        self._pods_by_job: dict[str, set[str]] = defaultdict(set)
        self._assumed: dict[str, dict[str, Obj]] = {kind: {} for kind in KINDS}
        self._seen: dict[str, int] = dict.fromkeys(KINDS, 0)  # highest resourceVersion applied
        self._tombstones: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
        self.changed = threading.Event()
        self.synced = threading.Event()  # reconciled with a listing taken after the watches listed

    def apply(self, kind: str, event_type: str | None, obj: Obj) -> None:
        """Record a watch event (ADDED, MODIFIED, DELETED, or None for the initial listing)."""
        key = key_of(obj)
        with self._lock:
            self._seen[kind] = max(self._seen[kind], _version(obj))
            store = self._objects[kind]
            held = store.get(key)
            if event_type != "DELETED" and held is not None and _version(held) == _version(obj) > 0:
                return  # the very version held (our write's answer, then its watch event; a relisting)
        obj = trimmed(obj)
        with self._lock:
            store = self._objects[kind]
            if event_type == "DELETED":
                self._tombstones[kind][key] = _version(obj)
                held = store.pop(key, None)
                if kind == "pods":
                    self._unindex_pod(key, held or obj)
            else:
                held = store.get(key)
                version = _version(obj)
                if held is not None and (_version(held) > version or _version(held) == version > 0):
                    return  # older, or the very version held (our write's answer, then its watch event)
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

    def assume(self, kind: str, obj: Obj) -> Obj:
        """Show `obj` in place of the object held under its key until `settle()` (a write decided
        and not yet answered); returns what is shown (for `settle`)."""
        shown = trimmed(obj)
        with self._lock:
            self._assumed[kind][key_of(obj)] = shown
        self.changed.set()
        return shown

    def settle(self, kind: str, key: str, answer: Obj | None = None, assumed: Obj | None = None) -> None:
        """Drop the assumption for `key` (only if it is still `assumed`, when given: a later one
        stays); `answer` (what the API server returned) is applied."""
        with self._lock:
            if assumed is None or self._assumed[kind].get(key) is assumed:
                self._assumed[kind].pop(key, None)
        if answer is not None:
            self.apply(kind, "MODIFIED", answer)
        self.changed.set()

    def seen(self, kind: str) -> int:
        """The highest resourceVersion of this kind applied so far: a watch delivers one kind's
        events in order, so every object written at or before it has been seen."""
        with self._lock:
            return self._seen[kind]

    def reconcile(self, kind: str, objects: Iterable[Obj], list_version: str | None) -> list[str]:
        """Make the cache agree with a full listing taken at `list_version`; return the keys
        dropped. Held objects the list lacks are dropped unless newer than the list (a watch
        event that arrived after it); listed objects are taken unless what is held is newer or a
        deletion newer than them was seen. Without a comparable version, the list wins. The
        objects are taken as they come (a listing read page by page is never whole in memory)."""
        listed: set[str] = set()
        for obj in objects:
            key = key_of(obj)
            listed.add(key)
            with self._lock:
                deleted_after = self._tombstones[kind].get(key, -1) >= _version(obj)
            if not deleted_after:
                self.apply(kind, None, obj)
        at = _version({"metadata": {"resourceVersion": list_version}}) or None
        with self._lock:
            store, tombs = self._objects[kind], self._tombstones[kind]
            gone = [k for k, o in store.items() if k not in listed and (at is None or _version(o) <= at)]
            for key in gone:
                held = store.pop(key)
                if kind == "pods":
                    self._unindex_pod(key, held)
            self._tombstones[kind] = {k: v for k, v in tombs.items() if at is not None and v > at}
        if gone:
            self.changed.set()
        return gone

    def get(self, kind: str, key: str) -> Obj | None:
        with self._lock:
            held, assumed = self._objects[kind].get(key), self._assumed[kind].get(key)
            return assumed if assumed is not None and held is not None else held

    def confirmed(self, kind: str, key: str) -> Obj | None:
        """The object as the API server last confirmed it (no assumption)."""
        with self._lock:
            return self._objects[kind].get(key)

    def items(self, kind: str) -> dict[str, Obj]:
        """A shallow copy (assumed objects in place of those held): safe to iterate while events
        keep arriving. An assumed object whose real one was deleted is not shown."""
        with self._lock:
            out = dict(self._objects[kind])
            out.update((k, v) for k, v in self._assumed[kind].items() if k in out)
            return out

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
