"""Time-sharing in the operator: the policy's knobs, attained service, and migrations held.

Why it exists: the core ranks opted-in jobs by attained service, lets them take turns and moves
them to faster types (core/attained.py, core/migrate.py); this is what the job controller needs
around that to carry it out on a real cluster:
- the knobs, from the operator's environment (the Helm chart's `timeSharing` values), so a test
  cluster can run in seconds what production runs in hours;
- attained service, from the job's own run records: each local attempt's accelerators x the
  seconds it held them x the job's speed on that pool (the very `speed` the core ranks by: the
  job's throughput hint for the type, else the pool's `relativeThroughput`). It is written to
  `status.attainedService` (hours) only in the write that ends an attempt (a release or the
  finish), so it costs no write of its own; the core adds the running attempt itself;
- the room a migrating job moves to: the core holds it only for the cycle that chose the move,
  but the job's old pods take their grace period to go. Until they are gone (its placement is
  given up), the target nodes are held for it here, in memory, as a terminating holder; then the
  job is pending again, nominated (decided first: state/snapshot.py) and admitted where it fits
  fastest. After an operator restart the hold is gone: the job is simply admitted where it fits.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace

from estuary.api.aijob import Phase
from estuary.core.attained import speed
from estuary.core.policy import TimeSharing
from estuary.model import Assignment, Migration, PoolSpec, RunningJob, Snapshot
from estuary.state import codec
from estuary.state.snapshot import MIGRATING, ParsedJob

YIELDED = "Yielded"  # status and event reason of a job that yielded its turn (the Service rule)
_DEFAULTS = TimeSharing()


def _enabled(env: Mapping[str, str], name: str, default: str = "true") -> bool:
    """On unless set to false (or 0, no, off)."""
    return env.get(name, default).strip().lower() not in ("false", "0", "no", "off")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} must not be negative")
    return value


def from_env(env: Mapping[str, str] | None = None) -> TimeSharing | None:
    """The time-sharing knobs from ESTUARY_TIME_SHARING* (docs/operations.md, "Time-sharing");
    None when ESTUARY_TIME_SHARING is "false". Unset knobs keep the production defaults."""
    env = os.environ if env is None else env
    if not _enabled(env, "ESTUARY_TIME_SHARING"):
        return None
    raw = env.get("ESTUARY_TIME_SHARING_THRESHOLDS", "").strip()
    try:
        thresholds = tuple(float(t) for t in raw.split(",")) if raw else _DEFAULTS.thresholds
    except ValueError:
        raise ValueError(
            f"ESTUARY_TIME_SHARING_THRESHOLDS={raw!r}: give accelerator-seconds separated by commas"
        ) from None
    if list(thresholds) != sorted(thresholds) or any(t <= 0 for t in thresholds):
        raise ValueError(f"ESTUARY_TIME_SHARING_THRESHOLDS={raw!r}: positive and increasing, please")
    migrate = _enabled(env, "ESTUARY_TIME_SHARING_MIGRATE")
    return TimeSharing(
        thresholds=thresholds,
        promote_after=_number(env, "ESTUARY_TIME_SHARING_PROMOTE_AFTER", _DEFAULTS.promote_after),
        min_slice_s=_number(env, "ESTUARY_TIME_SHARING_MIN_SLICE_SECONDS", _DEFAULTS.min_slice_s),
        grace_s=_number(env, "ESTUARY_TIME_SHARING_GRACE_SECONDS", _DEFAULTS.grace_s),
        checkpoint_interval_s=_number(
            env, "ESTUARY_TIME_SHARING_CHECKPOINT_SECONDS", _DEFAULTS.checkpoint_interval_s
        ),
        restart_s=_number(env, "ESTUARY_TIME_SHARING_RESTART_SECONDS", _DEFAULTS.restart_s),
        migrate=migrate,
        # Off unless asked: jobs that did not opt in start where they fit, as they always did.
        slow_start=_enabled(env, "ESTUARY_TIME_SHARING_SLOW_START", default="false"),
    )


def attained_hours(job: ParsedJob, pools: Mapping[str, PoolSpec], now: float) -> float | None:
    """`status.attainedService` once the open local attempt ends now: what earlier attempts
    attained plus this one's accelerators x seconds x speed; None when there is nothing to add
    (the job did not opt in, or no local attempt is open)."""
    if not job.obj.spec.preemption.time_sharing:
        return None
    status = job.status
    run = next((r for r in reversed(status.runs) if not r.end_time), None)
    start = codec.timestamp(run.start_time) if run is not None else None
    if run is None or start is None or run.cluster != "local":
        return None
    pool = pools.get(run.pool)
    if pool is None:  # the pool is gone: the job's hint for the type, else the reference speed
        pool = PoolSpec(run.pool, run.vendor, run.model, "", {}, throughput=1.0)
    seconds = max(0.0, now - start) * run.accelerators * speed(job.request, pool)
    return round((status.attained_service or 0.0) + seconds / 3600.0, 6)


class Moves:
    """Migrating jobs' target rooms, held from the cycle that chose the move until the job's old
    pods are gone (module docstring)."""

    def __init__(self) -> None:
        self._targets: dict[str, tuple[Assignment, float]] = {}

    def remember(self, move: Migration, now: float) -> None:
        self._targets[move.job_key] = (move.assignment, now)

    def held(self, snapshot: Snapshot, jobs: Mapping[str, ParsedJob]) -> Snapshot:
        """`snapshot` plus one terminating holder per migrating job still leaving its old pool;
        forgets the others (moved, deleted, or no longer migrating)."""
        holders: dict[str, RunningJob] = {}
        for key, (target, since) in list(self._targets.items()):
            job = jobs.get(key)
            leaving = (
                job is not None
                and job.phase == Phase.QUEUED
                and job.status.reason == MIGRATING
                and job.status.placement is not None
            )
            if not leaving:
                del self._targets[key]
                continue
            assert job is not None
            holder = f"{key}@{target.pool}~moving"
            holders[holder] = RunningJob(replace(job.request, key=holder), target, since, terminating=True)
        if not holders:
            return snapshot
        return replace(snapshot, running={**snapshot.running, **holders})
