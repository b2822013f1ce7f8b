"""Moving a running job to a faster accelerator type when one frees, if the move pays for itself.

Why it exists: a job started on a slow type because the fast one was busy would stay there for
its whole life under run-to-completion; Gavel moves it back the next round, for free. Moving a
real distributed job is not free: its pods get their grace period, it loses the work since its
last checkpoint, and it pays a restart (scheduling, image start, loading the checkpoint). So a
job moves only when the time it is expected to save exceeds all of that.

Rules (after the cycle's admissions and holds, on what is still free; docs/scheduling.md §12):
- candidates: running jobs that opted in to time-sharing, are preemptible, not terminating, not
  chosen as a victim this cycle, and ran at least the minimum slice since they last started;
- remaining work: the declared work minus the attained service when the policy may use declared
  work (`known_work`), else as much again as the job's attained service (durations of training
  jobs are heavy-tailed: a job that ran longer is expected to run longer; Tiresias's premise);
- a move from speed s to a faster s' pays when  left/s > grace + restart + lost/s' + left/s',
  where lost is the work since the last checkpoint; the job goes to the fastest pool where its
  gang fits now (quota, reservations and node-level placement as for any admission);
- the largest saving moves first; each move holds its new room for the rest of the cycle.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from estuary.core.attained import accelerators, attained_now, speed
from estuary.core.candidates import Candidate, candidates
from estuary.core.evaluate import evaluate
from estuary.core.policy import HOUR, TimeSharing
from estuary.core.workspace import Workspace
from estuary.model import Assignment, JobRequest, Migration, PoolSpec, RunningJob


@dataclass(frozen=True, slots=True)
class _Move:
    running: RunningJob
    job: JobRequest  # the running gang's shape (an elastic job keeps its admitted size)
    target: Candidate
    left_here: float  # seconds left where it runs
    left_there: float  # seconds left on the target, after the move
    cost: float  # grace + restart + redoing the work since the last checkpoint there
    estimate: str

    @property
    def saving(self) -> float:
        return self.left_here - self.left_there - self.cost


def _remaining(running: RunningJob, service: float, ts: TimeSharing) -> tuple[float, str]:
    job = running.job
    if ts.known_work and job.work is not None:
        return max(0.0, job.work - service), "declared work"
    return service, "as much again as its attained service"


def _consider(
    running: RunningJob,
    pools: Mapping[str, PoolSpec],
    roomy: Mapping[str, PoolSpec],
    ws: Workspace,
    now: float,
    ts: TimeSharing,
) -> _Move | None:
    """The move that pays for `running`, to the fastest pool with room now (`roomy`: the pools
    with a free accelerator), if any. A move pays more the faster the target, so leaving out the
    pools without room changes nothing: the first faster pool with room that does not pay ends
    the search, as every slower one pays less."""
    job = running.job
    size = accelerators(job, running.assignment.workers)
    with_room = {name: pool for name, pool in roomy.items() if ws.pools[name].free_accelerators() >= size}
    if not with_room:
        return None
    source = pools[running.assignment.pool]
    here = speed(job, source)
    if here <= 0:
        return None
    faster = sorted(
        (c for c in candidates(job, with_room) if 1.0 / c.factor > here * (1 + 1e-9)), key=lambda c: c.factor
    )
    if not faster:
        return None
    service = attained_now(running, source, now)
    left, estimate = _remaining(running, service, ts)
    ran = now - running.started
    lost = ran % ts.checkpoint_interval_s if ts.checkpoint_interval_s > 0 else 0.0
    shape = replace(job, workers=running.assignment.workers, min_workers=None)
    for cand in faster:
        there = 1.0 / cand.factor
        left_here = left / (size * here)
        left_there = left / (size * there)
        cost = ts.grace_s + ts.restart_s + lost * here / there
        if left_here - left_there <= cost:
            return None  # the fastest pays the most: slower targets pay less
        if evaluate(ws, shape, cand, cache=None).placement is not None:
            return _Move(running, shape, cand, left_here, left_there, cost, estimate)
    return None


def _message(move: _Move, source: str) -> str:
    target = move.target.pool.name
    return (
        f"moves from {source} to {target}: {move.left_here / HOUR:.2f} h left on {source} vs "
        f"{move.left_there / HOUR:.2f} h on {target}, the move costs {move.cost / HOUR:.2f} h "
        f"(grace, restart, work since its last checkpoint); remaining work estimated as {move.estimate}"
    )


def plan(
    ws: Workspace,
    pools: Mapping[str, PoolSpec],
    now: float,
    ts: TimeSharing | None,
    claimed: Collection[str],
) -> list[Migration]:
    """The moves that pay, largest saving first, each holding its new room in `ws` (rolled back
    with the cycle's other assumptions); none when the policy does not share time or move jobs."""
    if ts is None or not ts.migrate:
        return []
    roomy = {name: pools[name] for name, state in ws.pools.items() if state.free_accelerators() > 0}
    if not roomy:
        return []  # nowhere to move to: the common case when the cluster is oversubscribed
    movable = [
        r
        for key, r in sorted(ws.running.items())
        if r.job.time_sharing
        and r.job.preemptible
        and not r.terminating
        and key not in claimed
        and now - r.started >= ts.min_slice_s
    ]
    moves = [m for r in movable if (m := _consider(r, pools, roomy, ws, now, ts)) is not None]
    moves.sort(key=lambda m: (-m.saving, m.running.job.key))
    out: list[Migration] = []
    for move in moves:
        placement = evaluate(ws, move.job, move.target, cache=None).placement
        if placement is None:
            continue  # an earlier move took the room
        pool = move.target.pool.name
        ws.assume(replace(move.job, key=f"{move.job.key}@{pool}"), pool, placement.nodes)
        source = move.running.assignment.pool
        out.append(Migration(move.job.key, source, Assignment(pool, placement.nodes), _message(move, source)))
    return out
