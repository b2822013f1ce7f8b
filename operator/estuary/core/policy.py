"""The knobs one scheduling cycle runs under.

Why it exists: the operator and the simulator run the very same core; the simulator compares
Estuary's rules with simpler baselines (strict FIFO, heterogeneity-agnostic placement, no
preemption) by changing a `Policy`, never by forking the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TypeChoice = Literal["fastest", "preference", "any_free", "wait_fastest"]
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class TimeSharing:
    """The knobs of time-sharing and migration (docs/scheduling.md §12).

    thresholds: attained service (accelerator-seconds at speed 1.0) where the levels start.
    promote_after: a pending job waiting this many times its own run time goes to level 0.
    min_slice_s: a job runs at least this long after each start before it may yield or move.
    grace_s, checkpoint_interval_s, restart_s: what stopping a job costs (the simulator's
    assumptions): its pods' grace period, the work lost since its last checkpoint (up to one
    interval), and the time to start again and load the checkpoint.
    migrate: move running jobs to a faster type when it frees and the move pays for itself.
    known_work: estimate a job's remaining work from its declared `work` (an oracle the
    simulator has; users rarely do) rather than from its attained service alone.
    slow_start: a job that cannot move (not opted in, or not preemptible) may wait for its fastest
    type rather than start on a slower one (slowstart.py). The operator leaves it off unless
    asked (ESTUARY_TIME_SHARING_SLOW_START), so jobs that did not opt in run as they always did.
    """

    thresholds: tuple[float, ...] = (1 * HOUR, 10 * HOUR)
    promote_after: float = 4.0
    min_slice_s: float = 1200.0
    grace_s: float = 30.0
    checkpoint_interval_s: float = 600.0
    restart_s: float = 60.0
    migrate: bool = True
    known_work: bool = False
    slow_start: bool = True


@dataclass(frozen=True, slots=True)
class Policy:
    """How a cycle chooses among accelerator types, orders the queue and protects waiting jobs.

    type_choice:
      "fastest"      among accepted types/pools where the gang fits now, the lowest estimated runtime
                     (ties: the user's preference order, then cost, then pool name);
      "preference"   the first accepted type, in the user's order, that fits now;
      "any_free"     heterogeneity-agnostic: any pool that fits, the one with most free accelerators;
      "wait_fastest" only the fastest accepted type; wait for it.
    backfill: False is strict FIFO: a job blocked for capacity or quota blocks everything behind it.
    reserve_after_s: starvation guard; a blocked job waiting this long reserves nodes (docs/scheduling.md).
    preemption: reclaim lent quota and let higher priority evict lower priority within a tenant.
    fair_sharing: order borrowers of equal priority by their tenant's weighted borrowed share.
    time_sharing: rank opted-in jobs by attained service, let them take turns and move them to
    faster types (core/attained.py, core/migrate.py); None: run every job to completion.
    """

    type_choice: TypeChoice = "fastest"
    backfill: bool = True
    reserve_after_s: float = 300.0
    preemption: bool = True
    fair_sharing: bool = True
    time_sharing: TimeSharing | None = None
