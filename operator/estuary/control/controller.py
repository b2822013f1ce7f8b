"""The job controller: one step moves every job's lifecycle on, runs the scheduling cycle and
writes its decisions.

One loop over one snapshot (not per-object handlers deciding alone), so no two decisions race for
the same accelerators. A step reads the `ClusterView` the loop built (state/snapshot.py) and:
  1. marks AIJobs Estuary cannot run as Failed (once); checks new jobs' first worker with a
     server-side dry run (precheck.py: a job whose check is not answered within a tenth of a
     second waits for a later step); moves each job's lifecycle on from its pods
     (lifecycle.py: start, finish, fail, restart, release, suspend, time-to-live);
  2. runs the core's cycle over the snapshot and the pending queue, carrying the core's
     `CycleState` from step to step (its cost follows what changed);
  3. writes admissions (status first, then pods), preemptions, migrations (the room a migrating
     job moves to is held until its old pods are gone: timeshare.py) and waiting reasons (decisions.py),
     admissions and waiting reasons assumed at once and written in the background (writes.py);
  4. records the spec generation it acted on for jobs it had nothing else to write to;
  5. writes ComputePool status and the gauges (pools.py).
Every object is judged alone: an error acting on one job or pool is logged (without a traceback:
the message names the object and the error), counted, and retried next step, and never stops the
step for the others. Every write goes through the `JobWriter`, which puts what the API server
returned back into the view, so each stage sees the ones before it. Federation is not called from
here: it is its own controller (federation/controller.py) and meets this one in AIJob status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from estuary import metrics
from estuary.api.aijob import AIJobStatus
from estuary.control.decisions import Decisions
from estuary.control.lifecycle import Lifecycle, sick_nodes
from estuary.control.pods import Pods
from estuary.control.pools import PoolStatus, export
from estuary.control.precheck import PATIENCE_S, PreCheck
from estuary.control.seal import Sealer
from estuary.control.timeshare import Moves
from estuary.control.writes import WORKERS, Background
from estuary.core import CycleState, Policy, run_cycle
from estuary.kube.client import KubeApi
from estuary.kube.status import StatusWriter
from estuary.model import CycleResult, Migration, Snapshot, Waiting
from estuary.state import codec
from estuary.state.cache import ClusterCache
from estuary.state.snapshot import ClusterView, ParsedJob

log = logging.getLogger("estuary.controller")
SHARED_STATUS_SPACING_S = 2.0  # the operator's: a pool's or a ledger's status lags 2 s at most
TICK_SPACING_S = 0.05  # the operator's: at most 20 ticks a second


@dataclass(frozen=True)
class Settings:
    jurisdiction: str | None = None
    default_tenant: str = codec.DEFAULT_TENANT
    policy: Policy = field(default_factory=Policy)
    resync_seconds: float = 2.0
    writers: int = WORKERS  # background writes in flight at once (control/writes.py)
    precheck_wait_s: float = PATIENCE_S  # the most a step waits for dry runs (control/precheck.py)
    # the least time between two status writes of one ComputePool or UsageLedger (writes.py
    # `latest`); the operator sets SHARED_STATUS_SPACING_S, tests write each step's at once
    shared_status_spacing_s: float = 0.0
    # the least time from one tick's start to the next (handlers/loop.py): in a flood of events
    # a tick decides on many at once instead of one tick per event (the operator sets
    # TICK_SPACING_S; tests tick when they like)
    tick_spacing_s: float = 0.0


class JobController:
    def __init__(
        self,
        cache: ClusterCache,
        api: KubeApi,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.time,
        sealer: Sealer | None = None,
    ) -> None:
        self.cache, self.api, self.settings, self.clock = cache, api, settings or Settings(), clock
        self.writer = StatusWriter(api, cache, clock)
        self.background = Background(
            api, cache, self.writer, self.settings.writers, self.settings.shared_status_spacing_s
        )
        self.pods = Pods(api, cache)
        self.sealer = sealer or Sealer.ephemeral()
        self.lifecycle = Lifecycle(api, cache, self.writer, self.pods, self.sealer, self.background)
        self.precheck = PreCheck(self.pods, self.writer, cache, self.settings.precheck_wait_s)
        self.decisions = Decisions(
            self.writer, self.background, self.pods.manifests, self.lifecycle.release, self.sealer
        )
        self.pools = PoolStatus(api, self.writer, self.background.latest)
        self.moves = Moves()
        # The core's memory between cycles (free maps, job classes, the sorted queue). Safe to
        # carry although admissions are only assumed: it never holds a decision, and it is brought
        # up to date from each snapshot by value (core/workspace.py `sync`: a running job that
        # appears, goes or changes is applied; pools, nodes or foreign usage that changed rebuild
        # it), so an assumption the cache drops after a failed write frees its accelerators in the
        # next cycle as if the state were fresh. Only this loop's thread touches it.
        self.cycle_state = CycleState()

    def step(self, view: ClusterView, now: float) -> Mapping[str, Waiting]:
        """One step over `view`; returns why each pending job still waits."""
        for invalid in view.invalid.values():
            if not invalid.rejected:
                _guard(invalid.key, self.writer.reject, invalid, now)
        _guard("new jobs", self.precheck.run, view.jobs, view.judged_pools, now)
        sick = sick_nodes(view.nodes, view.jobs.values())
        self.lifecycle.pools = view.pools
        for job in view.jobs.values():
            _guard(job.key, self.lifecycle.advance, job, sick, now)
        snapshot, pending = self.moves.held(view.snapshot(), view.jobs), view.pending(now)
        result = run_cycle(snapshot, pending, now, self.settings.policy, self.cycle_state)
        self._write(view.jobs, snapshot, result, now)
        for job in view.jobs.values():
            if job.phase is not None and job.status.observed_generation != job.generation:
                _guard(job.key, self.background.status, job, AIJobStatus())
        after = view.snapshot()  # the kept working view, brought up to this tick's decisions
        self.pools.write(after, view.judged_pools, now, self.cycle_state.workspace(after))
        export(view.jobs, pending, result.waiting)
        return result.waiting

    def _write(
        self, jobs: Mapping[str, ParsedJob], snapshot: Snapshot, result: CycleResult, now: float
    ) -> None:
        """A failed write skips that one decision (nothing was recorded, so nothing is held); the
        next step decides again from fresh state. Other decisions of the cycle still go out."""
        for admission in result.admissions:
            pool = snapshot.pools[admission.assignment.pool]
            _guard(admission.job_key, self.decisions.admit, jobs[admission.job_key], admission, pool, now)
        for preemption in result.preemptions:
            _guard(preemption.victim_key, self.decisions.preempt, jobs, preemption, now)
        for move in result.migrations:
            _guard(move.job_key, self._migrate, jobs, move, now)
        self.decisions.pace(len(result.waiting))
        for waiting in result.waiting.values():
            _guard(waiting.job_key, self.decisions.wait, jobs[waiting.job_key], waiting, now)

    def _migrate(self, jobs: Mapping[str, ParsedJob], move: Migration, now: float) -> None:
        if self.decisions.migrate(jobs, move, now):
            self.moves.remember(move, now)


def _guard(what: str, action: Callable[..., object], *args: Any) -> None:
    """Act on one object; an error is that object's alone (logged, counted, retried next step)."""
    try:
        action(*args)
    except Exception as err:
        metrics.record_reconcile_error("aijob")
        log.warning(
            "AIJob %s: could not act on it (%s: %s); will retry on the next step",
            what,
            type(err).__name__,
            err,
        )
