"""One comparison: the same cluster and job stream replayed under several policies, summarized.

The CLI and the benchmarks both build an ``Experiment`` (Gavel setting, an msr trace, Philly) and
call ``run``; the job stream is re-created for every policy so each one sees identical jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from estuary.sim.cluster import SimCluster, check_types, gavel_cluster
from estuary.sim.engine import Assumptions, SimResult, Simulator
from estuary.sim.metrics import (
    Measured,
    Summary,
    everything,
    lower_bound,
    measured_records,
    summarize,
    window,
)
from estuary.sim.policies import NamedPolicy
from estuary.sim.progress import StderrProgress
from estuary.sim.throughputs import ThroughputTable
from estuary.sim.traces import LoadStats, TraceJob, gavel_generated, job_key, load_msr, load_philly, msr_paths
from estuary.sim.workload import SimJob, to_sim_job


@dataclass
class Experiment:
    name: str
    cluster: SimCluster
    table: ThroughputTable
    stream: Callable[[], Iterable[TraceJob]]  # a fresh, identical stream per call
    measured: Measured = everything
    measured_desc: str = "all jobs"
    until_done: frozenset[str] | None = None  # stop when these finished (endless streams)
    expected_jobs: int = 0  # for the progress line: all jobs, or those of until_done
    reference: str = "v100"
    notes: list[str] = field(default_factory=list)

    def sim_jobs(self) -> Iterator[SimJob]:
        for job in self.stream():
            sim = to_sim_job(job, self.cluster, self.table)
            if sim is not None:
                yield sim


@dataclass
class Outcome:
    experiment: Experiment
    results: list[SimResult]
    summaries: list[Summary]
    lower: Summary
    lower_jcts: list[float]


def run(
    exp: Experiment,
    policies: Sequence[NamedPolicy],
    assumptions: Assumptions | None = None,
    progress: bool = True,
) -> Outcome:
    check_types(exp.cluster, exp.table)
    results: list[SimResult] = []
    for p in (named.with_costs(assumptions or Assumptions()) for named in policies):
        bar = StderrProgress(f"{exp.name} {p.name}", exp.expected_jobs) if progress else None
        sim = Simulator(
            exp.cluster,
            exp.table,
            p.schedule(),
            policy_name=p.name,
            assumptions=assumptions,
            wake_after=p.wake_after,
            slice_s=p.slice_s,
            reference=exp.reference,
            progress=bar,
        )
        results.append(sim.run(exp.sim_jobs(), until_done=exp.until_done))
    summaries = [summarize(r, exp.measured) for r in results]
    rows = measured_records(results[0], exp.measured) if results else []
    lower = lower_bound(rows, exp.cluster.accelerators)
    return Outcome(exp, results, summaries, lower, [r.fastest_runtime for r in rows])


# ---------------------------------------------------------------------------------------------
# The three settings of `estuary sim`.


def gavel(
    table: ThroughputTable,
    jobs_per_hour: float,
    jobs: int = 5000,
    measure: tuple[int, int] | None = None,
    seed: int = 0,
    per_node: int = 4,
    continue_arrivals: bool = True,
) -> Experiment:
    """Gavel's setting: 36 K80 + 36 P100 + 36 V100 (nodes of ``per_node``), single-accelerator jobs
    generated as Gavel generates them. Like Gavel, arrivals continue past ``jobs`` until every
    measured job finished, so the measured jobs see a steady load (``continue_arrivals=False``:
    exactly ``jobs`` arrive)."""
    lo, hi = measure if measure is not None else (int(jobs * 0.8), jobs)
    if not 0 <= lo < hi <= jobs:
        raise ValueError(f"measure window {lo}:{hi} must lie within 0:{jobs}")

    def stream() -> Iterator[TraceJob]:
        for job in gavel_generated(table, jobs_per_hour, seed):
            if not continue_arrivals and job.index >= jobs:
                return
            yield job

    return Experiment(
        name=f"gavel@{jobs_per_hour:g}/h",
        cluster=gavel_cluster(per_node=per_node),
        table=table,
        stream=stream,
        measured=window(lo, hi),
        measured_desc=f"jobs {lo}-{hi - 1}",
        until_done=frozenset(job_key("default", i) for i in range(lo, hi)),
        expected_jobs=hi - lo,
        reference="v100",
        notes=[
            f"Gavel generated jobs: {jobs_per_hour:g} jobs/h Poisson, seed {seed}, single-accelerator, "
            f"measured jobs {lo}-{hi - 1}"
            + (", arrivals continue until they finish" if continue_arrivals else f", {jobs} jobs in all")
        ],
    )


def trace(
    table: ThroughputTable,
    path: Path,
    cluster: SimCluster | None = None,
    oversize: str = "drop",
    limit: int | None = None,
    measure: tuple[int, int] | None = None,
) -> Experiment:
    jobs, stats = load_msr(msr_paths(path), table, oversize)
    if limit is not None:
        jobs = jobs[:limit]
    return _finite(f"trace:{path.name}", cluster or gavel_cluster(), table, jobs, stats, measure, "v100")


def philly(
    table: ThroughputTable,
    path: Path,
    cluster: SimCluster,
    limit: int | None = 10_000,
    seed: int = 0,
    reference: str = "p100",
    max_accelerators: int | None = None,
    measure: tuple[int, int] | None = None,
    compress: float = 1.0,
) -> Experiment:
    jobs, stats = load_philly(path, table, limit, seed, reference, max_accelerators, compress)
    exp = _finite("philly", cluster, table, jobs, stats, measure, reference)
    exp.notes.append(
        f"Philly jobs get a Gavel job type drawn with seed {seed}; their duration is taken as "
        f"the runtime on {reference}"
        + (f"; submission gaps compressed {compress:g}x" if compress != 1 else "")
    )
    return exp


def _finite(
    name: str,
    cluster: SimCluster,
    table: ThroughputTable,
    jobs: list[TraceJob],
    stats: LoadStats,
    measure: tuple[int, int] | None,
    reference: str,
) -> Experiment:
    lo, hi = measure if measure is not None else (0, len(jobs))
    runnable = sum(1 for j in jobs if to_sim_job(j, cluster, table) is not None)
    notes = [stats.describe()]
    if runnable < len(jobs):
        notes.append(f"{len(jobs) - runnable} jobs have no rate on any pool of {cluster.name}; left out")
    return Experiment(
        name=name,
        cluster=cluster,
        table=table,
        stream=lambda: iter(jobs),
        measured=window(lo, hi),
        measured_desc=f"jobs {lo}-{hi - 1}" if measure else "all jobs",
        expected_jobs=runnable,
        reference=reference,
        notes=notes,
    )
