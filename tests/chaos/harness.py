"""The chaos run: submit the workload, inject the faults on schedule, sample every second.

Three threads beside the test's own: the submitter creates each AIJob at its seeded moment; the
fault thread SIGKILLs and restarts the operator, takes the API server away from the operator and
gives it back, and cuts and heals the federation link; the sampler lists both clusters every
second, directly, and applies tests/chaos/measures.py.

The outage is the operator's: it reaches the home kube-apiserver through two proxies in a row
(`ApiOutage`), one that stalls (every connection stays open, no byte passes: a hung API server
or half-open path) and one that cuts (connections dropped, new ones closed at once: a crashed
API server). The cluster itself goes on: kube-scheduler binds, kwok runs and finishes pods, and
the submitter creates jobs, so the operator comes back to a world that moved without it.
(Killing the real kube-apiserver was tried first: on a machine shared with other test sessions,
`kwokctl start` found its port taken by another cluster's restarted component and never came
back; the e2e tests kill a partner's API server for a few seconds, where that risk is small.)
"""

from __future__ import annotations

import contextlib
import itertools
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tests.chaos import measures
from tests.chaos.workload import GROUP, VERSION, Fault, JobPlan
from tests.e2e.kube_helpers import Kube
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.provider_tools import TcpProxy
from tests.e2e.test_health import StallingProxy

REMOTE_NS = "estuary-burst"


@dataclass
class Figures:
    """What the run found; `report()` prints it."""

    jobs: int = 0
    kills: int = 0
    operator_exits: int = 0  # the operator died without being killed (restarted too)
    outage_s: float = 0.0
    partition_s: float = 0.0
    samples: int = 0
    sample_times: list[float] = field(default_factory=list)
    missed: int = 0  # a list call failed (a busy API server)
    max_over_bound: int = 0
    max_over_booked: int = 0
    duplicates: set[str] = field(default_factory=set)
    double_runs: set[str] = field(default_factory=set)
    stuck_during: dict[str, str] = field(default_factory=dict)
    stuck_at_end: dict[str, str] = field(default_factory=dict)
    phases: Counter[str] = field(default_factory=Counter)
    burst_runs: int = 0
    max_attempt: int = 0
    max_attempt_job: str = ""
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)

    def median_gap(self) -> float:
        gaps = [b - a for a, b in itertools.pairwise(self.sample_times)]
        return statistics.median(gaps) if gaps else 0.0

    def report(self) -> str:
        lines = [
            f"jobs {self.jobs}  phases {dict(sorted(self.phases.items()))}  "
            f"runs at the partner {self.burst_runs}",
            f"faults: {self.kills} SIGKILLs, {self.operator_exits} exits on its own, API server down "
            f"{self.outage_s:.0f}s, partition {self.partition_s:.0f}s",
            f"samples {self.samples} ({self.missed} failed to list), median gap {self.median_gap():.1f}s",
            f"max over-allocation: bound pods {self.max_over_bound}, "
            f"Estuary's bookings {self.max_over_booked}",
            f"duplicate workers {len(self.duplicates)} {sorted(self.duplicates)[:5]}",
            f"double runs {len(self.double_runs)} {sorted(self.double_runs)[:5]}",
            f"stuck during the run {len(self.stuck_during)} {dict(list(self.stuck_during.items())[:5])}",
            f"not finished at the end {len(self.stuck_at_end)}:",
            *(f"    {job}: {why}" for job, why in sorted(self.stuck_at_end.items())),
            f"most attempts of one job {self.max_attempt} ({self.max_attempt_job})",
            f"total {self.seconds:.0f}s",
        ]
        return "\n".join(lines)


class ApiOutage:
    """The operator's path to its API server: operator -> stalling proxy -> cutting proxy -> API."""

    def __init__(self, api_port: int) -> None:
        self.cutter = TcpProxy(api_port)
        self.staller = StallingProxy(("127.0.0.1", self.cutter.port))
        self.port = self.staller.port

    def stall(self) -> None:
        self.staller.stall()

    def refuse(self) -> None:
        self.cutter.cut()  # drops the stalled connections too
        self.staller.resume()

    def end(self) -> None:
        self.cutter.heal()

    def close(self) -> None:
        self.staller.close()
        self.cutter.close()


@dataclass
class Side:
    """One cluster as the run sees it. Lists are read as raw JSON: building the client's models
    for every pod would make a sample take seconds on a loaded machine."""

    kube: Kube
    capacity: dict[tuple[str, str], int]

    def jobs(self, namespace: str | None = None) -> list[dict[str, Any]]:
        c = self.kube.custom
        if namespace:
            raw = c.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "aijobs", _preload_content=False, _request_timeout=10
            )
        else:
            raw = c.list_cluster_custom_object(
                GROUP, VERSION, "aijobs", _preload_content=False, _request_timeout=10
            )
        return list(json.loads(raw.data)["items"])

    def pods(self) -> list[dict[str, Any]]:
        raw = self.kube.core.list_pod_for_all_namespaces(_preload_content=False, _request_timeout=10)
        return list(json.loads(raw.data)["items"])


class ChaosRun:
    def __init__(
        self,
        home: Side,
        partner: Side,
        operator: OperatorProcess,
        outage: ApiOutage,
        proxy: TcpProxy,
        stuck_after_s: float,
    ) -> None:
        self.home, self.partner, self.operator = home, partner, operator
        self.outage, self.proxy = outage, proxy
        self.figures = Figures()
        self.watch = measures.StuckWatch(stuck_after_s)
        self.stop = threading.Event()
        self.start = time.monotonic()
        self.operator_lock = threading.Lock()
        self.operator_down = False  # killed on purpose, restart pending
        self.pool = ThreadPoolExecutor(4)  # the four lists of one sample, at once

    def note(self, what: str) -> None:
        line = f"{time.monotonic() - self.start:6.1f}s {what}"
        self.figures.log.append(line)
        print(line, flush=True)

    def _sleep_until(self, at: float) -> bool:
        """Wait until `at` seconds into the run; False when the run is stopping."""
        return not self.stop.wait(max(0.0, self.start + at - time.monotonic()))

    # -- the three threads ------------------------------------------------------------------

    def submit(self, plans: list[JobPlan]) -> None:
        for plan in plans:
            if not self._sleep_until(plan.submit_at):
                return
            while not self.stop.is_set():
                try:
                    self.home.kube.custom.create_namespaced_custom_object(
                        GROUP, VERSION, plan.tenant, "aijobs", plan.manifest()
                    )
                    break
                except Exception as exc:  # the outage: try again (a 409 means it was created)
                    if getattr(exc, "status", None) == 409:
                        break
                    self.stop.wait(1)
            self.figures.jobs += 1

    def inject(self, schedule: list[Fault]) -> None:
        down_at = cut_at = 0.0
        for fault in schedule:
            if not self._sleep_until(fault.at):
                return
            now = time.monotonic()
            if fault.action == "kill":
                with self.operator_lock:
                    self.operator_down = True
                    self.operator.kill()
                self.figures.kills += 1
                self.note(f"SIGKILL operator (restart in {fault.detail}s)")
                self.stop.wait(fault.detail)
                with self.operator_lock:
                    self.operator.start()
                    self.operator_down = False
            elif fault.action == "api-stall":
                self.outage.stall()
                down_at = now
                self.note("the operator's API connections hang")
            elif fault.action == "api-refuse":
                self.outage.refuse()
                self.note("the operator's API connections dropped and refused")
            elif fault.action == "api-back":
                self.outage.end()
                self.figures.outage_s = now - down_at
                self.note(f"the operator reaches its API server again after {self.figures.outage_s:.0f}s")
            elif fault.action == "cut":
                self.proxy.cut()
                cut_at = now
                self.note("federation link cut")
            elif fault.action == "heal":
                self.proxy.heal()
                self.figures.partition_s = now - cut_at
                self.note(f"federation link healed after {self.figures.partition_s:.0f}s")

    def sample_forever(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            self.sample_once()
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - began)))

    def sample_once(self) -> None:
        f = self.figures
        f.samples += 1
        f.sample_times.append(time.monotonic())
        with self.operator_lock:
            proc = self.operator.proc
            if not self.operator_down and proc is not None and proc.poll() is not None:
                f.operator_exits += 1
                self.note(f"the operator exited on its own (code {proc.returncode}); restarting it")
                self.operator.start()
        calls = (self.home.jobs, self.home.pods, lambda: self.partner.jobs(REMOTE_NS), self.partner.pods)
        try:
            home_jobs, home_pods, copies, partner_pods = self.pool.map(lambda call: call(), calls)
        except Exception:
            f.missed += 1
            return
        over_bound = {
            **measures.bound_overallocation(home_pods, self.home.capacity),
            **measures.bound_overallocation(partner_pods, self.partner.capacity),
        }
        over_booked = {
            **measures.booking_overallocation(home_jobs, self.home.capacity),
            **measures.booking_overallocation(copies, self.partner.capacity),
        }
        f.max_over_bound = max([f.max_over_bound, *over_bound.values()])
        f.max_over_booked = max([f.max_over_booked, *over_booked.values()])
        for what, excess in (("over-allocated (pods)", over_bound), ("over-booked", over_booked)):
            if excess:
                self.note(f"{what}: {excess}")
        dupes = measures.duplicate_workers(home_pods) + measures.duplicate_workers(partner_pods)
        doubles = measures.double_runs(home_pods, partner_pods, copies)
        for what, found, seen in (("duplicate", dupes, f.duplicates), ("double run", doubles, f.double_runs)):
            if set(found) - seen:
                self.note(f"{what}: {sorted(set(found) - seen)}")
            seen.update(found)
        self.watch.observe(home_jobs, time.monotonic())
        f.stuck_during = dict(self.watch.stuck)

    # -- the whole run ----------------------------------------------------------------------

    def run(
        self, plans: list[JobPlan], schedule: list[Fault], drain_s: float, expected_waiting: set[str]
    ) -> Figures:
        """Submit, inject, sample; then wait up to `drain_s` after the last fault for every job
        but `expected_waiting` to finish."""
        threads = [
            threading.Thread(target=target, args=args, daemon=True)
            for target, args in (
                (self.submit, (plans,)),
                (self.inject, (schedule,)),
                (self.sample_forever, ()),
            )
        ]
        for t in threads:
            t.start()
        last = max([p.submit_at for p in plans] + [f.at for f in schedule])
        self._sleep_until(last)
        threads[1].join()  # the last fault (a restart) may take a moment
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline and not self._settled(expected_waiting):
            time.sleep(2)
        self.stop.set()
        for t in threads:
            t.join(timeout=30)
        self.pool.shutdown()
        self._final(expected_waiting)
        self.figures.seconds = time.monotonic() - self.start
        return self.figures

    def _settled(self, expected_waiting: set[str]) -> bool:
        with contextlib.suppress(Exception):
            jobs = self.home.jobs()
            done = [
                j
                for j in jobs
                if (j.get("status") or {}).get("phase") in measures.FINISHED
                or f"{j['metadata']['namespace']}/{j['metadata']['name']}" in expected_waiting
            ]
            return len(jobs) == self.figures.jobs and len(done) == len(jobs)
        return False

    def _final(self, expected_waiting: set[str]) -> None:
        f = self.figures
        for job in self.home.jobs():
            key = f"{job['metadata']['namespace']}/{job['metadata']['name']}"
            status = job.get("status") or {}
            f.phases[status.get("phase") or "None"] += 1
            f.burst_runs += sum(1 for r in status.get("runs") or [] if r.get("cluster") != "local")
            if (status.get("attempt") or 0) > f.max_attempt:
                f.max_attempt, f.max_attempt_job = status["attempt"], key
            if status.get("phase") not in measures.FINISHED and key not in expected_waiting:
                f.stuck_at_end[key] = (
                    f"{status.get('phase')}/{status.get('reason')} at attempt {status.get('attempt') or 0}: "
                    f"{status.get('message', '')[:100]}"
                )


def expected_never_fits(side: Side, names: set[str]) -> Callable[[], dict[str, str]]:
    """The never-fitting jobs' phase and reason, for the final check."""

    def read() -> dict[str, str]:
        out = {}
        for job in side.jobs():
            key = f"{job['metadata']['namespace']}/{job['metadata']['name']}"
            if key in names:
                status = job.get("status") or {}
                out[key] = f"{status.get('phase')}/{status.get('reason')}"
        return out

    return read
