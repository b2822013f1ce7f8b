"""What a replay records: one row per job and the run's totals, read by metrics and reports.

Why it exists: the engine (engine.py) writes these while it replays; metrics.py, report.py and the
benchmarks only read them. Keeping the records apart keeps the engine about time and decisions.
"""

from __future__ import annotations

from dataclasses import dataclass

from estuary.sim.cluster import SimCluster


@dataclass
class JobRecord:
    """What happened to one job. Times in seconds on the simulated clock."""

    key: str
    index: int
    tenant: str
    job_type: str
    accelerators: int
    arrival: float
    fastest_runtime: float
    first_start: float | None = None
    end: float | None = None
    pool: str | None = None  # where it ran (last start)
    run_seconds: float = 0.0  # wall time holding accelerators, all starts together
    preemptions: int = 0
    migrations: int = 0
    unschedulable: str | None = None  # reason message when the core said it can never run

    @property
    def jct(self) -> float | None:
        return None if self.end is None else self.end - self.arrival

    @property
    def queueing(self) -> float | None:
        return None if self.first_start is None else self.first_start - self.arrival


@dataclass
class SimResult:
    policy: str
    cluster: SimCluster
    records: dict[str, JobRecord]
    timeline: list[tuple[float, int]]  # (time, busy accelerators) after each change
    tenant_accel_seconds: dict[str, float]
    pool_accel_seconds: dict[str, float]
    end_time: float
    cycles: int = 0
    core_seconds: float = 0.0
    wall_seconds: float = 0.0
    max_pending: int = 0
    preemptions: int = 0
    migrations: int = 0

    def busy(self, t: float, delta: int) -> None:
        """Accelerators in use change by `delta` at time `t` (one timeline point per instant)."""
        busy = self.timeline[-1][1] + delta
        if self.timeline[-1][0] == t:
            self.timeline[-1] = (t, busy)
        else:
            self.timeline.append((t, busy))
