"""Federation's calls to the home cluster (the one this operator runs in), behind a small seam."""

from __future__ import annotations

import base64
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from estuary.api.base import GROUP, VERSION
from estuary.federation.naming import ORIGIN_CLUSTER
from estuary.federation.partner import BAD_CREDENTIALS, UNREACHABLE, PartnerError

MERGE_PATCH = "application/merge-patch+json"
TIMEOUT = (5.0, 20.0)


class HomeApi(Protocol):
    def read_secret_key(self, namespace: str, name: str, key: str) -> bytes:
        """The value of one key of a Secret; PartnerError(BadCredentials) when it cannot be read."""

    def patch_link_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch a FederationLink's status; returns the updated object."""

    def list_copies(self) -> list[dict[str, Any]]:
        """Every AIJob in this cluster that another cluster sent here (a fresh, consistent read)."""

    # Spend records (federation/spendbook.py: SpendStore).
    def list_configmaps(self, namespace: str, label_selector: str) -> list[dict[str, Any]]: ...

    def create_configmap(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]: ...

    def patch_configmap_data(self, namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]: ...

    def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """A Secret's decoded data, or None when it does not exist."""


class RealHomeApi:
    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def read_secret_key(self, namespace: str, name: str, key: str) -> bytes:
        where = f"Secret {namespace}/{name}"
        try:
            secret = self.core.read_namespaced_secret(name, namespace, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                raise PartnerError(BAD_CREDENTIALS, f"{where} not found") from None
            if exc.status == 403:
                raise PartnerError(BAD_CREDENTIALS, f"the operator may not read {where}") from None
            raise PartnerError(UNREACHABLE, f"reading {where}: HTTP {exc.status}") from None
        except Exception as exc:
            raise PartnerError(UNREACHABLE, f"reading {where}: {type(exc).__name__}") from None
        data = secret.data or {}
        if key not in data:
            raise PartnerError(BAD_CREDENTIALS, f"{where} has no key {key!r}")
        try:
            return base64.b64decode(data[key])
        except ValueError:
            raise PartnerError(BAD_CREDENTIALS, f"{where} key {key!r} is not base64") from None

    def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        try:
            secret = self.core.read_namespaced_secret(name, namespace, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise PartnerError(UNREACHABLE, f"reading Secret {namespace}/{name}: HTTP {exc.status}") from None
        return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}

    def patch_link_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            "federationlinks",
            name,
            {"status": status},
            _content_type=MERGE_PATCH,
            _request_timeout=TIMEOUT,
        )
        return out

    def list_copies(self) -> list[dict[str, Any]]:
        out = self.custom.list_cluster_custom_object(
            GROUP, VERSION, "aijobs", label_selector=ORIGIN_CLUSTER, _request_timeout=TIMEOUT
        )
        return list(out.get("items") or [])

    def list_configmaps(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        found = self.core.list_namespaced_config_map(
            namespace, label_selector=label_selector, _request_timeout=TIMEOUT
        )
        return [self.core.api_client.sanitize_for_serialization(cm) for cm in found.items]

    def create_configmap(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        made = self.core.create_namespaced_config_map(namespace, manifest, _request_timeout=TIMEOUT)
        out: dict[str, Any] = self.core.api_client.sanitize_for_serialization(made)
        return out

    def patch_configmap_data(self, namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
        patched = self.core.patch_namespaced_config_map(
            name, namespace, {"data": data}, _content_type=MERGE_PATCH, _request_timeout=TIMEOUT
        )
        out: dict[str, Any] = self.core.api_client.sanitize_for_serialization(patched)
        return out
