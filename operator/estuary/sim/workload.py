"""Turns a trace job into what the scheduling core sees (a ``JobRequest``) and what the clock needs
(its training rate on each pool).

The request offers only the accelerator types the job can run on in this cluster (measured rate
above zero), each with a ``throughput`` hint: the job's own rate on that type divided by its rate
on its fastest type (so the fastest is 1.0). The core therefore sees the same per-job
heterogeneity a user states in an AIJob, and its "fastest" choice is exact. The types are listed
in an order shuffled per job (stable: seeded by the job key), as users who do not know which type
is fastest would list them; a policy that takes the first free accepted type is then
heterogeneity-agnostic rather than systematically drawn to the first declared pool.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from estuary.model import AcceptedType, JobRequest, Resources
from estuary.sim.cluster import SimCluster
from estuary.sim.throughputs import ThroughputTable
from estuary.sim.traces import TraceJob

CPU_MILLI_PER_ACCELERATOR = 4_000
MEMORY_PER_ACCELERATOR = 16 * 2**30


@dataclass(frozen=True, slots=True)
class SimJob:
    trace: TraceJob
    request: JobRequest
    rates: Mapping[str, float]  # pool name -> steps/s of the whole gang there (> 0 only)

    @property
    def key(self) -> str:
        return self.request.key

    @property
    def accelerators(self) -> int:
        return self.request.workers * self.request.per_worker.accelerators

    def runtime(self, pool: str, steps: float | None = None) -> float:
        return (self.trace.steps if steps is None else steps) / self.rates[pool]

    @property
    def fastest_runtime(self) -> float:
        return self.trace.steps / max(self.rates.values())


def gang_shape(accelerators: int, unit: int) -> tuple[int, int]:
    """(workers, accelerators per worker): one worker up to a node, else whole-node workers.

    A request that is not a multiple of ``unit`` is rounded up to equal workers (e.g. 12 on
    8-accelerator nodes: 2 workers x 6)."""
    if accelerators <= unit:
        return 1, accelerators
    workers = math.ceil(accelerators / unit)
    return workers, math.ceil(accelerators / workers)


def to_sim_job(job: TraceJob, cluster: SimCluster, table: ThroughputTable) -> SimJob | None:
    """None when no pool of the cluster has a rate for the job's type and scale."""
    rates = {p.name: table.rate(p.worker_type, job.job_type, job.scale) for p in cluster.pools}
    rates = {name: r for name, r in rates.items() if r > 0}
    if not rates:
        return None
    fastest = max(rates.values())
    accepted: dict[tuple[str, str], float] = {}
    for p in cluster.pools:
        if p.name in rates:
            hint = rates[p.name] / fastest
            accepted[(p.vendor, p.model)] = max(hint, accepted.get((p.vendor, p.model), 0.0))
    order = list(accepted.items())
    random.Random(zlib.crc32(job.key.encode())).shuffle(order)
    workers, per = gang_shape(job.accelerators, cluster.gang_unit)
    request = JobRequest(
        key=job.key,
        tenant=job.tenant,
        workers=workers,
        per_worker=Resources(per, CPU_MILLI_PER_ACCELERATOR * per, MEMORY_PER_ACCELERATOR * per),
        accepted=tuple(AcceptedType(vendor, model, round(hint, 6)) for (vendor, model), hint in order),
        arrival=job.arrival,
        work=workers * per * job.steps / fastest,
        time_sharing=True,  # opted in: only a policy with time-sharing reads it
    )
    return SimJob(job, request, rates)
