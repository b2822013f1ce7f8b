"""The operator's Prometheus metrics, on a registry of their own.

The scheduling loop and the handlers call the small typed functions at the bottom (`record_*` for
events, `set_*` for state recomputed each cycle); nothing else in the operator touches
prometheus_client. A dedicated registry keeps the exposition to Estuary's metrics (plus none of the
process/platform collectors of the global default) and lets tests build a fresh `OperatorMetrics`.

The `set_*` functions take the complete current state and drop label sets that vanished: a tenant
whose queue emptied shows no stale "3 queued" forever. Only the leader computes that state, so a
replica that stops leading clears it (`clear_state`): dashboards that sum over replicas never count
a failover twice. `estuary_leader` says which replica acts, `estuary_build_info` which version
runs, and the standard process metrics (CPU, memory, open files) come from prometheus_client's
process and platform collectors. Counters and histograms follow Prometheus naming (`_total`,
`_seconds`); docs/telemetry.md lists every metric with its labels.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from estuary.api.aijob import Phase

JOB_PHASES: tuple[str, ...] = tuple(p.value for p in Phase)
POOL_STATES: tuple[str, ...] = ("capacity", "healthy", "allocated", "free")

QUEUE_WAIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
JOB_START_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
CYCLE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """One ComputePool's accelerators, as the last scheduling cycle saw them.

    capacity: allocatable on the pool's nodes; healthy: capacity minus what node agents report
    unhealthy; allocated: held by admitted or running jobs; by_tenant: allocated, per tenant.
    """

    capacity: int
    healthy: int
    allocated: int
    by_tenant: Mapping[str, int] = field(default_factory=dict)
    tflops_per_accelerator: float | None = None  # peak dense FP16/BF16, when the profiles know it

    @property
    def free(self) -> int:
        return max(self.healthy - self.allocated, 0)


class _LabelSets:
    """Remembers which label sets a gauge was given, to remove the ones that vanish."""

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._current: set[tuple[str, ...]] = set()

    def replace(self, values: Iterable[tuple[tuple[str, ...], float]]) -> None:
        fresh: set[tuple[str, ...]] = set()
        for labels, value in values:
            self._gauge.labels(*labels).set(value)
            fresh.add(labels)
        for gone in self._current - fresh:
            self._gauge.remove(*gone)
        self._current = fresh


class OperatorMetrics:
    """Every operator metric on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._declare_job_metrics(self.registry)
        self._declare_cluster_metrics(self.registry)
        self._declare_process_metrics(self.registry)
        self._queue = _LabelSets(self.queue_length)
        self._pools = _LabelSets(self.pool_accelerators)
        self._pflops = _LabelSets(self.pool_pflops)
        self._tenants = _LabelSets(self.tenant_used)
        self._phases = _LabelSets(self.jobs)

    def _declare_job_metrics(self, r: CollectorRegistry) -> None:
        self.queue_length = Gauge(
            "estuary_queue_length",
            "Jobs waiting for admission, by tenant and their first accepted accelerator type.",
            ["tenant", "accelerator"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "estuary_queue_wait_seconds",
            "Time from a job's creation to its admission.",
            ["tenant", "pool"],
            buckets=QUEUE_WAIT_BUCKETS,
            registry=r,
        )
        self.admissions = Counter(
            "estuary_admissions", "Jobs admitted to a pool.", ["tenant", "pool"], registry=r
        )
        self.preemptions = Counter(
            "estuary_preemptions", "Jobs preempted, by reason.", ["tenant", "pool", "reason"], registry=r
        )
        self.migrations = Counter(
            "estuary_migrations",
            "Running jobs moved to another pool (a faster type), by reason.",
            ["tenant", "source_pool", "target_pool", "reason"],
            registry=r,
        )
        self.bursts = Counter(
            "estuary_bursts", "Jobs placed at a partner cluster.", ["tenant", "link"], registry=r
        )
        self.job_start = Histogram(
            "estuary_job_start_seconds",
            "Time from a job's creation until all of its workers are Running.",
            ["tenant", "pool"],
            buckets=JOB_START_BUCKETS,
            registry=r,
        )

    def _declare_cluster_metrics(self, r: CollectorRegistry) -> None:
        self.pool_accelerators = Gauge(
            "estuary_pool_accelerators",
            "Accelerators of a pool by state: capacity, healthy, allocated, free.",
            ["pool", "state"],
            registry=r,
        )
        self.pool_pflops = Gauge(
            "estuary_pool_pflops",
            "A pool's accelerators by state, in PFLOPS (peak dense FP16/BF16; pools whose model has "
            "no figure in the vendor profiles are absent).",
            ["pool", "state"],
            registry=r,
        )
        self.tenant_used = Gauge(
            "estuary_tenant_accelerators_used",
            "Accelerators of a pool held by a tenant's jobs.",
            ["pool", "tenant"],
            registry=r,
        )
        self.reconcile_errors = Counter(
            "estuary_reconcile_errors", "Handler errors, by resource kind.", ["kind"], registry=r
        )
        self.api_requests = Counter(
            "estuary_api_requests",
            "Writes the operator sent to the API server, by verb and resource.",
            ["verb", "resource"],
            registry=r,
        )
        self.jobs = Gauge("estuary_jobs", "AIJobs by phase.", ["phase"], registry=r)
        self.cycle = Histogram(
            "estuary_scheduling_cycle_seconds",
            "Duration of one scheduling cycle.",
            buckets=CYCLE_BUCKETS,
            registry=r,
        )

    def _declare_process_metrics(self, r: CollectorRegistry) -> None:
        self.leader = Gauge(
            "estuary_leader", "1 while this replica holds the leader Lease and acts, else 0.", registry=r
        )
        self.build_info = Gauge(
            "estuary_build_info", "Always 1; the labels say what runs.", ["version", "python"], registry=r
        )
        try:
            version = metadata.version("estuary")
        except metadata.PackageNotFoundError:
            version = "unknown"
        self.build_info.labels(version, platform.python_version()).set(1)
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
        PlatformCollector(registry=r)  # python_info

    def set_leader(self, leader: bool) -> None:
        self.leader.set(1 if leader else 0)

    def clear_state(self) -> None:
        """Drop every gauge only the leader computes (queue, pools, tenants, jobs by phase)."""
        with self._lock:
            for sets in (self._queue, self._pools, self._tenants, self._phases):
                sets.replace(())

    def record_admission(self, tenant: str, pool: str, wait_s: float) -> None:
        self.admissions.labels(tenant, pool).inc()
        self.queue_wait.labels(tenant, pool).observe(max(wait_s, 0.0))

    def record_running(self, tenant: str, pool: str, start_s: float) -> None:
        self.job_start.labels(tenant, pool).observe(max(start_s, 0.0))

    def record_preemption(self, tenant: str, pool: str, reason: str) -> None:
        self.preemptions.labels(tenant, pool, reason).inc()

    def record_migration(self, tenant: str, source: str, target: str, reason: str) -> None:
        self.migrations.labels(tenant, source, target, reason).inc()

    def record_burst(self, tenant: str, link: str) -> None:
        self.bursts.labels(tenant, link).inc()

    def record_reconcile_error(self, kind: str) -> None:
        self.reconcile_errors.labels(kind).inc()

    def record_cycle(self, seconds: float) -> None:
        self.cycle.observe(max(seconds, 0.0))

    def set_queue(self, counts: Mapping[tuple[str, str], int]) -> None:
        with self._lock:
            self._queue.replace(((tenant, acc), float(n)) for (tenant, acc), n in counts.items())

    def set_pool_usage(self, pools: Mapping[str, PoolUsage]) -> None:
        with self._lock:
            self._pools.replace(
                ((pool, state), float(value))
                for pool, u in pools.items()
                for state, value in zip(
                    POOL_STATES, (u.capacity, u.healthy, u.allocated, u.free), strict=True
                )
            )
            self._pflops.replace(
                ((pool, state), value * (u.tflops_per_accelerator or 0) / 1000.0)
                for pool, u in pools.items()
                if u.tflops_per_accelerator is not None
                for state, value in zip(
                    POOL_STATES, (u.capacity, u.healthy, u.allocated, u.free), strict=True
                )
            )
            self._tenants.replace(
                ((pool, tenant), float(n)) for pool, u in pools.items() for tenant, n in u.by_tenant.items()
            )

    def set_jobs_by_phase(self, counts: Mapping[str, int]) -> None:
        with self._lock:
            phases = dict.fromkeys(JOB_PHASES, 0) | dict(counts)
            self._phases.replace(((phase,), float(n)) for phase, n in phases.items())


METRICS = OperatorMetrics()
REGISTRY: CollectorRegistry = METRICS.registry


def record_admission(tenant: str, pool: str, wait_s: float) -> None:
    """A job was admitted to `pool` after waiting `wait_s` seconds since its creation."""
    METRICS.record_admission(tenant, pool, wait_s)


def record_running(tenant: str, pool: str, start_s: float) -> None:
    """All workers of a job are Running, `start_s` seconds after its creation."""
    METRICS.record_running(tenant, pool, start_s)


def record_preemption(tenant: str, pool: str, reason: str) -> None:
    """A job of `tenant` was preempted in `pool`. Keep `reason` to a small fixed set."""
    METRICS.record_preemption(tenant, pool, reason)


def record_migration(tenant: str, source: str, target: str, reason: str) -> None:
    """A running job of `tenant` was stopped in pool `source` to move to pool `target`."""
    METRICS.record_migration(tenant, source, target, reason)


def record_burst(tenant: str, link: str) -> None:
    """A job was placed at the partner cluster behind FederationLink `link`."""
    METRICS.record_burst(tenant, link)


def record_reconcile_error(kind: str) -> None:
    """A handler for `kind` (AIJob, ComputePool, FederationLink, Node, ...) failed."""
    METRICS.record_reconcile_error(kind)


def record_api_request(verb: str, resource: str) -> None:
    """The operator sent one request (create, delete, patch) for `resource` to the API server."""
    METRICS.api_requests.labels(verb=verb, resource=resource).inc()


def record_cycle(seconds: float) -> None:
    """One scheduling cycle took `seconds`."""
    METRICS.record_cycle(seconds)


def set_queue(counts: Mapping[tuple[str, str], int]) -> None:
    """Queued jobs per (tenant, first accepted accelerator type); absent pairs are removed."""
    METRICS.set_queue(counts)


def set_pool_usage(pools: Mapping[str, PoolUsage]) -> None:
    """Every pool's accelerator states and per-tenant usage; absent pools and tenants are removed."""
    METRICS.set_pool_usage(pools)


def set_leader(leader: bool) -> None:
    """Whether this replica acts (holds the leader Lease)."""
    METRICS.set_leader(leader)


def clear_state() -> None:
    """This replica stopped leading: its cluster-state gauges are no longer true."""
    METRICS.clear_state()


def set_jobs_by_phase(counts: Mapping[str, int]) -> None:
    """AIJobs per phase; the standard phases are always exported (0 when absent)."""
    METRICS.set_jobs_by_phase(counts)
