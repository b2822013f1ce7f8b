"""FederationLink status: reachability, partner capacity, the jobs placed there, and spend.

Written from what each link's worker last saw (a `LinkRuntime` snapshot), only the fields that
changed. Spend is charged once per attempt into the link's spend book (spendbook.py: ConfigMaps
keyed by attempt, so a restart between charging and forgetting a copy never counts it twice, and
a lost status loses nothing); `status.spend` shows the book's totals. Links Estuary does not use
(outside its namespace, not parsing) say why in a `Ready=False` condition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from estuary.api.aijob import FINISHED, RemoteCopy
from estuary.api.base import set_condition
from estuary.api.federationlink import (
    FederationLink,
    FederationLinkStatus,
    NetworkStatus,
    PartnerCapacity,
    TenantSpend,
)
from estuary.federation import naming, remote, spend
from estuary.federation.home import HomeApi
from estuary.federation.links import LinkObjects, Placed
from estuary.federation.network import rounded
from estuary.federation.spendbook import Charge, SpendBook
from estuary.federation.worker import LinkRuntime
from estuary.kube.status import patch
from estuary.state import codec
from estuary.state.cache import ClusterCache
from estuary.state.snapshot import ParsedJob

log = logging.getLogger("estuary.federation")


def desired(
    raw: dict[str, Any],
    runtime: LinkRuntime,
    placed: list[tuple[ParsedJob, RemoteCopy]],
    now: float,
    spent: dict[str, Charge] | None = None,
) -> FederationLinkStatus:
    """What the link's status should say now (`spent`: the spend book's totals)."""
    snap = runtime.snapshot()
    current = FederationLinkStatus.model_validate(raw.get("status") or {})
    health, stamp = snap.health, codec.rfc3339(now)
    conditions = set_condition(
        current.conditions, "Ready", health.ready, health.reason, health.message, stamp
    )
    accepting, refusal = snap.accepting
    if not accepting or any(c.type == "Accepting" for c in conditions):
        conditions = set_condition(
            conditions,
            "Accepting",
            accepting,
            "Accepting" if accepting else "Refused",
            refusal or "the partner accepted the last job sent",
            stamp,
        )
    status = FederationLinkStatus(
        reachable=health.ready,
        capacity=[
            PartnerCapacity(
                vendor=t.vendor,
                model=t.model,
                capacity=t.capacity,
                free=t.free,
                relative_throughput=t.throughput,
            )
            for t in snap.capacity
        ],
        jobs=sorted(j.key for j, _ in placed if j.phase not in FINISHED),
        conditions=conditions,
    )
    if health.last_ok is not None:
        status.last_heartbeat = codec.rfc3339(health.last_ok)
    if spent is not None:
        status.spend = [
            TenantSpend(tenant=c.tenant, accelerator_hours=c.accelerator_hours, spend=c.spend)
            for c in spent.values()
        ]
    net = snap.network
    if net.rtt_s is not None or net.bandwidth_bps is not None:
        status.network = NetworkStatus(
            rtt_milliseconds=rounded(net.rtt_s * 1000) if net.rtt_s is not None else None,
            bandwidth_mbps=rounded(net.bandwidth_bps / 1e6) if net.bandwidth_bps else None,
            source=net.source,
            measured_at=codec.rfc3339(net.measured_at) if net.measured_at else None,
        )
    return status


def unused_reason(raw: dict[str, Any], namespace: str) -> tuple[str, str]:
    """(reason, message) of a link Estuary does not use: outside its namespace, or not parsing."""
    meta = raw["metadata"]
    if meta.get("namespace") != namespace:
        return (
            "OutsideEstuaryNamespace",
            f"Estuary reads FederationLinks only in its own namespace {namespace} (where the "
            f"partners' kubeconfig Secrets live); this one in {meta.get('namespace')} is not used: "
            f"create it in {namespace}",
        )
    try:
        FederationLink.model_validate(raw)
    except ValidationError as err:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:3])
        return "InvalidSpec", f"the link cannot be used as written ({fields}); fix it with kubectl edit"
    return "Pending", "not read yet"


class LinkStatus:
    def __init__(
        self, home: HomeApi, cache: ClusterCache, namespace: str, wall: Callable[[], float] = time.time
    ) -> None:
        self.home, self.cache, self.namespace, self.wall = home, cache, namespace, wall
        self.book = SpendBook(home, namespace)

    def carry_over(self, links: LinkObjects, now: float) -> None:
        """Links with spend in their status from before the spend book: into the book, once."""
        for name, (raw, _link) in links.items():
            try:
                self.book.carry_over(name, (raw.get("status") or {}).get("spend") or [], now)
            except Exception as exc:
                log.warning(
                    "federation: carrying over the spend of link %s failed (%s)", name, type(exc).__name__
                )

    def write_unused(self, links: LinkObjects, now: float) -> None:
        """Every link Estuary does not use says why (Ready=False), once; it is never contacted."""
        for raw in self.cache.items("federationlinks").values():
            meta = raw["metadata"]
            if meta.get("deletionTimestamp") or (
                meta.get("namespace") == self.namespace and meta.get("name") in links
            ):
                continue
            reason, message = unused_reason(raw, self.namespace)
            current = FederationLinkStatus.model_validate(raw.get("status") or {})
            status = FederationLinkStatus(
                reachable=False,
                conditions=set_condition(
                    current.conditions,
                    "Ready",
                    False,
                    reason,
                    message,
                    codec.rfc3339(now),
                    meta.get("generation"),
                ),
            )
            self._patch(str(meta.get("namespace")), str(meta["name"]), raw, patch(status))

    def _patch(self, namespace: str, name: str, raw: dict[str, Any], wire: dict[str, Any]) -> None:
        current = raw.get("status") or {}
        changes = {k: v for k, v in wire.items() if current.get(k) != v}
        if not changes:
            return
        try:
            updated = self.home.patch_link_status(namespace, name, changes)
        except Exception as exc:
            log.warning(
                "federation: writing status of link %s/%s failed (%s)", namespace, name, type(exc).__name__
            )
            return
        self.cache.apply("federationlinks", "MODIFIED", updated)

    def write(self, links: LinkObjects, runtimes: dict[str, LinkRuntime], placed: Placed, now: float) -> None:
        for name, (raw, _link) in links.items():
            try:
                spent: dict[str, Charge] | None = self.book.totals(name)
            except Exception as exc:  # status.spend keeps what it said; budgets are checked in bursting
                log.warning("federation: reading the spend of link %s failed (%s)", name, type(exc).__name__)
                spent = None
            wanted = desired(raw, runtimes[name], placed.get(name, []), now, spent)
            self._patch(self.namespace, name, raw, patch(wanted))

    def charge(
        self,
        job: ParsedJob,
        ref: RemoteCopy,
        copy: remote.CopyView | None,
        links: LinkObjects,
        runtime: LinkRuntime,
    ) -> None:
        """Count the accelerator-hours this attempt used at the partner, once."""
        held = links.get(ref.link)
        if held is None:
            return
        _raw, link = held
        workers, vendor, model = _type_run(job, copy)
        per_worker = job.obj.spec.accelerators_per_worker
        start = codec.timestamp(copy.start_time) if copy else None
        end = codec.timestamp(copy.completion_time) if copy else None
        if start is not None and end is not None:
            hours = spend.accelerator_hours(start, end, workers * per_worker)
        else:
            hours = runtime.running_hours(ref.name) * workers * per_worker
        price = spend.cost_of(
            ((c.vendor, c.model, c.cost_per_accelerator_hour) for c in link.spec.costs), vendor, model
        )
        meta = job.raw["metadata"]
        attempt = naming.attempt_id(meta["namespace"], meta["name"], str(meta.get("uid")), job.status.attempt)
        if self.book.charge(ref.link, attempt, Charge(job.tenant, hours, hours * price), self.wall()):
            log.info("federation: charged %s at %s: %.3f accelerator-hours", job.key, ref.link, hours)


def _type_run(job: ParsedJob, copy: remote.CopyView | None) -> tuple[int, str, str]:
    """(workers, vendor, model) the attempt ran with: the partner's word, else the local placement."""
    placement = job.status.placement
    vendor, model = (placement.vendor, placement.model) if placement else ("", "")
    workers = placement.workers if placement and placement.workers else job.obj.spec.workers
    if copy is not None and copy.placement:
        vendor = str(copy.placement.get("vendor") or vendor)
        model = str(copy.placement.get("model") or model)
        workers = int(copy.placement.get("workers") or workers)
    return workers, vendor, model
