"""The operator's loop: one thread that reads the cluster once per tick and runs both controllers.

Each tick: read the cache into one `ClusterView` (state/snapshot.py, pure), then
  1. federation, partner side: stop copies whose lease lapsed (before anything acts on them);
  2. the job controller: lifecycles, the scheduling cycle, its decisions, pool status;
  3. federation, origin side: follow burst jobs, burst waiting ones, link status;
  4. the usage ledger: copy the jobs' run records, as the step left them, into UsageLedgers.
The controllers share the view, whose jobs every status write updates, and meet nowhere else.
This module is the one place that knows them all; it wires them for `handlers/operator.py`.

Each time round, leader or not, the loop tells `health` it is alive, and asks the API server for
its version when nothing else reached it lately (so a hung connection shows in /healthz). It acts
only once the cache is synced (handlers/resync.py). When this replica stops leading, it clears
the gauges only the leader keeps true.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from estuary import memory, metrics
from estuary.control.controller import JobController, Settings
from estuary.federation import FederationController
from estuary.health import HEALTH, Health
from estuary.ledger import Ledger
from estuary.state import snapshot
from estuary.state.cache import ClusterCache

log = logging.getLogger("estuary.controller")
TRIM_EVERY_S = 30.0  # how often the loop returns freed memory to the system (memory.py)


class Loop:
    def __init__(
        self,
        cache: ClusterCache,
        jobs: JobController,
        federation: FederationController | None = None,
        clock: Callable[[], float] = time.time,
        ledger: Ledger | None = None,
    ) -> None:
        self.cache, self.jobs, self.federation, self.clock = cache, jobs, federation, clock
        self.ledger = ledger

    @property
    def settings(self) -> Settings:
        return self.jobs.settings

    def tick(self) -> None:
        now = self.clock()
        started = time.perf_counter()
        view = snapshot.read(self.cache, now, self.settings.jurisdiction, self.settings.default_tenant)
        if self.federation is not None:
            self.federation.check_leases(view, now)
        self.jobs.step(view, now)
        if self.federation is not None:
            self.federation.step(view, now)
        if self.ledger is not None:
            self.ledger.sync(self._jobs_as_written(view), self._tenant_of, now)
        metrics.record_cycle(time.perf_counter() - started)

    def _jobs_as_written(self, view: snapshot.ClusterView) -> dict[str, dict[str, Any]]:
        """The jobs as the API server last confirmed them, not as assumed while their writes are
        in flight (an admission whose write then fails leaves no run in a ledger)."""
        jobs = jobs_as_left(view)
        for key in jobs:
            jobs[key] = self.cache.confirmed("aijobs", key) or jobs[key]
        return jobs

    def _tenant_of(self, namespace: str) -> str:
        return self.cache.tenant_of(namespace, self.settings.default_tenant)

    def run(
        self,
        stop: threading.Event,
        active: Callable[[], bool] = lambda: True,
        health: Health = HEALTH,
        synced: Callable[[], bool] = lambda: True,
    ) -> None:
        """Tick whenever the cache changes (or every resync period) until `stop` is set; only
        while `active` (this replica holds the leader Lease) and once the cache is `synced` (a
        listing taken after every watch listed: handlers/resync.py), so nothing is decided from
        pods a missed watch event left behind."""
        leading, trim_at = False, time.monotonic() + TRIM_EVERY_S
        while not stop.is_set():
            self.cache.changed.wait(self.settings.resync_seconds)
            self.cache.changed.clear()
            health.beat()
            if stop.is_set():
                break
            self._ping(health)
            leading = self._lead(leading, active(), health)
            if not leading or not synced():
                continue
            began = time.monotonic()
            try:
                self.tick()
            except Exception:  # keep the loop alive; the next tick retries from fresh state
                metrics.record_reconcile_error("controller")
                log.exception("controller step failed; retrying on the next change")
            stop.wait(self.settings.tick_spacing_s - (time.monotonic() - began))
            if time.monotonic() >= trim_at:  # what a busy spell freed goes back to the system
                memory.trim()
                trim_at = time.monotonic() + TRIM_EVERY_S

    def _ping(self, health: Health) -> None:
        if not health.ping_due():
            return
        try:
            self.jobs.api.ping()
        except Exception as err:  # /healthz reports it once it lasts
            log.warning("the API server did not answer a version request (%s)", type(err).__name__)

    @staticmethod
    def _lead(was: bool, now: bool, health: Health) -> bool:
        """Note a change of leadership: the leader gauge, /readyz's word, and on losing it the
        gauges only the leader keeps true."""
        if was != now:
            metrics.set_leader(now)
            if health.leader is not None:  # leader election is on
                health.leader = now
            if not now:
                metrics.clear_state()
        return now


def jobs_as_left(view: snapshot.ClusterView) -> dict[str, dict[str, Any]]:
    """Every job as the step left it, by key (the invalid ones too: their runs still count)."""
    jobs = {key: job.raw for key, job in view.invalid.items()}
    jobs.update((key, job.raw) for key, job in view.jobs.items())
    return jobs
