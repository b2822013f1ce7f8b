"""`kubectl estuary usage`: where the run records come from for the person asking.

A researcher reads the run records of the jobs she may list (her namespace, or every namespace
with -A when she may); a platform team (`estuary-admin`) also reads the UsageLedgers, which keep
the runs of deleted jobs. Both are merged by run id, so nothing counts twice. The sums are
`estuary.usage.summarize`, the same function the portal calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kubernetes.client.exceptions import ApiException

from estuary.api.base import GROUP, VERSION
from estuary.ledger import period_bounds
from estuary.plugin.session import Session, explain_api_error
from estuary.usage import Run, merge, parse_time, runs_of_job, runs_of_ledger

TENANT_LABEL = "estuary.dev/tenant"


@dataclass
class Collected:
    runs: list[Run]
    notes: list[str] = field(default_factory=list)


def period(month: str | None, since: str | None, until: str | None, now: float) -> tuple[float, float]:
    """[start, end) from --period YYYY-MM, or --since/--until (dates or RFC 3339), else this month."""
    if month:
        if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", month):
            raise ValueError(f"--period {month!r} is not YYYY-MM")
        return period_bounds(month)
    start = _when(since) if since else period_bounds(datetime.fromtimestamp(now, UTC).strftime("%Y-%m"))[0]
    end = _when(until) if until else now
    if end <= start:
        raise ValueError("the period ends before it starts (--until is not after --since)")
    return start, end


def _when(text: str) -> float:
    value = parse_time(text if "T" in text else f"{text}T00:00:00Z")
    if value is None:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an RFC 3339 time")
    return value


def _tenants(
    session: Session, namespaces: set[str], known: dict[str, str], notes: list[str]
) -> dict[str, str]:
    """Tenant of each namespace: its label, else what the ledgers recorded for it."""
    out = {}
    for ns in sorted(namespaces):
        try:
            labels = session.core.read_namespace(ns).metadata.labels or {}
            out[ns] = labels.get(TENANT_LABEL) or "default"
        except ApiException as err:
            if err.status != 403:
                raise
            out[ns] = known.get(ns) or f"namespace:{ns}"
            if ns not in known:
                notes.append(f"may not read namespace {ns}: its runs are shown under 'namespace:{ns}'")
    return out


def _ledger_runs(session: Session, all_namespaces: bool, notes: list[str]) -> list[Run]:
    try:
        ledgers = session.custom.list_cluster_custom_object(GROUP, VERSION, "usageledgers")["items"]
    except ApiException as err:
        if err.status != 403:
            raise
        scope = "every namespace you may list" if all_namespaces else f"namespace {session.namespace}"
        notes.append(
            f"showing the runs of the jobs in {scope}; jobs already deleted are not counted "
            "(the UsageLedgers that keep them are readable with the estuary-admin role)"
        )
        return []
    runs = [run for ledger in ledgers for run in runs_of_ledger(ledger)]
    return runs if all_namespaces else [r for r in runs if r.namespace == session.namespace]


def collect(session: Session, all_namespaces: bool, use_ledgers: bool) -> Collected:
    try:
        jobs = session.list_jobs(all_namespaces)
    except ApiException as err:
        raise explain_api_error(err, "aijobs") from err
    notes: list[str] = []
    from_ledgers = _ledger_runs(session, all_namespaces, notes) if use_ledgers else []
    known = {run.namespace: run.tenant for run in from_ledgers}
    tenants = _tenants(session, {j["metadata"]["namespace"] for j in jobs}, known, notes)
    from_jobs = [run for job in jobs for run in runs_of_job(job, tenants[job["metadata"]["namespace"]])]
    # The ledger's copy first: its tenant is the one the operator charged.
    return Collected(merge(from_ledgers, from_jobs), notes)
