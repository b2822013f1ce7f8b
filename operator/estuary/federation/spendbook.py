"""Spend at partner clusters, kept where a lost status cannot take it: one ConfigMap per link and
month in Estuary's namespace.

Why it exists: `FederationLink.status.spend` used to be the only record of what each tenant spent
at a partner, next to a list of the attempts already counted. A backup restored without status
(Velero's default) or a status cleared by hand reset every budget, and the list was cut at 500
entries. Now every charge is one record in the `data` of the ConfigMap
`estuary-spend-<link>-<YYYY-MM>` (labels `estuary.dev/spend-link`, `estuary.dev/period`), keyed by
the attempt (`<namespace>_<job>_<uid>_<attempt>`), so charging an attempt twice writes the same key
with the same value: idempotent across restarts and leader changes, with no list to cut.

The pattern is the usage ledger's (ledger.py): a mirror of the records, listed once and then kept
from this process's own writes; only a record that is not there yet is written; a failed write
drops the mirror and the next step lists again. Why ConfigMaps and not the UsageLedger kind:
ledger records live in the ledger's status, which is exactly what must not be lost here.

Budgets count every record of a link, whatever the month; `status.spend` is a view of those totals
(federation/linkstatus.py) and is rebuilt from here when lost. A link that still has the old
status-only spend and no records yet gets it carried over once, as one record per tenant.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from estuary.federation import naming

log = logging.getLogger("estuary.federation")
LINK_LABEL = "estuary.dev/spend-link"
PERIOD_LABEL = "estuary.dev/period"
MAX_RECORDS = 2000  # per ConfigMap (a record is ~150 bytes; a ConfigMap holds at most 1 MiB)


class SpendStore(Protocol):
    """ConfigMaps in Estuary's namespace (the API server; the fake in unit tests)."""

    def list_configmaps(self, namespace: str, label_selector: str) -> list[dict[str, Any]]: ...

    def create_configmap(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]: ...

    def patch_configmap_data(self, namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Charge:
    tenant: str
    accelerator_hours: float
    spend: float


def record_key(attempt: str) -> str:
    """A ConfigMap key for an attempt id `ns/job/uid/attempt` ('/' cannot be in a key; '_' cannot
    be in a namespace, a name or a uid, so the key stays unambiguous)."""
    return attempt.replace("/", "_")


def period_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m")


class SpendBook:
    def __init__(self, store: SpendStore, namespace: str) -> None:
        self.store, self.namespace = store, namespace
        self._books: dict[str, dict[str, Any]] | None = None  # name -> {link, period, records}

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._books is None:
            books = {}
            for cm in self.store.list_configmaps(self.namespace, LINK_LABEL):
                labels = cm["metadata"].get("labels") or {}
                records = {k: json.loads(v) for k, v in (cm.get("data") or {}).items()}
                books[cm["metadata"]["name"]] = {
                    "link": labels.get(LINK_LABEL),
                    "period": labels.get(PERIOD_LABEL),
                    "records": records,
                }
            self._books = books
        return self._books

    def _of(self, link: str) -> Iterable[dict[str, Any]]:
        label = naming.label_value(link)
        return (b for b in self._load().values() if b["link"] == label)

    def totals(self, link: str) -> dict[str, Charge]:
        """Accelerator-hours and spend per tenant at this link, over every record."""
        hours: dict[str, float] = {}
        spend: dict[str, float] = {}
        for book in self._of(link):
            for record in book["records"].values():
                tenant = str(record.get("tenant"))
                hours[tenant] = hours.get(tenant, 0.0) + float(record.get("acceleratorHours") or 0.0)
                spend[tenant] = spend.get(tenant, 0.0) + float(record.get("spend") or 0.0)
        return {t: Charge(t, round(hours[t], 6), round(spend[t], 6)) for t in sorted(hours)}

    def spent(self, link: str) -> dict[str, float]:
        """Spend per tenant at this link (what budgets are checked against). Raises when the
        records cannot be read: unknown spend must never read as none."""
        try:
            return {t: c.spend for t, c in self.totals(link).items()}
        except Exception:
            self._books = None  # the next step lists again
            raise

    def charged(self, link: str, attempt: str) -> bool:
        key = record_key(attempt)
        return any(key in book["records"] for book in self._of(link))

    def charge(self, link: str, attempt: str, charge: Charge, now: float) -> bool:
        """Record the attempt's charge once; True when this call wrote it."""
        try:
            if self.charged(link, attempt):
                return False
            record = {
                "tenant": charge.tenant,
                "acceleratorHours": round(charge.accelerator_hours, 6),
                "spend": round(charge.spend, 6),
                "chargedAt": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            self._write(link, period_of(now), record_key(attempt), record)
            return True
        except Exception:
            self._books = None  # the next step lists again and retries
            raise

    def carry_over(self, link: str, status_spend: Iterable[Mapping[str, Any]], now: float) -> None:
        """Once, for a link with spend in its status from before this book and no records."""
        if any(True for _ in self._of(link)):
            return
        for entry in status_spend:
            charge = Charge(
                str(entry.get("tenant")),
                float(entry.get("acceleratorHours") or 0),
                float(entry.get("spend") or 0),
            )
            self.charge(link, f"carried-over/{charge.tenant}/status/0", charge, now)

    def _write(self, link: str, period: str, key: str, record: dict[str, Any]) -> None:
        books = self._load()
        base = f"estuary-spend-{link}-{period}"
        name, index = base, 1
        while name in books and len(books[name]["records"]) >= MAX_RECORDS:
            index += 1
            name = f"{base}-{index}"
        value = json.dumps(record, sort_keys=True)
        if name in books:
            self.store.patch_configmap_data(self.namespace, name, {key: value})
        else:
            manifest = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": self.namespace,
                    "labels": {
                        LINK_LABEL: naming.label_value(link),
                        PERIOD_LABEL: period,
                        "app.kubernetes.io/managed-by": "estuary",
                    },
                },
                "data": {key: value},
            }
            self.store.create_configmap(self.namespace, manifest)
            books[name] = {"link": naming.label_value(link), "period": period, "records": {}}
        books[name]["records"][key] = record
