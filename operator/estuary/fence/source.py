"""Reading the lease object with the pod's own credentials: a ConfigMap the origin renews in an
agentless provider's namespace, or the AIJob copy at an Estuary partner. One GET per read, short
timeouts, no retries: a read that fails is simply no evidence that the lease is alive.

Plain `urllib` rather than the Kubernetes client library: the fence runs beside every worker of
every fenced job, makes one kind of request, and must start in well under a lease's first
period; importing the client library alone takes seconds on a busy node and tens of megabytes.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from estuary.fence.lease import LEASE_RENEW

TIMEOUT = 5.0
KINDS = ("configmap", "aijob")
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class LeaseGone(Exception):
    """The lease object does not exist any more: its owner gave this attempt up."""


class ReadFailed(Exception):
    """A read that proves nothing (network, TLS, 5xx, 401/403)."""


@dataclass(frozen=True)
class LeaseRef:
    kind: str  # configmap | aijob
    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str, namespace: str) -> LeaseRef:
        kind, _, name = text.partition("/")
        if kind not in KINDS or not name:
            raise ValueError(f"--object must be configmap/<name> or aijob/<name>, not {text!r}")
        return cls(kind, namespace, name)

    @property
    def path(self) -> str:
        if self.kind == "configmap":
            return f"/api/v1/namespaces/{self.namespace}/configmaps/{self.name}"
        return f"/apis/estuary.dev/v1alpha1/namespaces/{self.namespace}/aijobs/{self.name}"

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass
class Endpoint:
    """Where the API server is and how to authenticate: a server URL, a TLS context (None for
    plain HTTP) and a function giving the bearer token (re-read per request: bound service-account
    tokens rotate)."""

    server: str
    context: ssl.SSLContext | None
    token: Callable[[], str | None]


def in_cluster() -> Endpoint:
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
    context = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT / "ca.crt"))
    return Endpoint(
        f"https://{host}:{port}", context, lambda: (SERVICE_ACCOUNT / "token").read_text().strip()
    )


def from_kubeconfig(path: str) -> Endpoint:
    """The current context of a kubeconfig (inline data only: token or client certificate)."""
    conf: dict[str, Any] = yaml.safe_load(Path(path).read_text())
    context = next(c["context"] for c in conf["contexts"] if c["name"] == conf["current-context"])
    cluster = next(c["cluster"] for c in conf["clusters"] if c["name"] == context["cluster"])
    user: dict[str, Any] = next(
        (u["user"] for u in conf.get("users") or [] if u["name"] == context.get("user")), {}
    )
    server = str(cluster["server"]).rstrip("/")
    tls: ssl.SSLContext | None = None
    if server.startswith("https://"):
        tls = ssl.create_default_context()
        if cluster.get("certificate-authority-data"):
            tls.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        if cluster.get("insecure-skip-tls-verify"):
            tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        if user.get("client-certificate-data"):
            _load_client_cert(tls, user["client-certificate-data"], user["client-key-data"])
    token = user.get("token")
    return Endpoint(server, tls, lambda: token)


def _load_client_cert(tls: ssl.SSLContext, cert_data: str, key_data: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:  # ssl reads certificates from files only
        cert, key = Path(tmp) / "cert", Path(tmp) / "key"
        cert.write_bytes(base64.b64decode(cert_data))
        key.write_bytes(base64.b64decode(key_data))
        tls.load_cert_chain(str(cert), str(key))


class LeaseSource:
    def __init__(self, endpoint: Endpoint, ref: LeaseRef) -> None:
        self.endpoint, self.ref = endpoint, ref

    def token(self) -> str:
        """The renewal token now; LeaseGone when the object was deleted; ReadFailed otherwise."""
        request = urllib.request.Request(self.endpoint.server + self.ref.path)
        bearer = self.endpoint.token()
        if bearer:
            request.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=self.endpoint.context) as answer:
                obj = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise LeaseGone(f"{self.ref} was deleted") from None
            raise ReadFailed(f"HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise ReadFailed(type(exc).__name__) from None
        meta = obj.get("metadata") or {}
        return str((meta.get("annotations") or {}).get(LEASE_RENEW) or "")
