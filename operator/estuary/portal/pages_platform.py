"""Platform pages: pools with capacity and PFLOPS, tenants against quota with their usage, the
researcher's own quota and usage (also as CSV), and partner links. Cluster-scoped objects need read
rights a researcher may lack: a refusal of the page's main read is the page's answer, in plain
words (see app.py); a refused side read is a sentence in its section."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from estuary import usage as usage_rows
from estuary.portal import accounting, present
from estuary.portal.reads import attempt
from estuary.portal.web import Portal, Session


def _portal(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


def pools(request: Request) -> Response:
    portal = _portal(request)
    with portal.user(request) as s:
        rows = [present.pool_row(p) for p in s.reads.pools()]
    totals = {k: sum(getattr(r, k) for r in rows) for k in ("capacity", "healthy", "allocated", "free")}
    pflops = {k: sum(r.pflops(getattr(r, k)) or 0.0 for r in rows) for k in totals}
    context = {"rows": rows, "totals": totals, "pflops": pflops}
    return portal.render(request, "pools.html", context, me=s.me)


def tenants(request: Request) -> Response:
    """Every tenant's quota and use (from pools) and usage in the month (from UsageLedgers)."""
    portal = _portal(request)
    period = accounting.month(request.query_params.get("period"), time.time())
    with portal.user(request) as s:
        rows = [present.pool_row(p) for p in s.reads.pools()]
        ledgers = attempt(s.reads.ledgers)
    in_period = [x for x in ledgers.value or [] if (x.get("spec") or {}).get("period") == period.label]
    used = accounting.tenant_usage([], in_period, period, time.time())
    context = {"tenants": present.tenant_quotas(rows), "usage": used, "ledgers": ledgers, "period": period}
    return portal.render(request, "tenants.html", context, me=s.me)


def _my_usage(request: Request, portal: Portal, s: Session) -> dict[str, Any]:
    """The user's tenants (from the namespaces they can read), their quotas and their usage."""
    now = time.time()
    period = accounting.month(request.query_params.get("period"), now)
    listing = s.reads.jobs(lambda: portal.candidate_namespaces(request, s))
    namespaces = sorted({j["metadata"]["namespace"] for j in listing.jobs} | set(listing.namespaces))
    tenant_of = {ns: attempt(partial(s.reads.namespace_tenant, ns)) for ns in namespaces}
    mine = sorted({t.value for t in tenant_of.values() if t.value})
    pool_rows = attempt(lambda: [present.pool_row(p) for p in s.reads.pools()])
    jobs = [(j, tenant_of[j["metadata"]["namespace"]].value or "default") for j in listing.jobs]
    rows = [r for r in accounting.tenant_usage(jobs, [], period, now) if r.tenant in mine]
    return {
        "tenant_of": tenant_of,
        "mine": mine,
        "quotas": [q for q in present.tenant_quotas(pool_rows.value or []) if q.tenant in mine],
        "pools": pool_rows,
        "period": period,
        "usage": rows,
    }


def usage(request: Request) -> Response:
    portal = _portal(request)
    with portal.user(request) as s:
        context = _my_usage(request, portal, s)
    return portal.render(request, "usage.html", context, me=s.me)


def usage_csv(request: Request) -> Response:
    portal = _portal(request)
    with portal.user(request) as s:
        context = _my_usage(request, portal, s)
    period = context["period"]
    name = f"estuary-usage-{period.label}.csv"
    return Response(
        usage_rows.to_csv(context["usage"], period.start, period.end),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def links(request: Request) -> Response:
    portal = _portal(request)
    namespace = portal.settings.operator_namespace
    with portal.user(request) as s:
        items = s.reads.links(namespace)
    rows = [present.link_row(item) for item in items]
    return portal.render(request, "links.html", {"rows": rows, "namespace": namespace}, me=s.me)
