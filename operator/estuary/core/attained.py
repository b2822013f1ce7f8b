"""Time-sharing by attained service: queue levels, who may yield to whom, and the costs of a move.

Why it exists: run-to-completion lets one long job block many short ones. Tiresias (NSDI'19)
shows that, without knowing job durations, ranking jobs by the service they have already had
(least attained first, discretised into a few queues so that jobs do not swap places on every
cycle) cuts average completion time several-fold. Service here is accelerator-seconds weighted
by the type's speed for the job (its own throughput hint, else the pool's), so an hour on a slow
type counts for less than an hour on a fast one.

Rules, for jobs that opt in (`JobRequest.time_sharing`) under a policy with `time_sharing` set:
- level = the number of thresholds a job's attained service has reached (0 = least served); a
  pending job that has waited `promote_after` x its own run time since it last joined the queue
  (and at least `min_slice_s`) is promoted to level 0: no job starves;
- the queue is ordered by priority, then level, then arrival (queue.py);
- a job may evict ("Service") a running opted-in job of the same priority, in a strictly higher
  level, that ran at least `min_slice_s` since it last started, and only of its own tenant where
  the pool enforces quotas (quota guarantees and priorities stay as they are);
- non-opted-in jobs are never victims of these rules, and always rank at level 0 (attained 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from estuary.core.candidates import Candidate
from estuary.core.policy import HOUR, TimeSharing
from estuary.core.workspace import Workspace
from estuary.model import AcceptedType, JobRequest, PoolSpec, RunningJob

SERVICE = "Service"
MIGRATE = "Migrate"


def speed(job: JobRequest, pool: PoolSpec) -> float:
    """The job's relative speed on a pool: its first matching accepted type's, 0 if none."""
    return _speed(job.accepted, pool.vendor, pool.model, pool.throughput)


@lru_cache(maxsize=4096)
def _speed(accepted: tuple[AcceptedType, ...], vendor: str, model: str, throughput: float) -> float:
    """Memoised: the Service rule and the migration pass ask it for every running job every
    cycle, and jobs of one type share their accepted types (a pure function of its arguments)."""
    for choice in accepted:
        if choice.matches(vendor, model):
            rate = choice.throughput if choice.throughput is not None else throughput
            return 1.0 / (1.0 / rate) if rate > 0 else 0.0  # as 1 / runtime_factor, to the last bit
    return 0.0


def accelerators(job: JobRequest, workers: int) -> int:
    return job.per_worker.accelerators * workers


def attained_now(running: RunningJob, pool: PoolSpec, now: float) -> float:
    """Service so far: earlier runs plus this one (accelerator-seconds x speed)."""
    held = max(0.0, now - running.started)
    size = accelerators(running.job, running.assignment.workers)
    return running.job.attained + held * size * speed(running.job, pool)


def level_of(service: float, ts: TimeSharing) -> int:
    return sum(1 for t in ts.thresholds if service >= t)


def run_time(job: JobRequest, service: float) -> float:
    """Seconds the job has run, roughly: its service over its size (at speed 1)."""
    return service / max(1, accelerators(job, job.workers))


def pending_level(job: JobRequest, now: float, ts: TimeSharing) -> int:
    """A pending job's level; a starving one is promoted to 0."""
    if not job.time_sharing or job.attained <= 0:
        return 0
    since = job.queued_since if job.queued_since is not None else job.arrival
    if now - since >= max(ts.min_slice_s, ts.promote_after * run_time(job, job.attained)):
        return 0
    return level_of(job.attained, ts)


class Ranker:
    """Puts each pending job's level on it, reusing last cycle's request when the level is the
    same (so the carried queue sees the very same object and keeps its place; state.py)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[JobRequest, JobRequest]] = {}

    def rank(self, pending: Sequence[JobRequest], now: float, ts: TimeSharing | None) -> Sequence[JobRequest]:
        """The pending jobs with their levels; as given when the policy does not share time."""
        if ts is None:
            return pending
        out: list[JobRequest] = []
        kept: dict[str, tuple[JobRequest, JobRequest]] = {}
        for job in pending:
            level = pending_level(job, now, ts)
            last = self._last.get(job.key)
            if last is not None and last[0] is job and last[1].level == level:
                ranked = last[1]
            else:
                ranked = job if job.level == level else replace(job, level=level)
            kept[job.key] = (job, ranked)
            out.append(ranked)
        self._last = kept
        return out


@dataclass(frozen=True, slots=True)
class Yielding:
    """A running job that may yield to a given preemptor, and why."""

    running: RunningJob
    level: int
    service: float


def may_yield(
    running: RunningJob, job: JobRequest, pool: PoolSpec, now: float, ts: TimeSharing
) -> Yielding | None:
    """Whether `running` may be evicted for `job` under the Service rule (module docstring)."""
    other = running.job
    if not (other.time_sharing and other.preemptible) or running.terminating or other.key == job.key:
        return None
    if other.priority != job.priority or now - running.started < ts.min_slice_s:
        return None
    if pool.quotas and other.tenant != job.tenant:
        return None
    service = attained_now(running, pool, now)
    level = level_of(service, ts)
    return Yielding(running, level, service) if level > job.level else None


def service_victims(
    running: Iterable[RunningJob], job: JobRequest, pool: PoolSpec, now: float, ts: TimeSharing
) -> list[Yielding]:
    """Running jobs of the pool that may yield to `job`, most served first."""
    found = [y for r in running if (y := may_yield(r, job, pool, now, ts)) is not None]
    return sorted(found, key=lambda y: (-y.level, -y.service, y.running.job.key))


def service_message(job: JobRequest, victim: Yielding, pool: str, now: float) -> str:
    ran = (now - victim.running.started) / HOUR
    return (
        f"{job.key} (queue {job.level}, {job.attained / HOUR:.2f} h attained) takes its turn in pool "
        f"{pool} from this job (queue {victim.level}, {victim.service / HOUR:.2f} h attained; ran "
        f"{ran:.2f} h since its last start); it resumes from its last checkpoint when room frees"
    )


class ServiceRule:
    """The Service rule for one preemptor, in the shape preemption.py takes (`ExtraRule`)."""

    def __init__(self, ws: Workspace, job: JobRequest, now: float, ts: TimeSharing) -> None:
        self.running: Mapping[str, RunningJob] = ws.running
        self.pools = {name: state.spec for name, state in ws.pools.items()}
        self.job, self.now, self.ts = job, now, ts

    def extra(self, pool: str) -> list[tuple[RunningJob, str]]:
        spec = self.pools[pool]
        mine = (r for r in self.running.values() if r.assignment.pool == pool)
        return [(y.running, SERVICE) for y in service_victims(mine, self.job, spec, self.now, self.ts)]

    def rank(self, running: RunningJob) -> tuple[object, ...]:
        """Least valuable first: lower priority, then the most served opted-in jobs, then the most
        recently started (preemption.py's order, so jobs that did not opt in are ranked among
        themselves exactly as without time-sharing), then key."""
        if not running.job.time_sharing:
            return (running.job.priority, 0, 0.0, -running.started, running.job.key)
        service = attained_now(running, self.pools[running.assignment.pool], self.now)
        level = level_of(service, self.ts)
        return (running.job.priority, -level, -service, -running.started, running.job.key)

    def message(self, running: RunningJob, pool: str) -> str:
        found = may_yield(running, self.job, self.pools[pool], self.now, self.ts)
        assert found is not None  # it was chosen under this very rule
        return service_message(self.job, found, pool, self.now)


def by_advantage(cands: Sequence[Candidate]) -> list[Candidate]:
    """Where a job should take its turn when room must be made: the pool where its speed is
    highest relative to the pool's typical speed (`PoolSpec.throughput`) first, not simply the
    fastest. Comparative advantage, as in Gavel's heterogeneity-aware policies: a job that gains
    little from a V100 (Recommendation runs faster on a P100) takes its turn on the slower type and
    leaves the V100s to jobs that run 10x faster there, so the full cluster gets more work done."""
    return sorted(cands, key=lambda c: (c.factor * max(c.pool.throughput, 1e-12), c.factor, c.pool.name))


def rule(ts: TimeSharing | None, ws: Workspace, job: JobRequest, now: float) -> ServiceRule | None:
    """The Service rule for `job` when the policy shares time (None: only Reclaim and Priority)."""
    return None if ts is None else ServiceRule(ws, job, now, ts)


def explain(rule: ServiceRule | None, victim: RunningJob, why: str, pool: str) -> str | None:
    """The message of a Service preemption (None for the other rules: preemption.py says)."""
    return rule.message(victim, pool) if rule is not None and why == SERVICE else None
