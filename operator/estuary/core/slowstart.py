"""Start a job that cannot move on a slow type now, or wait for a faster one?

Why it exists: under time-sharing a job that opted in can start on whatever is free and move to
a faster type later (migrate.py). A job that cannot move (not preemptible, or not opted in) stays
where it starts for its whole life: started on a K80 because the V100s were busy for ten more
minutes, it may run 35 h where 4 h would have done. So, before such a job starts on a type slower
than its fastest, the core compares the two finishing times:

    start now:  work / (size x speed here)
    wait:       expected wait + work / (size x speed there)

and waits only when waiting finishes sooner. The expected wait is when enough accelerators of the
fastest pool are expected to be free: its free ones now plus those of its running jobs in order of
their expected ends (remaining work declared when the policy may use it, else as much again as
each has served, at least the first queue's threshold: Tiresias's premise for heavy-tailed
durations, as in migrate.py; a terminating one within its grace period). The job's own work
is its declared work under `known_work`, else the first queue's threshold (the least a job that
runs at all is expected to need), said so in the reason. It counts accelerators, not node-level
fit, and not the jobs queued ahead for that pool: an estimate, so the reason shows its numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from estuary.core.attained import accelerators, attained_now, speed
from estuary.core.candidates import Candidate
from estuary.core.policy import HOUR, TimeSharing
from estuary.core.waiting import Entry
from estuary.core.workspace import Workspace
from estuary.model import JobRequest, PoolSpec, Reason, RunningJob


def can_move(job: JobRequest) -> bool:
    return job.time_sharing and job.preemptible


def expected_end(running: RunningJob, pool: PoolSpec, now: float, ts: TimeSharing) -> float:
    """When a running job is expected to finish (seconds on the caller's clock): a terminating
    one within its grace period; else its declared remaining work (under `known_work`), or as
    much again as its service so far but at least the first queue's threshold."""
    if running.terminating:
        return now + ts.grace_s
    job = running.job
    size = accelerators(job, running.assignment.workers)
    rate = size * speed(job, pool)
    if rate <= 0:
        return float("inf")
    service = attained_now(running, pool, now)
    if ts.known_work and job.work is not None:
        return now + max(0.0, job.work - service) / rate
    return now + max(service, ts.thresholds[0] * size) / rate


def expected_wait(
    need: int, free: int, running: Iterable[RunningJob], pool: PoolSpec, now: float, ts: TimeSharing
) -> float:
    """Seconds until `need` accelerators of `pool` are expected free (inf: never, from these)."""
    if free >= need:
        return 0.0
    ends = sorted(
        (expected_end(r, pool, now, ts), accelerators(r.job, r.assignment.workers)) for r in running
    )
    for end, size in ends:
        free += size
        if free >= need:
            return max(0.0, end - now)
    return float("inf")


def decide(
    job: JobRequest,
    slow: Candidate,
    fast: Candidate,
    wait_s: float,
    ts: TimeSharing,
) -> str | None:
    """Why the job waits for `fast` rather than start on `slow` now; None: start now."""
    size = accelerators(job, job.workers)
    if ts.known_work and job.work is not None:
        work, source = job.work, "its declared work"
    else:
        work, source = ts.thresholds[0] * size, "the first queue's threshold (work not known)"
    here, there = 1.0 / slow.factor, 1.0 / fast.factor
    now_done = work / (size * here)
    wait_done = wait_s + work / (size * there)
    if wait_done >= now_done:
        return None
    return (
        f"cannot move once started, so waits for {fast.pool.model} in pool {fast.pool.name} rather "
        f"than start on {slow.pool.model} in pool {slow.pool.name}: expected done in "
        f"{wait_done / HOUR:.2f} h there ({wait_s / HOUR:.2f} h wait, as its running jobs are expected "
        f"to end, + {work / (size * there) / HOUR:.2f} h) vs {now_done / HOUR:.2f} h here; work "
        f"estimated as {source}"
    )


def wait_instead(
    ws: Workspace,
    job: JobRequest,
    chosen: Candidate,
    cands: Sequence[Candidate],
    now: float,
    ts: TimeSharing | None,
) -> Entry | None:
    """The waiting entry when a job that cannot move should wait for its fastest type rather than
    start on `chosen`, a slower one; None when it starts now (or may move later)."""
    if ts is None or not ts.slow_start or can_move(job) or not cands:
        return None
    fast = min(cands, key=lambda c: (c.factor, c.preference, c.pool.name))
    if fast.factor >= chosen.factor * (1 - 1e-9):
        return None  # already its fastest type
    pool = fast.pool.name
    state = ws.pools[pool]
    mine = (r for r in ws.running.values() if r.assignment.pool == pool)
    wait = expected_wait(accelerators(job, job.workers), state.free_accelerators(), mine, fast.pool, now, ts)
    why = decide(job, chosen, fast, wait, ts)
    return None if why is None else (Reason.CAPACITY, why, ())
