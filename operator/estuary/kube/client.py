"""The one seam between Estuary and the API server: every write the operator makes goes here.

Small on purpose (like httpx's Transport): the controller depends on the `KubeApi` protocol, the
operator passes `RealKubeApi`, and unit tests pass an in-memory fake.

Every request has a timeout (`TIMEOUT`: connect, read), so a hung connection can never freeze the
loop, and every answer (an error status too) tells `health` the API server is there. A create the
API server refuses as invalid or forbidden raises `Refused` with the server's own words; a name
already taken returns the object that holds it, for the caller to check who owns it.
`RealKubeApi` is also the usage ledger's `LedgerStore` (ledger.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from estuary import metrics
from estuary.api.base import GROUP, VERSION
from estuary.health import HEALTH, Health

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"
JSON = "application/json"
# The answer to a create as its metadata only (the API server's PartialObjectMetadata transform;
# plain JSON where a server does not offer it): the operator reads only the owner and the
# resourceVersion of what it created, and a whole pod costs the API server to encode and the
# operator to decode, 156 times in a burst of 53 jobs (bench/README.md).
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json"
COMPONENT = "estuary-operator"
TIMEOUT = (5.0, 20.0)  # seconds to connect, seconds to wait for an answer (docs/operations.md)
PING_TIMEOUT = (5.0, 10.0)
REFUSALS = (400, 403, 422)  # BadRequest, Forbidden (admission, quota), Invalid


class Refused(Exception):
    """The API server refused to create an object (HTTP 400, 403 or 422): the same object would be
    refused again. `message` is the server's, e.g. 'Pod "x" is invalid: spec.containers[0].image:
    Required value'."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def server_message(err: ApiException) -> str:
    """The message of the API server's Status answer (its reason when the body is not one)."""
    try:
        return str(json.loads(err.body or "{}").get("message") or err.reason)
    except (ValueError, AttributeError):
        return str(err.reason)


LEDGERS = "usageledgers"


class KubeApi(Protocol):
    def create(self, manifest: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """Create a Pod or Service (or only check it, server-side, with `dry_run`); returns the
        metadata (at least) of the object, or of the one that already holds its name. Raises
        `Refused`."""

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

    def ping(self) -> None:
        """Ask the API server for its version (health: proves the connection answers)."""


def _ignore(err: ApiException, *codes: int) -> None:
    if err.status not in codes:
        raise err


class RealKubeApi:
    """`KubeApi` on the official client (thread-safe; used from the controller thread)."""

    def __init__(self, api_client: client.ApiClient, health: Health = HEALTH) -> None:
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.version = client.VersionApi(api_client)
        self.health = health
        # Events are best effort: posted in the background so they never slow a decision down.
        self._events = ThreadPoolExecutor(max_workers=2, thread_name_prefix="estuary-events")

    @contextmanager
    def _answered(self) -> Iterator[None]:
        """Note any answer of the API server (an error status is an answer too)."""
        try:
            yield
        except ApiException:
            self.health.api_answered()
            raise
        self.health.api_answered()

    def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = JSON,
        accept: str = JSON,
    ) -> dict[str, Any]:
        """One request, its body and answer as plain JSON. The client's generated methods check
        every argument with pydantic and walk the body through its models first: a fifth of the
        operator's CPU while workers start (bench/operator_steady.py), for checks the API server
        makes anyway. Authentication is the client's own (`auth_settings`, token refresh too)."""
        api = self.core.api_client
        request = api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Accept": accept, "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        with self._answered():
            answer = api.call_api(*request, _request_timeout=TIMEOUT)
            answer.read()
            if not 200 <= answer.status <= 299:
                raise ApiException.from_response(http_resp=answer, body=None, data=None)
        out: dict[str, Any] = json.loads(answer.data)
        return out

    def create(self, manifest: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        namespace, name, kind = (
            manifest["metadata"]["namespace"],
            manifest["metadata"]["name"],
            manifest["kind"],
        )
        if kind not in ("Pod", "Service"):
            raise ValueError(f"cannot create {kind}")
        plural = kind.lower() + "s"
        metrics.record_api_request("dryrun" if dry_run else "create", plural)
        query = [("dryRun", "All")] if dry_run else []
        path = f"/api/v1/namespaces/{namespace}/{plural}"
        try:
            return self._send("POST", path, manifest, query, accept=METADATA_ONLY)
        except ApiException as err:
            if err.status == 409:
                return self._send("GET", f"{path}/{name}", accept=METADATA_ONLY)
            if err.status in REFUSALS:
                raise Refused(err.status, server_message(err)) from None
            raise

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None = None) -> None:
        metrics.record_api_request("delete", "pods")
        try:
            with self._answered():
                self.core.delete_namespaced_pod(
                    name, namespace, grace_period_seconds=grace_seconds, _request_timeout=TIMEOUT
                )
        except ApiException as err:
            _ignore(err, 404)

    def patch_job_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        metrics.record_api_request("patch", "aijobs/status")
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/aijobs/{name}/status"
        return self._send("PATCH", path, {"status": status}, content_type=MERGE_PATCH)

    def patch_pool_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        metrics.record_api_request("patch", "computepools/status")
        path = f"/apis/{GROUP}/{VERSION}/computepools/{name}/status"
        return self._send("PATCH", path, {"status": status}, content_type=MERGE_PATCH)

    def delete_job(self, namespace: str, name: str) -> None:
        metrics.record_api_request("delete", "aijobs")
        try:
            with self._answered():
                self.custom.delete_namespaced_custom_object(
                    GROUP, VERSION, namespace, "aijobs", name, _request_timeout=TIMEOUT
                )
        except ApiException as err:
            _ignore(err, 404)

    def ping(self) -> None:
        with self._answered():
            self.version.get_code(_request_timeout=PING_TIMEOUT)

    # ---- UsageLedgers (ledger.py: LedgerStore) ------------------------------------------------
    def list_ledgers(self) -> list[dict[str, Any]]:
        with self._answered():
            listed = self.custom.list_cluster_custom_object(GROUP, VERSION, LEDGERS, _request_timeout=TIMEOUT)
        return list(listed["items"])

    def create_ledger(self, manifest: dict[str, Any]) -> None:
        metrics.record_api_request("create", LEDGERS)
        try:
            with self._answered():
                self.custom.create_cluster_custom_object(
                    GROUP, VERSION, LEDGERS, manifest, _request_timeout=TIMEOUT
                )
        except ApiException as err:
            _ignore(err, 409)

    def patch_ledger_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        metrics.record_api_request("patch", f"{LEDGERS}/status")
        path = f"/apis/{GROUP}/{VERSION}/{LEDGERS}/{name}/status"
        return self._send("PATCH", path, {"status": status}, content_type=MERGE_PATCH)

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
            with self._answered():
                self.core.create_namespaced_event(namespace, body, _request_timeout=TIMEOUT)
        except Exception as err:  # events are best effort; never fail a decision over one
            involved = body["involvedObject"]
            log.warning(
                "could not record event %s on %s %s: %s",
                body["reason"],
                involved["kind"],
                involved["name"],
                getattr(err, "reason", type(err).__name__),
            )
