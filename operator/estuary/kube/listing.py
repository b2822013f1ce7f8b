"""Fill a ClusterCache from full listings: at operator start, and for `estuary explain`."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from estuary.api.base import GROUP, VERSION
from estuary.state.cache import ClusterCache


def load(api: client.ApiClient, cache: ClusterCache) -> None:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    as_dicts = api.sanitize_for_serialization
    cache.replace_all("namespaces", [as_dicts(n) for n in core.list_namespace().items])
    cache.replace_all("nodes", [as_dicts(n) for n in core.list_node().items])
    cache.replace_all("pods", [as_dicts(p) for p in core.list_pod_for_all_namespaces().items])
    cache.replace_all(
        "computepools", custom.list_cluster_custom_object(GROUP, VERSION, "computepools")["items"]
    )
    cache.replace_all("aijobs", custom.list_cluster_custom_object(GROUP, VERSION, "aijobs")["items"])
    try:  # federation works without FederationLinks; an older install may lack their CRD
        links = custom.list_cluster_custom_object(GROUP, VERSION, "federationlinks")["items"]
    except ApiException as err:
        if err.status != 404:
            raise
        links = []
    cache.replace_all("federationlinks", links)
