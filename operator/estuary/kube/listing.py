"""Fill a ClusterCache from full listings: at operator start, after the watches have listed and
periodically (handlers/resync.py), and for `estuary explain`.

Each listing is reconciled with what the cache holds (`ClusterCache.reconcile`), so a pod deleted
while no watch saw it (the operator was down, or a watch was re-made after a gap) leaves the cache.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from estuary.api.base import GROUP, VERSION
from estuary.state.cache import ClusterCache

LIST_TIMEOUT = (5.0, 120.0)  # a full listing of a large cluster takes longer than one write


def load(api: client.ApiClient, cache: ClusterCache) -> dict[str, list[str]]:
    """List every kind the cache holds and reconcile it; return the keys dropped, by kind."""
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    t = LIST_TIMEOUT
    dropped = {
        "namespaces": _typed(api, cache, "namespaces", core.list_namespace(_request_timeout=t)),
        "nodes": _typed(api, cache, "nodes", core.list_node(_request_timeout=t)),
        "pods": _typed(api, cache, "pods", core.list_pod_for_all_namespaces(_request_timeout=t)),
    }
    for plural in ("computepools", "aijobs", "federationlinks"):
        try:  # federation works without FederationLinks; an older install may lack their CRD
            listed = custom.list_cluster_custom_object(GROUP, VERSION, plural, _request_timeout=t)
        except ApiException as err:
            if err.status != 404 or plural != "federationlinks":
                raise
            listed = {"items": [], "metadata": {}}
        version = (listed.get("metadata") or {}).get("resourceVersion")
        dropped[plural] = cache.reconcile(plural, listed["items"], version)
    return dropped


def _typed(api: client.ApiClient, cache: ClusterCache, kind: str, listed: Any) -> list[str]:
    items = [api.sanitize_for_serialization(item) for item in listed.items]
    return cache.reconcile(kind, items, listed.metadata.resource_version)
