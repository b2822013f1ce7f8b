"""Researchers' pages: their jobs, one job (workers, events, logs, cost), its logs, and the queue."""

from __future__ import annotations

import re
import time
from functools import partial
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from estuary.api.aijob import AIJob
from estuary.portal import accounting, present
from estuary.portal.reads import Outcome, attempt
from estuary.portal.web import Portal, Session

NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LOG_LINES_ON_PAGE = 100
LOG_LINES_FULL = 5000
MAX_REMEMBERED = 20


def _portal(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


def _remember(request: Request) -> None:
    """`?namespace=x` adds x to the namespaces this browser looks in (a view preference only)."""
    wanted = request.query_params.get("namespace", "").strip()
    if wanted and NAMESPACE.match(wanted) and len(wanted) <= 63:
        known = [str(n) for n in request.session.get("namespaces") or [] if n != wanted]
        request.session["namespaces"] = [wanted, *known][:MAX_REMEMBERED]


def jobs(request: Request) -> Response:
    portal = _portal(request)
    _remember(request)
    with portal.user(request) as s:
        listing = s.reads.jobs(lambda: portal.candidate_namespaces(request, s))
        may_submit = any(s.reads.may("create", "aijobs", ns) for ns in listing.namespaces[:20])
    rows = sorted((present.job_row(j) for j in listing.jobs), key=lambda r: (r.namespace, r.name))
    context = {"rows": rows, "listing": listing, "may_submit": may_submit or listing.cluster_wide}
    return portal.render(request, "jobs.html", context, me=s.me)


def queue(request: Request) -> Response:
    portal = _portal(request)
    with portal.user(request) as s:
        listing = s.reads.jobs(lambda: portal.candidate_namespaces(request, s))
    rows = [present.job_row(j) for j in listing.jobs]
    running = [r for r in rows if r.phase in ("Admitted", "Running")]
    context = {"queued": present.queue_order(rows), "running": running, "listing": listing}
    return portal.render(request, "queue.html", context, me=s.me)


def _spec(raw: dict[str, Any]) -> AIJob | None:
    try:
        return AIJob.model_validate(raw)
    except ValidationError:
        return None


def job(request: Request) -> Response:
    portal = _portal(request)
    ns, name = request.path_params["namespace"], request.path_params["name"]
    with portal.user(request) as s:
        raw = s.reads.job(ns, name)  # a refusal here is the page's answer (exception handlers)
        pods: Outcome[list[dict[str, Any]]] = attempt(lambda: s.reads.worker_pods(ns, name))
        pod_names = [p["metadata"]["name"] for p in pods.value or []]
        events = attempt(lambda: s.reads.events(ns, {name, *pod_names}))
        logs = {pod: attempt(partial(s.reads.log_tail, ns, pod, LOG_LINES_ON_PAGE)) for pod in pod_names}
        tenant = attempt(lambda: s.reads.namespace_tenant(ns))
        prices = _prices(s, raw)
    context = {
        "row": present.job_row(raw),
        "job": _spec(raw),
        "raw": raw,
        "status": raw.get("status") if isinstance(raw.get("status"), dict) else {},
        "pods": pods,
        "events": events,
        "logs": logs,
        "tenant": tenant,
        "cost": accounting.job_cost(raw, prices, time.time()),
        "priced": bool(prices),
    }
    return portal.render(request, "job.html", context, me=s.me)


def _prices(s: Session, raw: dict[str, Any]) -> dict[str, float]:
    """Price per accelerator-hour of each pool the job ran in, where the user may read the pool."""
    runs = (raw.get("status") or {}).get("runs") or []
    pools = {str(r.get("pool")) for r in runs if r.get("pool") and r.get("cluster", "local") == "local"}
    found = {name: attempt(partial(s.reads.pool, name)) for name in sorted(pools)}
    return {
        name: float(((got.value or {}).get("spec") or {}).get("costPerAcceleratorHour") or 0.0)
        for name, got in found.items()
        if got.value is not None
    }


def log(request: Request) -> Response:
    """One worker's log as plain text (the last LOG_LINES_FULL lines)."""
    portal = _portal(request)
    ns, pod = request.path_params["namespace"], request.path_params["pod"]
    with portal.user(request) as s:
        text = s.reads.log_tail(ns, pod, LOG_LINES_FULL)
    return PlainTextResponse(text, headers={"Cache-Control": "no-store"})
