"""Job streams for the simulator: Gavel's generated jobs, Gavel's msr traces and the Philly trace.

Every source yields ``TraceJob``s — a Gavel job type, how many accelerators, how many training
steps, when it arrives and for which tenant — so that one conversion (``workload.py``) turns any of
them into the ``JobRequest`` the scheduling core sees. Loaders say what they had to drop or cap.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from estuary.sim.throughputs import ThroughputTable

# Gavel's JobTable (scheduler/job_table.py @ c4fa400), in its order: generating jobs with the same
# seeds and this order reproduces Gavel's own job stream. True = distributed (may use scale > 1).
GAVEL_JOB_TABLE: tuple[tuple[str, bool], ...] = (
    *((f"ResNet-18 (batch size {b})", True) for b in (16, 32, 64, 128, 256)),
    *((f"ResNet-50 (batch size {b})", True) for b in (16, 32, 64, 128)),
    *((f"Transformer (batch size {b})", True) for b in (16, 32, 64, 128, 256)),
    *((f"LM (batch size {b})", True) for b in (5, 10, 20, 40, 80)),
    *((f"Recommendation (batch size {b})", False) for b in (512, 1024, 2048, 4096, 8192)),
    ("A3C", False),
    ("CycleGAN", False),
)

MAX_TABLE_SCALE = 8


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One job of a trace. ``scale`` is the measured scale factor whose rates apply (see
    ``ThroughputTable.table_scale``); ``accelerators`` is what the job asks for."""

    index: int  # position in the stream, for measurement windows
    key: str  # "tenant/job-000042"
    tenant: str
    arrival: float  # seconds
    job_type: str
    accelerators: int
    scale: int
    steps: float


@dataclass
class LoadStats:
    """What a loader read, kept, capped and dropped (printed by the CLI)."""

    source: str
    read: int = 0
    kept: int = 0
    capped_oversize: int = 0  # asked for > 8 accelerators, capped to 8
    dropped_oversize: int = 0  # asked for > 8 accelerators, dropped
    dropped_no_rate: int = 0  # no measured rate for (job type, scale) on any type
    dropped_invalid: int = 0  # zero duration or malformed

    def describe(self) -> str:
        parts = [f"{self.source}: read {self.read}, kept {self.kept}"]
        if self.capped_oversize:
            parts.append(
                f"capped {self.capped_oversize} jobs of >{MAX_TABLE_SCALE} accelerators to {MAX_TABLE_SCALE}"
            )
        if self.dropped_oversize:
            parts.append(f"dropped {self.dropped_oversize} jobs of >{MAX_TABLE_SCALE} accelerators")
        if self.dropped_no_rate:
            parts.append(
                f"dropped {self.dropped_no_rate} jobs whose (job type, scale) has no measured throughput"
            )
        if self.dropped_invalid:
            parts.append(f"dropped {self.dropped_invalid} invalid rows")
        return "; ".join(parts)


def job_key(tenant: str, index: int) -> str:
    return f"{tenant}/job-{index:06d}"


# ---------------------------------------------------------------------------------------------
# Gavel's generated jobs (simulate_scheduler_with_generated_jobs.py).


def gavel_generated(
    table: ThroughputTable,
    jobs_per_hour: float,
    seed: int = 0,
    multi_gpu: bool = False,
    tenant: str = "default",
) -> Iterator[TraceJob]:
    """An endless Poisson stream of jobs drawn exactly as Gavel draws them.

    Gavel's ``Scheduler`` seeds its job generator with ``seed+2`` and its inter-arrival generator
    with ``seed+3``; ``utils.generate_job`` samples a scale factor (kept only with ``multi_gpu``),
    a duration from the Philly distribution (80%: 10^U(1.5,3) minutes, 20%: 10^U(3,4) minutes),
    then a job type uniformly from the JobTable; steps = duration x V100 rate. The first job
    arrives at 0; the next after an exponential gap of mean 3600/jobs_per_hour seconds.
    """
    if jobs_per_hour <= 0:
        raise ValueError("jobs_per_hour must be positive")
    rng = random.Random(seed + 2)
    gaps = random.Random(seed + 3)
    mean_gap = 3600.0 / jobs_per_hour
    t = 0.0
    i = 0
    while True:
        r = rng.uniform(0, 1)
        scale = 1
        if 0.7 <= r <= 0.8:
            scale = 2
        elif 0.8 <= r <= 0.95:
            scale = 4
        elif r >= 0.95:
            scale = 8
        long_job = rng.random() >= 0.8  # drawn before the exponent, as Gavel does
        run_time = 60 * 10 ** (rng.uniform(3, 4) if long_job else rng.uniform(1.5, 3))
        if not multi_gpu:
            scale = 1
        while True:
            job_type, distributed = rng.choice(GAVEL_JOB_TABLE)
            if scale == 1 or distributed:
                break
        steps = run_time * table.rate("v100", job_type, scale)
        yield TraceJob(i, job_key(tenant, i), tenant, t, job_type, scale, scale, steps)
        t += -math.log(1.0 - gaps.random()) * mean_gap
        i += 1


# ---------------------------------------------------------------------------------------------
# Gavel's msr traces: job_type, command, num_steps_arg, needs_data_dir, total_steps, arrival, scale.


def load_msr(
    paths: list[Path],
    table: ThroughputTable,
    oversize: str = "drop",
) -> tuple[list[TraceJob], LoadStats]:
    """Read Gavel msr ``.trace`` files (tenant = file stem, i.e. the Philly virtual cluster).

    oversize: "drop" or "cap" jobs asking for more than 8 accelerators (Gavel has no rates
    there). Jobs whose (job type, scale) has no measured rate (e.g. A3C on 4, or scale 7) are
    always dropped. Arrivals of several files are merged in time order.
    """
    if oversize not in ("drop", "cap"):
        raise ValueError("oversize must be 'drop' or 'cap'")
    stats = LoadStats(source=", ".join(p.name for p in paths) if len(paths) <= 3 else f"{len(paths)} traces")
    rows: list[tuple[float, str, str, int, float]] = []
    for path in paths:
        tenant = path.stem
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                stats.read += 1
                cols = line.rstrip("\n").split("\t")
                if len(cols) != 7:
                    stats.dropped_invalid += 1
                    continue
                job_type, steps, arrival, scale = cols[0], float(cols[4]), float(cols[5]), int(cols[6])
                if scale > MAX_TABLE_SCALE:
                    if oversize == "drop":
                        stats.dropped_oversize += 1
                        continue
                    stats.capped_oversize += 1
                    scale = MAX_TABLE_SCALE
                if steps <= 0:
                    stats.dropped_invalid += 1
                    continue
                if scale not in table.scales(job_type):
                    stats.dropped_no_rate += 1
                    continue
                rows.append((arrival, tenant, job_type, scale, steps))
    rows.sort(key=lambda r: r[0])
    jobs = [
        TraceJob(i, job_key(tenant, i), tenant, arrival, job_type, scale, scale, steps)
        for i, (arrival, tenant, job_type, scale, steps) in enumerate(rows)
    ]
    stats.kept = len(jobs)
    return jobs, stats


def msr_paths(trace: Path) -> list[Path]:
    """A single ``.trace`` file, or every ``*.trace`` in a folder."""
    if trace.is_dir():
        found = sorted(trace.glob("*.trace"))
        if not found:
            raise FileNotFoundError(f"no *.trace files in {trace}")
        return found
    return [trace]


# ---------------------------------------------------------------------------------------------
# The Philly trace: timestamp, duration, num_gpus, gpu_time, cluster.


PhillyRow = tuple[datetime, float, int, str]  # submitted, duration s, GPUs, cluster (the tenant)


def _philly_rows(path: Path, stats: LoadStats, max_accelerators: int | None) -> list[PhillyRow]:
    """The csv's valid rows by submission time; those dropped are counted in `stats`."""
    rows: list[PhillyRow] = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            stats.read += 1
            try:
                ts = datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S")
                duration, gpus = float(row["duration"]), int(row["num_gpus"])
            except (KeyError, ValueError):
                stats.dropped_invalid += 1
                continue
            if duration <= 0 or gpus <= 0:
                stats.dropped_invalid += 1
                continue
            if max_accelerators is not None and gpus > max_accelerators:
                stats.dropped_oversize += 1
                continue
            rows.append((ts, duration, gpus, row["cluster"]))
    rows.sort(key=lambda r: r[0])
    return rows


def load_philly(
    path: Path,
    table: ThroughputTable,
    limit: int | None = None,
    seed: int = 0,
    reference: str = "p100",
    max_accelerators: int | None = None,
    compress: float = 1.0,
) -> tuple[list[TraceJob], LoadStats]:
    """Read the Philly csv, sorted by submission time; arrival 0 = first kept job.

    Philly records no model, so each job gets a Gavel job type drawn uniformly (seeded) among the
    types that run at its scale on ``reference``; its duration is taken as its runtime on
    ``reference`` (Philly ran mostly P100-class GPUs), i.e. steps = duration x reference rate at
    the largest measured scale <= its GPU count. Rates on other types follow from the table.
    max_accelerators: drop jobs asking for more (None: keep all). compress: divide the gaps between
    submissions by this factor (a higher load from the same jobs; durations unchanged).
    """
    if compress <= 0:
        raise ValueError("compress must be positive")
    stats = LoadStats(source=path.name)
    rows = _philly_rows(path, stats, max_accelerators)
    if limit is not None:
        rows = rows[:limit]
    rng = random.Random(seed)
    candidates: dict[int, list[tuple[str, int]]] = {}
    jobs: list[TraceJob] = []
    t0 = rows[0][0] if rows else None
    for ts, duration, gpus, tenant in rows:
        if gpus not in candidates:
            options = []
            for job_type in table.job_types():
                scale = table.table_scale(job_type, gpus)
                if scale is not None and table.rate(reference, job_type, scale) > 0:
                    options.append((job_type, scale))
            candidates[gpus] = options
        options = candidates[gpus]
        if not options:
            stats.dropped_no_rate += 1
            continue
        job_type, scale = rng.choice(options)
        i = len(jobs)
        assert t0 is not None
        arrival = (ts - t0).total_seconds() / compress
        jobs.append(
            TraceJob(
                i,
                job_key(tenant, i),
                tenant,
                arrival,
                job_type,
                gpus,
                scale,
                duration * table.rate(reference, job_type, scale),
            )
        )
    stats.kept = len(jobs)
    return jobs, stats
