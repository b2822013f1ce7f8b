"""Where the API server is, and the portal's own settings: never any credential of the portal's.

The portal learns only the API server's address and the certificate authority to trust, from the
in-cluster environment or from a kubeconfig's cluster entry. A kubeconfig's user credentials are
deliberately dropped: every request carries the signed-in user's token instead.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config

IN_CLUSTER_CA = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
SECRET_ENV = "ESTUARY_PORTAL_SECRET"


@dataclass(frozen=True)
class ApiServer:
    """How to reach the API server, without anyone's credentials."""

    host: str
    ca_file: str | None = None
    verify_ssl: bool = True
    tls_server_name: str | None = None


@dataclass(frozen=True)
class PortalSettings:
    api: ApiServer
    secret: bytes = field(repr=False)  # signs the session cookie and encrypts the token in it
    operator_namespace: str = "estuary-system"  # where FederationLinks live
    namespaces: tuple[str, ...] = ()  # namespaces offered to every user (RBAC still decides)
    secure_cookies: bool = True  # mark cookies Secure (the portal is served over HTTPS)
    session_hours: float = 8.0

    def derived_key(self, purpose: str) -> bytes:
        """A separate 32-byte key per purpose, so no key is used for two things."""
        return hashlib.sha256(self.secret + b"\x00" + purpose.encode()).digest()


def api_from_kubeconfig(path: str | None, context: str | None = None) -> ApiServer:
    """The cluster entry of a kubeconfig (its user entry is ignored)."""
    loaded = client.Configuration()
    config.load_kube_config(config_file=path, context=context, client_configuration=loaded)
    return ApiServer(
        host=loaded.host,
        ca_file=loaded.ssl_ca_cert,
        verify_ssl=bool(loaded.verify_ssl),
        tls_server_name=getattr(loaded, "tls_server_name", None),
    )


def api_in_cluster() -> ApiServer:
    """The API server as a pod sees it; the CA comes from the mounted `kube-root-ca.crt`."""
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return ApiServer(host=f"https://{host}:{port}", ca_file=str(IN_CLUSTER_CA))


def secret_from_env() -> tuple[bytes, bool]:
    """The session secret from ESTUARY_PORTAL_SECRET, or a random one (and False) when unset."""
    value = os.environ.get(SECRET_ENV, "")
    if value:
        return value.encode(), True
    return secrets.token_bytes(32), False
