"""Talking to a partner cluster: a client from the kubeconfig Secret, short timeouts, and errors
turned into safe, classified messages.

Credentials never leave this module: the kubeconfig is parsed here and handed to the Kubernetes
client; no message built here contains it, a server URL, a header or the client's exception text
(which can include request details). A kubeconfig may not make the operator run a program
(`exec`, `auth-provider`) or read its own files (`tokenFile`, certificate paths): a Secret author
could otherwise send the operator's own credentials to a server of their choosing.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from estuary.api.base import GROUP, VERSION
from estuary.federation.naming import ORIGIN_CLUSTER

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 10.0  # lease.Timing.request_timeout_s assumes this bound
MERGE_PATCH = "application/merge-patch+json"
FIELD_MANAGER = "estuary-federation"

BAD_CREDENTIALS = "BadCredentials"
UNREACHABLE = "Unreachable"
REFUSED = "Refused"

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_BEARER = re.compile(r"(bearer|token|password|authorization)[\s:=\"']+\S+", re.IGNORECASE)


@dataclass
class PartnerError(Exception):
    """A failed call to the partner. `kind` is BadCredentials, Unreachable or Refused; `status`
    the HTTP status (0 when none came back); `maybe_applied` whether a write may have taken
    effect although no answer came back (timeouts, resets, 5xx)."""

    kind: str
    message: str
    status: int = 0
    maybe_applied: bool = False

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def scrub(text: str, limit: int = 300) -> str:
    """Drop URLs and anything that looks like a credential from text a partner sent back."""
    text = _BEARER.sub(r"\1 <redacted>", _URL.sub("<url>", text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _api_message(err: ApiException) -> str:
    try:
        body = json.loads(err.body or "")
        message = str(body.get("message") or "") if isinstance(body, dict) else ""
    except ValueError:
        message = ""
    return scrub(message) if message else f"HTTP {err.status}"


def classify(exc: BaseException, what: str) -> PartnerError:
    """A PartnerError for what went wrong while doing `what` (never the exception's own text)."""
    if isinstance(exc, PartnerError):
        return exc
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        if status == 0:  # the client wraps TLS failures this way; nothing was sent
            return PartnerError(
                UNREACHABLE,
                f"{what}: TLS handshake with the partner failed "
                "(check certificate-authority-data and the server name)",
            )
        if status in (401, 403):
            return PartnerError(
                BAD_CREDENTIALS,
                f"{what}: HTTP {status} "
                f"({'unauthorized' if status == 401 else 'forbidden'}): "
                f"{_api_message(exc)}",
                status,
            )
        if status in (404, 409, 400, 422):
            return PartnerError(REFUSED, f"{what}: {_api_message(exc)}", status)
        return PartnerError(
            UNREACHABLE,
            f"{what}: HTTP {status}: {_api_message(exc)}",
            status,
            maybe_applied=status >= 500 or status == 429,
        )
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return classify(exc.reason, what)
    if isinstance(exc, urllib3.exceptions.NameResolutionError):
        return PartnerError(UNREACHABLE, f"{what}: the partner's host name does not resolve")
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return PartnerError(UNREACHABLE, f"{what}: connection refused or no route to the partner")
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return PartnerError(UNREACHABLE, f"{what}: no connection within {CONNECT_TIMEOUT_S:g}s")
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return PartnerError(UNREACHABLE, f"{what}: no answer within {READ_TIMEOUT_S:g}s", maybe_applied=True)
    if isinstance(exc, urllib3.exceptions.SSLError):
        return PartnerError(UNREACHABLE, f"{what}: TLS error talking to the partner")
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return PartnerError(
            UNREACHABLE,
            f"{what}: connection to the partner failed ({type(exc).__name__})",
            maybe_applied=True,
        )
    return PartnerError(UNREACHABLE, f"{what}: unexpected {type(exc).__name__}", maybe_applied=True)


_FORBIDDEN_USER_KEYS = (
    "exec",
    "auth-provider",
    "tokenFile",
    "client-certificate",
    "client-key",
    "username",
    "password",
)
_FORBIDDEN_CLUSTER_KEYS = ("certificate-authority",)


def parse_kubeconfig(raw: bytes | str | None, where: str) -> dict[str, Any]:
    """The kubeconfig from a Secret's value; PartnerError(BadCredentials) when it is unusable."""
    if not raw:
        raise PartnerError(BAD_CREDENTIALS, f"{where} is empty")
    try:
        conf = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise PartnerError(BAD_CREDENTIALS, f"{where} is not valid YAML") from None
    if not isinstance(conf, dict) or not conf.get("clusters") or not conf.get("users"):
        raise PartnerError(BAD_CREDENTIALS, f"{where} is not a kubeconfig (no clusters or users)")
    for entry in conf.get("users") or []:
        user = (entry or {}).get("user") or {}
        bad = [k for k in _FORBIDDEN_USER_KEYS if k in user]
        if bad:
            raise PartnerError(
                BAD_CREDENTIALS,
                f"{where}: user field(s) {', '.join(bad)} are not "
                "allowed: use inline token or client-certificate-data/client-key-data",
            )
    for entry in conf.get("clusters") or []:
        cluster = (entry or {}).get("cluster") or {}
        if any(k in cluster for k in _FORBIDDEN_CLUSTER_KEYS):
            raise PartnerError(BAD_CREDENTIALS, f"{where}: use certificate-authority-data, not a file path")
    return conf


def build_client(conf: Mapping[str, Any]) -> client.ApiClient:
    """An ApiClient for the partner: no retries (one attempt per call, classified by us)."""
    configuration = client.Configuration()
    try:
        config.load_kube_config_from_dict(
            dict(conf), client_configuration=configuration, persist_config=False
        )
    except Exception:  # the loader's messages may quote the config: say only that it failed
        raise PartnerError(
            BAD_CREDENTIALS,
            "the kubeconfig could not be loaded (context, cluster or user missing or malformed)",
        ) from None
    configuration.retries = False
    return client.ApiClient(configuration)


class Partner(Protocol):
    """What a link's worker calls: an Estuary partner (`PartnerApi`) or an agentless provider's
    namespace (`provider.AgentlessPartner`). Every failure is a PartnerError; objects are dicts."""

    def list_pools(self) -> list[dict[str, Any]]: ...

    def ensure_namespace(self, namespace: str) -> None: ...

    def list_copies(self, namespace: str, origin_label: str) -> list[dict[str, Any]]: ...

    def create_copy(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]: ...

    def patch_copy(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def delete_copy(self, namespace: str, name: str) -> None: ...

    def probe(self, path: str) -> tuple[float, int]:
        """GET `path` (e.g. /version, /openapi/v2): (seconds taken, bytes received)."""

    def close(self) -> None: ...


def probe(api: client.ApiClient, path: str, timeout: tuple[float, float]) -> tuple[float, int]:
    """Time one GET of `path` on the partner's API server, reading the whole answer: the round
    trip of a small answer, or the throughput of a large one (a lower bound of the path's
    bandwidth: one TCP stream, and the server's own time included)."""
    what = f"measuring the path to the partner ({path})"
    started = time.perf_counter()
    try:
        method, url, headers, _, _ = api.param_serialize("GET", path, auth_settings=["BearerToken"])
        response = api.call_api(method, url, header_params=headers, _request_timeout=timeout)
        data = response.read()
    except Exception as exc:
        raise classify(exc, what) from None
    if response.status >= 400:
        raise classify(ApiException(status=response.status, reason=str(response.reason)), what)
    return time.perf_counter() - started, len(data or b"")


class PartnerApi:
    """The calls the origin makes to a partner, each with short timeouts. Every failure is a
    PartnerError; objects come back as plain dicts."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.timeout = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        self.namespaces_ok: set[str] = set()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # best effort: the pool may already be gone
            self.api.close()

    def list_pools(self) -> list[dict[str, Any]]:
        try:
            out = self.custom.list_cluster_custom_object(
                GROUP, VERSION, "computepools", _request_timeout=self.timeout
            )
        except Exception as exc:
            err = classify(exc, "reading the partner's ComputePools")
            if err.status == 404:
                err.message = (
                    "the partner has no ComputePool CRD (estuary.dev/v1alpha1): is Estuary installed there?"
                )
            raise err from None
        return list(out.get("items") or [])

    def ensure_namespace(self, namespace: str) -> None:
        """Create the namespace for copies when it is missing. Credentials that may not read
        namespaces (a Role in that namespace only) assume it exists: creating a copy says if not."""
        if namespace in self.namespaces_ok:
            return
        try:
            self.core.read_namespace(namespace, _request_timeout=self.timeout)
            missing = False
        except ApiException as exc:
            if exc.status not in (403, 404):
                raise classify(exc, f"reading namespace {namespace}") from None
            missing = exc.status == 404
        except Exception as exc:
            raise classify(exc, f"reading namespace {namespace}") from None
        if missing:
            try:
                self.core.create_namespace(
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {
                            "name": namespace,
                            "labels": {"app.kubernetes.io/managed-by": "estuary"},
                        },
                    },
                    _request_timeout=self.timeout,
                )
            except ApiException as exc:
                if exc.status != 409:
                    err = classify(exc, f"creating namespace {namespace}")
                    if err.status == 403:
                        err = PartnerError(
                            REFUSED,
                            f"namespace {namespace} is missing at the "
                            "partner and these credentials may not create it",
                            403,
                        )
                    raise err from None
            except Exception as exc:
                raise classify(exc, f"creating namespace {namespace}") from None
        self.namespaces_ok.add(namespace)

    def list_copies(self, namespace: str, origin_label: str) -> list[dict[str, Any]]:
        try:
            out = self.custom.list_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                "aijobs",
                label_selector=f"{ORIGIN_CLUSTER}={origin_label}",
                _request_timeout=self.timeout,
            )
        except Exception as exc:
            err = classify(exc, "listing this cluster's jobs at the partner")
            if err.status == 404:
                err.message = (
                    "the partner has no AIJob CRD (estuary.dev/v1alpha1): is Estuary installed there?"
                )
            raise err from None
        return list(out.get("items") or [])

    def create_copy(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        try:
            out: dict[str, Any] = self.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                "aijobs",
                manifest,
                field_manager=FIELD_MANAGER,
                _request_timeout=self.timeout,
            )
        except Exception as exc:
            raise classify(exc, "creating the job at the partner") from None
        return out

    def patch_copy(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            out: dict[str, Any] = self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                "aijobs",
                name,
                body,
                field_manager=FIELD_MANAGER,
                _content_type=MERGE_PATCH,
                _request_timeout=self.timeout,
            )
        except Exception as exc:
            raise classify(exc, "updating the job at the partner") from None
        return out

    def probe(self, path: str) -> tuple[float, int]:
        return probe(self.api, path, self.timeout)

    def delete_copy(self, namespace: str, name: str) -> None:
        """Foreground: the copy stays visible until its worker pods are gone, so "no copy of this
        job listed" also means "none of its pods left"."""
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                "aijobs",
                name,
                propagation_policy="Foreground",
                _request_timeout=self.timeout,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise classify(exc, "deleting the job at the partner") from None
        except Exception as exc:
            raise classify(exc, "deleting the job at the partner") from None
