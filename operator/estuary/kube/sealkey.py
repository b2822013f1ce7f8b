"""The key the operator seals placements with (control/seal.py), kept in a Secret of its namespace.

The Secret (`estuary-placement-key`, key `key`: 32 random bytes) is created by the first replica
that finds none and read by every replica after, so all replicas and restarts share it. Only the
operator's ServiceAccount may read Secrets in its namespace (the chart's Role), and tenants have
no rights there. Should the operator be unable to read or create it, it seals with a key of its
own process and says so: placements sealed before its next restart are then released and
admitted again, never trusted without a seal.
"""

from __future__ import annotations

import base64
import logging
import secrets

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("estuary.sealkey")
SECRET = "estuary-placement-key"
TIMEOUT = (5.0, 20.0)


def load(api: client.ApiClient, namespace: str, name: str = SECRET) -> bytes | None:
    """The key, or None (logged) when it can be neither read nor created."""
    core = client.CoreV1Api(api)
    try:
        key = _read_or_create(core, namespace, name)
        if len(key) < 16:
            raise ValueError(f"its key is {len(key)} bytes, fewer than 16; delete it to get a new one")
        return key
    except (ApiException, ValueError) as err:
        reason = err.reason if isinstance(err, ApiException) else str(err)
        log.warning(
            "could not read or create Secret %s/%s for the placement key (%s); sealing with a key of "
            "this process: jobs admitted but not yet started when it restarts will be admitted again. "
            "Grant the operator get and create on Secrets in %s (the chart's Role does).",
            namespace,
            name,
            reason,
            namespace,
        )
        return None


def _read_or_create(core: client.CoreV1Api, namespace: str, name: str) -> bytes:
    for _ in range(3):
        try:
            secret = core.read_namespaced_secret(name, namespace, _request_timeout=TIMEOUT)
            return base64.b64decode((secret.data or {}).get("key") or "")
        except ApiException as err:
            if err.status != 404:
                raise
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=name,
                labels={"app.kubernetes.io/managed-by": "estuary", "app.kubernetes.io/component": "operator"},
            ),
            data={"key": base64.b64encode(secrets.token_bytes(32)).decode()},
        )
        try:
            core.create_namespaced_secret(namespace, body, _request_timeout=TIMEOUT)
        except ApiException as err:
            if err.status != 409:  # another replica created it first: read that one
                raise
    raise ValueError("the Secret kept changing while it was read")
