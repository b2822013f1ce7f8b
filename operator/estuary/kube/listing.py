"""Fill a ClusterCache from full listings: at operator start, after the watches have listed and
periodically (handlers/resync.py), and for `estuary explain`.

Each listing is reconciled with what the cache holds (`ClusterCache.reconcile`), so a pod deleted
while no watch saw it (the operator was down, or a watch was re-made after a gap) leaves the cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from estuary.api.base import GROUP, VERSION
from estuary.state.cache import ClusterCache

LIST_TIMEOUT = (5.0, 120.0)  # a full listing of a large cluster takes longer than one write
PAGE = 500  # objects per list request: 10,000 AIJobs are never all in one answer in memory
Page = dict[str, Any]


def load(api: client.ApiClient, cache: ClusterCache) -> dict[str, list[str]]:
    """List every kind the cache holds and reconcile it; return the keys dropped, by kind. Each
    kind is listed in pages of PAGE (one consistent listing, continued), read as the API server's
    JSON (never turned into the client's models) and reconciled page by page."""
    dropped = {}
    for kind, fetch in fetchers(api).items():
        try:  # federation works without FederationLinks; an older install may lack their CRD
            dropped[kind], _ = reconcile(cache, kind, fetch)
        except ApiException as err:
            if err.status != 404 or kind != "federationlinks":
                raise
            dropped[kind] = cache.reconcile(kind, (), None)
    return dropped


def fetchers(api: client.ApiClient) -> dict[str, Callable[..., Any]]:
    """The list call of each kind the cache holds (with `watch=True`, its watch)."""
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    out: dict[str, Callable[..., Any]] = {
        "namespaces": core.list_namespace,
        "nodes": core.list_node,
        "pods": core.list_pod_for_all_namespaces,
    }
    for plural in ("computepools", "aijobs", "federationlinks"):
        out[plural] = _custom(custom, plural)
    return out


def reconcile(cache: ClusterCache, kind: str, fetch: Callable[..., Any]) -> tuple[list[str], str | None]:
    """One kind listed (in pages) and reconciled; the keys dropped and the listing's version."""
    items, version = pages(partial(_page, fetch))
    return cache.reconcile(kind, items, version), version


def pages(fetch: Callable[[str | None], Page]) -> tuple[Iterator[dict[str, Any]], str | None]:
    """The listing's objects, one page fetched at a time, and the resourceVersion it was taken
    at (the first page's: the continued pages belong to the same listing)."""
    first = fetch(None)

    def items() -> Iterator[dict[str, Any]]:
        page = first
        while True:
            yield from page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return
            page = fetch(token)

    return items(), (first.get("metadata") or {}).get("resourceVersion")


def _custom(custom: client.CustomObjectsApi, plural: str) -> Callable[..., Any]:
    def fetch(**kwargs: Any) -> Any:
        return custom.list_cluster_custom_object(GROUP, VERSION, plural, **kwargs)

    return fetch


def _page(fetch: Callable[..., Any], token: str | None) -> Page:
    answer = fetch(limit=PAGE, _continue=token, _preload_content=False, _request_timeout=LIST_TIMEOUT)
    try:
        page: Page = json.loads(answer.data)
    finally:
        answer.release_conn()
    return page
