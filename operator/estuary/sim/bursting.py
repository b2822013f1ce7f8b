"""Bursting in the simulator: partner clusters beyond measured links, and the cost of moving each
job's data there first, decided by the operator's own chooser (federation/choose.py) and costed by
its own data-movement arithmetic (federation/datamove.py).

The engine calls `Burster.offer` for every job still waiting after a scheduling cycle (the hook in
engine.py); a job the chooser sends to a partner leaves the home queue: it starts there once its
data has arrived (`datamove.plan`: size / bandwidth + round trips) and runs at that partner's
measured rate for its type. What the model leaves out: the partner's own queue (a job is sent only
where it can start now, as the chooser's first preference), the lease and heartbeat latency (a few
seconds), and failures at the partner. The traces carry no datasets, so every job reads one of a
given size from a given place (`DataModel`); docs/simulator.md shows when bursting pays.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from estuary.federation import datamove
from estuary.federation.choose import JobDemand, LinkOffer, TypeOffer, choose
from estuary.model import AcceptedType, JobRequest, Reason, Waiting
from estuary.sim.cluster import KNOWN_TYPES
from estuary.sim.throughputs import ThroughputTable
from estuary.sim.workload import SimJob

NEVER_HERE = (Reason.NEVER_FITS, Reason.NO_POOL)  # reasons that burst a job at once


@dataclass(frozen=True)
class SimPartner:
    name: str
    worker_type: str  # throughput-table type of its accelerators
    accelerators: int
    path: datamove.Path
    price_per_hour: float = 0.0
    jurisdiction: str = "mainland"


@dataclass(frozen=True)
class DataModel:
    """The dataset every job reads (the traces have none): its size, and where it lives."""

    size_bytes: int = 0
    cluster: str = datamove.LOCAL
    jurisdiction: str = "hk"


@dataclass(frozen=True)
class Sent:
    key: str
    partner: str
    sent_at: float
    start: float  # when its data is there and it starts
    end: float
    move: datamove.Move
    compute_cost: float


@dataclass
class _Occupancy:
    """A partner's accelerators over time: a heap of (end, accelerators) of the jobs it runs."""

    capacity: int
    running: list[tuple[float, int]] = field(default_factory=list)
    used: int = 0

    def free(self, now: float) -> int:
        while self.running and self.running[0][0] <= now:
            self.used -= heapq.heappop(self.running)[1]
        return self.capacity - self.used

    def hold(self, until: float, accelerators: int) -> None:
        heapq.heappush(self.running, (until, accelerators))
        self.used += accelerators


class Burster:
    def __init__(
        self,
        partners: Sequence[SimPartner],
        table: ThroughputTable,
        data: DataModel = DataModel(),
        after_seconds: float = 600.0,
        max_data_seconds: float | None = None,
    ) -> None:
        self.partners = {p.name: p for p in partners}
        self.table, self.data, self.after_seconds = table, data, after_seconds
        self.max_data_seconds = max_data_seconds
        self.occupancy = {p.name: _Occupancy(p.accelerators) for p in partners}
        self.sent: list[Sent] = []

    def _rate(self, job: SimJob, partner: SimPartner) -> float:
        return self.table.rate(partner.worker_type, job.trace.job_type, job.trace.scale)

    def _offer(self, job: SimJob, partner: SimPartner, now: float) -> LinkOffer:
        vendor, model, _ = KNOWN_TYPES.get(partner.worker_type, ("other", partner.worker_type, ""))
        speed = self._rate(job, partner) / max(job.rates.values())
        free = self.occupancy[partner.name].free(now)
        return LinkOffer(
            name=partner.name,
            jurisdiction=partner.jurisdiction,
            allowed_residency=frozenset({"any", partner.jurisdiction}),
            allowed_tenants=frozenset({job.request.tenant}),
            after_seconds=self.after_seconds,
            when_never_fits=True,
            ready=True,
            types=(TypeOffer(vendor, model, partner.accelerators, free, speed),) if speed > 0 else (),
            costs=((vendor, model, partner.price_per_hour),),
            budgets={job.request.tenant: math.inf},
            path=partner.path,
            max_data_seconds=self.max_data_seconds,
        )

    def offer(self, job: SimJob, now: float, never_fits: bool = False) -> Sent | None:
        """Send the waiting job to a partner if the chooser says so and it can start there now."""
        links = [self._offer(job, p, now) for p in self.partners.values()]
        accepted = tuple(AcceptedType(t.vendor, t.model, t.throughput) for lk in links for t in lk.types)
        data = self.data
        datasets = (
            (datamove.Dataset("data", data.cluster, data.jurisdiction, data.size_bytes),)
            if data.size_bytes
            else ()
        )
        demand = JobDemand(
            key=job.key,
            tenant=job.request.tenant,
            residency="any",
            accepted=accepted,
            accelerators=job.accelerators,
            min_accelerators=job.accelerators,
            waited=now - job.request.arrival,
            never_fits=never_fits,
            datasets=datasets,
            estimated_seconds=job.fastest_runtime,
        )
        decision = choose(demand, links)
        if decision.link is None or not decision.start_now:
            return None
        partner = self.partners[decision.link]
        move = datamove.plan(datasets, partner.path, {p.path.cluster: p.path for p in self.partners.values()})
        start = now + move.seconds
        end = start + job.trace.steps / self._rate(job, partner)
        self.occupancy[partner.name].hold(end, job.accelerators)
        compute = (end - start) / 3600 * job.accelerators * partner.price_per_hour
        sent = Sent(job.key, partner.name, now, start, end, move, compute)
        self.sent.append(sent)
        return sent

    def take(
        self,
        pending: dict[str, JobRequest],
        states: Mapping[str, Any],
        waiting: Mapping[str, Waiting],
        now: float,
    ) -> Iterator[tuple[str, Sent]]:
        """The engine's hook, after each cycle: offer every job still waiting (oldest first)."""
        for key in sorted(pending, key=lambda k: (pending[k].arrival, k)):
            why = waiting.get(key)
            sent = self.offer(states[key].job, now, never_fits=why is not None and why.reason in NEVER_HERE)
            if sent is not None:
                del pending[key]
                yield key, sent


@dataclass(frozen=True)
class BurstSummary:
    jobs: int
    data_tb: float
    data_hours: float  # summed over jobs: time their data spent moving
    egress_cost: float
    compute_cost: float


def summary(sent: Sequence[Sent]) -> BurstSummary:
    return BurstSummary(
        len(sent),
        sum(s.move.gigabytes for s in sent) / 1000,
        sum(s.move.seconds for s in sent) / 3600,
        sum(s.move.cost for s in sent),
        sum(s.compute_cost for s in sent),
    )
