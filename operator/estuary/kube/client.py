"""The one seam between Estuary and the API server: every write the operator makes goes here.

Small on purpose (like httpx's Transport): the controller depends on the `KubeApi` protocol, the
operator passes `RealKubeApi`, and unit tests pass an in-memory fake. `RealKubeApi` is also the
usage ledger's `LedgerStore` (ledger.py).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from estuary import metrics
from estuary.api.base import GROUP, VERSION

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"
COMPONENT = "estuary-operator"
LEDGERS = "usageledgers"


class KubeApi(Protocol):
    def create(self, manifest: dict[str, Any]) -> None:
        """Create a Pod or Service; an existing one of that name counts as done."""

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None = None) -> None:
        """Delete a pod; a missing one counts as done."""

    def patch_job_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch an AIJob's status subresource; returns the updated object."""

    def patch_pool_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch a ComputePool's status subresource; returns the updated object."""

    def delete_job(self, namespace: str, name: str) -> None:
        """Delete an AIJob (time-to-live expired)."""

    def event(self, obj: dict[str, Any], kind: str, warning: bool, reason: str, message: str) -> None:
        """Record a Kubernetes event on an object."""


def _ignore(err: ApiException, *codes: int) -> None:
    if err.status not in codes:
        raise err


class RealKubeApi:
    """`KubeApi` on the official client (thread-safe; used from the controller thread)."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        # Events are best effort: posted in the background so they never slow a decision down.
        self._events = ThreadPoolExecutor(max_workers=2, thread_name_prefix="estuary-events")

    def create(self, manifest: dict[str, Any]) -> None:
        namespace = manifest["metadata"]["namespace"]
        metrics.record_api_request("create", manifest["kind"].lower() + "s")
        try:
            if manifest["kind"] == "Pod":
                self.core.create_namespaced_pod(namespace, manifest)
            elif manifest["kind"] == "Service":
                self.core.create_namespaced_service(namespace, manifest)
            else:
                raise ValueError(f"cannot create {manifest['kind']}")
        except ApiException as err:
            _ignore(err, 409)

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None = None) -> None:
        metrics.record_api_request("delete", "pods")
        try:
            self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=grace_seconds)
        except ApiException as err:
            _ignore(err, 404)

    def patch_job_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        metrics.record_api_request("patch", "aijobs/status")
        out: dict[str, Any] = self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "aijobs", name, {"status": status}, _content_type=MERGE_PATCH
        )
        return out

    def patch_pool_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        metrics.record_api_request("patch", "computepools/status")
        out: dict[str, Any] = self.custom.patch_cluster_custom_object_status(
            GROUP, VERSION, "computepools", name, {"status": status}, _content_type=MERGE_PATCH
        )
        return out

    def delete_job(self, namespace: str, name: str) -> None:
        metrics.record_api_request("delete", "aijobs")
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "aijobs", name)
        except ApiException as err:
            _ignore(err, 404)

    # ---- UsageLedgers (ledger.py: LedgerStore) ------------------------------------------------
    def list_ledgers(self) -> list[dict[str, Any]]:
        return list(self.custom.list_cluster_custom_object(GROUP, VERSION, LEDGERS)["items"])

    def create_ledger(self, manifest: dict[str, Any]) -> None:
        metrics.record_api_request("create", LEDGERS)
        try:
            self.custom.create_cluster_custom_object(GROUP, VERSION, LEDGERS, manifest)
        except ApiException as err:
            _ignore(err, 409)

    def patch_ledger_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        metrics.record_api_request("patch", f"{LEDGERS}/status")
        out: dict[str, Any] = self.custom.patch_cluster_custom_object_status(
            GROUP, VERSION, LEDGERS, name, {"status": status}, _content_type=MERGE_PATCH
        )
        return out

    def event(self, obj: dict[str, Any], kind: str, warning: bool, reason: str, message: str) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": kind,
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "type": "Warning" if warning else "Normal",
            "reason": reason,
            "message": message[:1000],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self._events.submit(self._post_event, namespace, body)

    def _post_event(self, namespace: str, body: dict[str, Any]) -> None:
        metrics.record_api_request("create", "events")
        try:
            self.core.create_namespaced_event(namespace, body)
        except Exception as err:  # events are best effort; never fail a decision over one
            involved = body["involvedObject"]
            log.warning(
                "could not record event %s on %s %s: %s",
                body["reason"],
                involved["kind"],
                involved["name"],
                getattr(err, "reason", type(err).__name__),
            )
