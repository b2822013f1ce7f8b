"""Fill a ClusterCache from full listings: at operator start, and for `estuary explain`."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from estuary.api.base import GROUP, VERSION
from estuary.state.cache import ClusterCache

LIST_TIMEOUT = (5.0, 120.0)  # a full listing of a large cluster takes longer than one write


def load(api: client.ApiClient, cache: ClusterCache) -> None:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    as_dicts = api.sanitize_for_serialization
    t = LIST_TIMEOUT
    cache.replace_all("namespaces", [as_dicts(n) for n in core.list_namespace(_request_timeout=t).items])
    cache.replace_all("nodes", [as_dicts(n) for n in core.list_node(_request_timeout=t).items])
    pods = core.list_pod_for_all_namespaces(_request_timeout=t).items
    cache.replace_all("pods", [as_dicts(p) for p in pods])
    cache.replace_all(
        "computepools",
        custom.list_cluster_custom_object(GROUP, VERSION, "computepools", _request_timeout=t)["items"],
    )
    jobs = custom.list_cluster_custom_object(GROUP, VERSION, "aijobs", _request_timeout=t)["items"]
    cache.replace_all("aijobs", jobs)
    try:  # federation works without FederationLinks; an older install may lack their CRD
        links = custom.list_cluster_custom_object(GROUP, VERSION, "federationlinks", _request_timeout=t)[
            "items"
        ]
    except ApiException as err:
        if err.status != 404:
            raise
        links = []
    cache.replace_all("federationlinks", links)
