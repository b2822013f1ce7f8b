"""The usage ledger: every run record copied into its tenant's UsageLedger for each month it touches.

Why it exists: a job's run records go when the job is deleted; chargeback must not. The ledger is
the UsageLedger's controller, beside the job and federation controllers, and reads only what they
wrote in AIJob status (`status.runs`, kept by runrecords.py). After both have run in a tick
(handlers/loop.py), `Ledger.sync` compares the run records of all AIJobs with what the ledgers hold
(a mirror listed once, then kept from its own writes) and writes only the ledgers that differ.
Records are keyed by `namespace/job/uid/attempt`, so writing one again changes nothing
(idempotent across restarts and leader changes); a write that fails drops the mirror, and the
next step lists again. A run whose job vanished while the run was open is closed at the moment
the operator first sees it gone (outcome `Deleted`). One ledger holds at most `MAX_RECORDS`
records; a busier tenant-month continues in `<name>-2`, `<name>-3`, ...
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from estuary.api.base import API_VERSION
from estuary.usage import format_time, parse_time, run_id
from estuary.vendors.loader import tflops_per_accelerator

log = logging.getLogger("estuary.ledger")
MAX_RECORDS = 2000
Record = dict[str, Any]


class LedgerStore(Protocol):
    """Where ledgers live: `kube/client.py: RealKubeApi` (the fake API server in unit tests)."""

    def list_ledgers(self) -> list[dict[str, Any]]:
        """Every UsageLedger."""

    def create_ledger(self, manifest: dict[str, Any]) -> None:
        """Create a UsageLedger; an existing one of that name counts as done."""

    def patch_ledger_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch a UsageLedger's status subresource; returns the updated object."""


def period_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m")


def period_bounds(period: str) -> tuple[float, float]:
    year, month = (int(p) for p in period.split("-"))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start.timestamp(), end.timestamp()


def periods(start: float, end: float | None) -> list[str]:
    """Months a run touches; an open run only its first (it is added to later ones when it ends)."""
    out = [period_of(start)]
    while end is not None and period_bounds(out[-1])[1] < end:
        out.append(period_of(period_bounds(out[-1])[1]))
    return out


def ledger_name(tenant: str, period: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", tenant.lower()).strip("-")[:40] or "tenant"
    if slug != tenant:  # keep distinct tenants distinct after slugging
        slug = f"{slug}-{hashlib.sha256(tenant.encode()).hexdigest()[:6]}"
    return f"{slug}-{period}"


def totals(records: list[Record], period: str) -> tuple[float, float]:
    """Accelerator-hours and PFLOPS-hours of the finished records, clipped to the period."""
    lo, hi = period_bounds(period)
    acc = pflops = 0.0
    for r in records:
        start, end = parse_time(r.get("startTime")), parse_time(r.get("endTime"))
        if start is None or end is None:
            continue
        hours = max(0.0, min(end, hi) - max(start, lo)) / 3600.0 * int(r.get("accelerators") or 0)
        acc += hours
        pflops += hours * float(r.get("tflopsPerAccelerator") or 0) / 1000.0
    return round(acc, 6), round(pflops, 6)


def job_records(job: Mapping[str, Any]) -> list[Record]:
    """Ledger records of one AIJob's run records."""
    meta = job["metadata"]
    out = []
    for run in (job.get("status") or {}).get("runs") or []:
        attempt = int(run.get("attempt", 0))
        record: Record = {
            "id": run_id(meta["namespace"], meta["name"], meta.get("uid"), attempt),
            "namespace": meta["namespace"],
            "job": meta["name"],
            "attempt": attempt,
            **{k: run.get(k) for k in ("cluster", "pool", "vendor", "model", "accelerators", "startTime")},
        }
        for key in ("endTime", "outcome"):
            if run.get(key):
                record[key] = run[key]
        tflops = tflops_per_accelerator(str(run.get("vendor")), str(run.get("model")))
        if tflops is not None:
            record["tflopsPerAccelerator"] = tflops
        out.append(record)
    return out


def _now(_key: str, write: Callable[[], None]) -> None:
    write()


class Ledger:
    """Keeps the UsageLedgers up to date from the jobs' run records. A ledger is created at once
    (once per tenant and month); its status is written by `later` (the operator's background
    writers, control/writes.py `latest`: the loop never waits, and a newer status replaces one not
    yet sent); a write that fails makes the next sync list the ledgers again."""

    def __init__(self, store: LedgerStore, later: Callable[[str, Callable[[], None]], None] = _now) -> None:
        self.store, self.later = store, later
        self._ledgers: dict[str, dict[str, Any]] | None = None  # name -> {tenant, period, records}
        self._stale = False  # a status write failed: list the ledgers again

    def sync(
        self, jobs: Mapping[str, Mapping[str, Any]], tenant_of: Callable[[str], str], now: float
    ) -> None:
        """Bring the ledgers up to date with the jobs' run records (writes only what differs)."""
        try:
            if self._ledgers is None or self._stale:
                self._stale = False
                self._ledgers = self._load()
            wanted = self._wanted(jobs, tenant_of, now)
            for (tenant, period), records in sorted(wanted.items()):
                self._merge(tenant, period, records, now)
        except Exception:  # the next step lists the ledgers again and retries
            self._ledgers = None
            log.exception("could not update the usage ledgers; will retry on the next step")

    def _load(self) -> dict[str, dict[str, Any]]:
        out = {}
        for obj in self.store.list_ledgers():
            records = {r["id"]: r for r in (obj.get("status") or {}).get("records") or []}
            out[obj["metadata"]["name"]] = {**obj["spec"], "records": records, "created": True}
        return out

    def _wanted(
        self, jobs: Mapping[str, Mapping[str, Any]], tenant_of: Callable[[str], str], now: float
    ) -> dict[tuple[str, str], list[Record]]:
        assert self._ledgers is not None
        wanted: dict[tuple[str, str], list[Record]] = {}
        live: set[str] = set()
        for job in jobs.values():
            if job["metadata"].get("deletionTimestamp"):
                continue
            tenant = tenant_of(job["metadata"]["namespace"])
            runs = (job.get("status") or {}).get("runs") or []
            for run, record in zip(runs, job_records(job), strict=True):
                live.add(record["id"])  # an attempt's tenant was fixed at its admission
                self._place(wanted, run.get("tenant") or tenant, record)
        for ledger in self._ledgers.values():  # runs whose job vanished while they held accelerators
            for record in ledger["records"].values():
                if record["id"] not in live and not record.get("endTime"):
                    closed = {**record, "endTime": format_time(now), "outcome": "Deleted"}
                    self._place(wanted, ledger["tenant"], closed)
        return wanted

    @staticmethod
    def _place(wanted: dict[tuple[str, str], list[Record]], tenant: str, record: Record) -> None:
        start = parse_time(record["startTime"])
        if start is None:
            return
        for period in periods(start, parse_time(record.get("endTime"))):
            wanted.setdefault((tenant, period), []).append(record)

    def _merge(self, tenant: str, period: str, records: list[Record], now: float) -> None:
        assert self._ledgers is not None
        shards = [n for n, v in self._ledgers.items() if (v["tenant"], v["period"]) == (tenant, period)]
        changed: dict[str, list[Record]] = {}
        for record in records:
            home = next((n for n in shards if record["id"] in self._ledgers[n]["records"]), None)
            if home is not None and self._ledgers[home]["records"][record["id"]] == record:
                continue
            if home is None:
                home = self._shard_with_room(tenant, period, shards, changed)
            changed.setdefault(home, []).append(record)
        for name, new in changed.items():
            self._write(name, tenant, period, new, now)

    def _shard_with_room(
        self, tenant: str, period: str, shards: list[str], pending: Mapping[str, list[Record]]
    ) -> str:
        assert self._ledgers is not None
        base = ledger_name(tenant, period)
        for index in range(1, 1000):
            name = base if index == 1 else f"{base}-{index}"
            entry = self._ledgers.setdefault(name, {"tenant": tenant, "period": period, "records": {}})
            if name not in shards:
                shards.append(name)
            if len(entry["records"]) + len(pending.get(name, ())) < MAX_RECORDS:
                return name
        raise RuntimeError(f"tenant {tenant} has more than {MAX_RECORDS * 999} runs in {period}")

    def _write(self, name: str, tenant: str, period: str, new: list[Record], now: float) -> None:
        assert self._ledgers is not None
        entry = self._ledgers[name]
        records = {**entry["records"], **{r["id"]: r for r in new}}
        ordered = sorted(records.values(), key=lambda r: (r["startTime"], r["id"]))
        accelerator_hours, pflops_hours = totals(ordered, period)
        if not entry.get("created"):
            manifest = {
                "apiVersion": API_VERSION,
                "kind": "UsageLedger",
                "metadata": {
                    "name": name,
                    "labels": {"estuary.dev/tenant": tenant, "estuary.dev/period": period},
                },
                "spec": {"tenant": tenant, "period": period},
            }
            self.store.create_ledger(manifest)
        status = {
            "records": ordered,
            "acceleratorHours": accelerator_hours,
            "pflopsHours": pflops_hours,
            "updated": format_time(now),
        }
        entry.update(records=records, created=True)
        self.later(f"UsageLedger {name}", partial(self._send, name, status))

    def _send(self, name: str, status: dict[str, Any]) -> None:
        try:
            self.store.patch_ledger_status(name, status)
        except Exception as err:
            self._stale = True
            log.warning(
                "UsageLedger %s: could not write its status (%s); listing the ledgers again", name, err
            )
            return
        runs, hours = len(status["records"]), status["acceleratorHours"]
        log.info("UsageLedger %s: %d runs, %.2f accelerator-hours", name, runs, hours)
