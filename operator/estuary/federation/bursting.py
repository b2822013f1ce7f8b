"""Origin side: send waiting jobs to the best FederationLink, or say why they may not go.

A job is a candidate when it is burst-enabled, Queued without a placement, and due to be
scheduled; the job controller's cycle wrote why it waits (`status.reason`) and where it stands in
the queue (`status.queuePosition`), which is all this module reads of the cycle. Candidates are
tried in queue order against each link's offer (its partner's capacity as the link's worker last
saw it, less what this cluster already sent there); `choose.py` decides. A chosen job gets its
placement at the link in status (the worker then creates the copy); one that may not go gets a
`Burst` condition saying why, which the job controller appends to its waiting message.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Container, Mapping
from typing import Any

from estuary.api.aijob import (
    ADMITTED_CONDITION,
    BURST_CONDITION,
    FINISHED,
    AIJobStatus,
    Phase,
    Placement,
    RemoteCopy,
)
from estuary.api.base import set_condition
from estuary.api.federationlink import FederationLink
from estuary.federation import datamove, naming, remote, spend
from estuary.federation.choose import Decision, JobDemand, LinkOffer, TypeOffer, Why, choose
from estuary.federation.links import FederationConfig, LinkObjects, Placed, Sent
from estuary.federation.worker import LinkRuntime
from estuary.kube.status import JobWriter
from estuary.model import AcceptedType, Reason
from estuary.state import codec, quantity
from estuary.state.snapshot import ParsedJob, is_pending

log = logging.getLogger("estuary.federation")
NEVER_HERE = (Reason.NEVER_FITS.value, Reason.NO_POOL.value, Reason.RESIDENCY.value)
WAITING_REASONS = frozenset(r.value for r in Reason)  # what the cycle writes as a waiting job's reason
QUIET = (Why.NOT_YET, Why.DISABLED, Why.NO_LINKS)  # nothing to say: a stale Burst=False goes


def need(job: ParsedJob) -> tuple[int, int]:
    """(accelerators of all workers, accelerators to start) of a job."""
    spec = job.obj.spec
    workers = spec.elastic.max_workers if spec.elastic else spec.workers
    least = spec.elastic.min_workers if spec.elastic else spec.workers
    return workers * spec.accelerators_per_worker, least * spec.accelerators_per_worker


def datasets(job: ParsedJob) -> tuple[datamove.Dataset, ...]:
    return tuple(
        datamove.Dataset(d.name, d.cluster, d.jurisdiction, quantity.parse(d.size), d.residency)
        for d in job.obj.spec.datasets or []
    )


def candidates(jobs: Mapping[str, ParsedJob], now: float, copies: Container[str] = ()) -> list[ParsedJob]:
    """Jobs that may burst: burst-enabled, Queued and due, with the cycle's verdict on why they
    wait (a job given up by its partner this step waits for the next cycle's), in queue order.
    Copies other clusters sent here never burst on (`copies`: their keys)."""
    out = [
        job
        for job in jobs.values()
        if job.obj.spec.burst.enabled
        and job.key not in copies
        and job.phase == Phase.QUEUED
        and job.status.reason in WAITING_REASONS
        and is_pending(job, now)
    ]
    return sorted(out, key=lambda j: (j.status.queue_position is None, j.status.queue_position or 0, j.key))


def taken(offer: LinkOffer, decision: Decision, demand: JobDemand) -> LinkOffer:
    """The offer after the job was sent there."""
    types = tuple(
        dataclasses.replace(t, free=max(0, t.free - demand.accelerators))
        if (t.vendor, t.model) == (decision.vendor, decision.model)
        else t
        for t in offer.types
    )
    return dataclasses.replace(
        offer, types=types, jobs=offer.jobs + 1, accelerators=offer.accelerators + demand.accelerators
    )


def offer(
    name: str,
    held: tuple[dict[str, Any], FederationLink],
    runtime: LinkRuntime,
    placed: list[tuple[ParsedJob, RemoteCopy]],
    recorded: Mapping[str, float],
) -> LinkOffer:
    """What a link offers now: the partner's capacity less what this cluster sent, and spend
    (`recorded`: the link's spend book, this step's charges included, plus what running copies
    have used so far)."""
    _raw, link = held
    snap, spec = runtime.snapshot(), link.spec
    network = snap.network
    costs = tuple((c.vendor, c.model, c.cost_per_accelerator_hour) for c in spec.costs)
    free = {(t.vendor, t.model): t.free for t in snap.capacity}
    spent = dict(recorded)
    jobs = accelerators = 0
    for job, ref in placed:
        if job.phase in FINISHED:
            continue
        total, _ = need(job)
        jobs += 1
        accelerators += total
        copy, placement = snap.copies.get(ref.name), job.status.placement
        if placement is None:
            continue
        kind = (placement.vendor, placement.model)
        if (copy is None or copy.phase in (None, Phase.QUEUED)) and kind in free:
            free[kind] -= total  # sent, not yet counted in the partner's pools
        running = runtime.running_for(ref.name)
        if running > 0:
            price = spend.cost_of(costs, placement.vendor, placement.model)
            spent[job.tenant] = spent.get(job.tenant, 0.0) + running / 3600 * total * price
    return LinkOffer(
        name=name,
        jurisdiction=spec.jurisdiction,
        allowed_residency=frozenset(spec.allowed_residency),
        allowed_tenants=frozenset(spec.allowed_tenants),
        after_seconds=spec.burst.after_seconds,
        when_never_fits=spec.burst.when_never_fits,
        ready=snap.health.ready and not runtime.deleted,
        not_ready=f"{snap.health.reason}: {snap.health.message}",
        types=tuple(
            TypeOffer(t.vendor, t.model, t.capacity, max(0, free[(t.vendor, t.model)]), t.throughput)
            for t in snap.capacity
        ),
        costs=costs,
        budgets={b.tenant: b.budget for b in spec.budgets},
        spent=spent,
        jobs=jobs,
        accelerators=accelerators,
        max_jobs=spec.limits.max_jobs,
        max_accelerators=spec.limits.max_accelerators,
        max_data_seconds=spec.burst.max_data_seconds,
        path=datamove.Path(
            spec.cluster_name or name, network.rtt_s, network.bandwidth_bps, spec.network.egress_cost_per_gb
        ),
    )


class Bursting:
    def __init__(
        self,
        writer: JobWriter,
        config: FederationConfig,
        sent: Sent,
        runtimes: Mapping[str, LinkRuntime],
        spent: Callable[[str], Mapping[str, float]],
    ) -> None:
        self.writer, self.config, self.sent, self.runtimes = writer, config, sent, runtimes
        self.spent = spent  # link -> spend per tenant (spendbook.py)
        self._nonce = uuid.uuid4().hex[:8]

    def burst(
        self,
        jobs: Mapping[str, ParsedJob],
        links: LinkObjects,
        placed: Placed,
        now: float,
        copies: Container[str] = (),
    ) -> None:
        offers = {}
        for name, held in links.items():
            try:
                recorded = self.spent(name)
            except Exception as exc:  # unknown spend: the link offers nothing this step
                log.warning(
                    "federation: spend at link %s unknown (%s); not bursting there", name, type(exc).__name__
                )
                continue
            offers[name] = offer(name, held, self.runtimes[name], placed.get(name, []), recorded)
        for job in candidates(jobs, now, copies):
            demand = self._demand(job, now)
            decision = choose(demand, list(offers.values()), self.config.cluster_name)
            try:
                if decision.link is not None:
                    self._send(job, decision, links[decision.link][1], now)
                    offers[decision.link] = taken(offers[decision.link], decision, demand)
                else:
                    self._say_why_not(job, decision, now)
            except Exception as exc:
                log.error("federation: bursting %s failed (%s)", job.key, type(exc).__name__)

    def _excluded(self, job: ParsedJob, now: float) -> dict[str, str]:
        """Links the job may not go to now: one refused it recently, or still removes its
        previous copy (a later listing must show that copy gone)."""
        excluded = {
            link: "refused this job recently"
            for link, until in self.sent.excluded.get(job.key, {}).items()
            if until > now
        }
        cleanup = self.sent.cleanup.get(job.key, {})
        for link, (old, beats) in list(cleanup.items()):
            runtime = self.runtimes.get(link)
            snap = runtime.snapshot() if runtime is not None else None
            if snap is not None and (snap.heartbeats <= beats or old in snap.listed):
                excluded.setdefault(link, "still holds this job's previous copy (being removed)")
            else:
                del cleanup[link]
        if not cleanup:
            self.sent.cleanup.pop(job.key, None)
        return excluded

    def _demand(self, job: ParsedJob, now: float) -> JobDemand:
        spec, status = job.obj.spec, job.status
        total, least = need(job)
        queued = (
            codec.timestamp(status.queued_at)
            or codec.timestamp(job.raw["metadata"].get("creationTimestamp"))
            or now
        )
        return JobDemand(
            key=job.key,
            tenant=job.tenant,
            residency=spec.residency,
            accepted=tuple(AcceptedType(a.vendor, a.model, a.relative_throughput) for a in spec.accelerators),
            accelerators=total,
            min_accelerators=least,
            waited=max(0.0, now - queued),
            enabled=spec.burst.enabled,
            after_seconds=spec.burst.after_seconds,
            never_fits=status.reason in NEVER_HERE,
            excluded=self._excluded(job, now),
            datasets=datasets(job),
            estimated_seconds=spec.estimated_duration_seconds,
        )

    def _send(self, job: ParsedJob, decision: Decision, link: FederationLink, now: float) -> None:
        """Status first (the job now points at its copy), then the worker creates the copy: a
        crash in between leaves a job whose copy is missing, given up after the lease."""
        assert decision.link is not None and decision.vendor is not None and decision.model is not None
        meta, spec = job.raw["metadata"], job.obj.spec
        attempt = job.status.attempt + 1
        name = naming.remote_name(
            self.config.cluster_name, meta["namespace"], meta["name"], str(meta.get("uid")), attempt
        )
        self.sent.fresh[name] = remote.manifest(
            job.obj,
            origin=self.config.cluster_name,
            link=decision.link,
            link_uid=str(link.metadata.get("uid") or ""),
            jurisdiction=link.spec.jurisdiction,
            allowed_residency=list(link.spec.allowed_residency),
            namespace=link.spec.remote_namespace,
            name=name,
            attempt=attempt,
            lease_seconds=link.spec.lease_seconds,
            token=f"{self._nonce}.0",
            accelerator=f"{decision.vendor}/{decision.model}",
            fence=link.spec.fencing,
        )
        stamp, message = codec.rfc3339(now), decision.message
        admitted = set_condition(job.conditions, ADMITTED_CONDITION, True, "Burst", message, stamp)
        self.writer.status(
            job,
            AIJobStatus(
                phase=Phase.ADMITTED,
                reason="Burst",
                message=message,
                attempt=attempt,
                placement=Placement(
                    cluster=decision.link,
                    link=decision.link,
                    pool="",
                    vendor=decision.vendor,
                    model=decision.model,
                    resource="",
                    nodes=[],
                    workers=spec.elastic.max_workers if spec.elastic else spec.workers,
                ),
                accelerator=f"{decision.vendor}/{decision.model}",
                queue_position=None,
                admitted_at=stamp,
                retry_after=None,
                remote=RemoteCopy(
                    link=decision.link,
                    namespace=link.spec.remote_namespace,
                    name=name,
                    lease_seconds=link.spec.lease_seconds,
                ),
                conditions=set_condition(admitted, BURST_CONDITION, True, "Burst", message, stamp),
            ),
        )
        self.writer.event(job, "Burst", message)

    def _say_why_not(self, job: ParsedJob, decision: Decision, now: float) -> None:
        """The job's Burst condition: False with why, or gone when there is nothing to say."""
        current = job.condition(BURST_CONDITION)
        if decision.message:
            if current is not None and (current.status, current.reason, current.message) == (
                "False",
                decision.why.value,
                decision.message,
            ):
                return
            stamp = codec.rfc3339(now)
            conditions = set_condition(
                job.conditions, BURST_CONDITION, False, decision.why.value, decision.message, stamp
            )
            self.writer.status(job, AIJobStatus(conditions=conditions))
        elif current is not None and current.status == "False" and decision.why in QUIET:
            remaining = [c for c in job.conditions if c.type != BURST_CONDITION]
            self.writer.status(job, AIJobStatus(conditions=remaining))
