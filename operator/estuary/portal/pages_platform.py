"""Platform pages: pools and their capacity, tenants against quota, the researcher's own quota, and
partner links. Cluster-scoped objects need read rights the researcher may lack; a refusal is the
page's answer, in plain words (see app.py)."""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response

from estuary.portal import present
from estuary.portal.reads import attempt
from estuary.portal.web import Portal


def _portal(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


def pools(request: Request) -> Response:
    portal = _portal(request)
    with portal.user(request) as s:
        rows = [present.pool_row(p) for p in s.reads.pools()]
    totals = {k: sum(getattr(r, k) for r in rows) for k in ("capacity", "healthy", "allocated", "free")}
    return portal.render(request, "pools.html", {"rows": rows, "totals": totals}, me=s.me)


def tenants(request: Request) -> Response:
    portal = _portal(request)
    with portal.user(request) as s:
        rows = [present.pool_row(p) for p in s.reads.pools()]
    return portal.render(request, "tenants.html", {"tenants": present.tenant_quotas(rows)}, me=s.me)


def usage(request: Request) -> Response:
    """The user's own tenants (of the namespaces they can read): quota and use per pool."""
    portal = _portal(request)
    with portal.user(request) as s:
        listing = s.reads.jobs(lambda: portal.candidate_namespaces(request, s))
        namespaces = sorted({j["metadata"]["namespace"] for j in listing.jobs} | set(listing.namespaces))
        tenant_of = {ns: attempt(partial(s.reads.namespace_tenant, ns)) for ns in namespaces}
        pool_rows = attempt(lambda: [present.pool_row(p) for p in s.reads.pools()])
    mine = {t.value for t in tenant_of.values() if t.value}
    quotas = [q for q in present.tenant_quotas(pool_rows.value or []) if q.tenant in mine]
    context = {"tenant_of": tenant_of, "mine": sorted(mine), "quotas": quotas, "pools": pool_rows}
    return portal.render(request, "usage.html", context, me=s.me)


def links(request: Request) -> Response:
    portal = _portal(request)
    namespace = portal.settings.operator_namespace
    with portal.user(request) as s:
        items = s.reads.links(namespace)
    rows = [present.link_row(item) for item in items]
    return portal.render(request, "links.html", {"rows": rows, "namespace": namespace}, me=s.me)
