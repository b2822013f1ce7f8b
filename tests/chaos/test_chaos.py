"""The chaos tier (issue #17): a mixed workload under crashes, an outage and a partition.

152 AIJobs in four tenants with the example quotas (tests/chaos/workload.py) arrive over three
minutes at the Hong Kong cluster, which may burst physics jobs to Guangzhou. Meanwhile the
operator is SIGKILLed five times at random moments and restarted, its API server is taken from it
for 35 s (connections hang for 15 s, then are dropped and refused for 20 s, while the cluster
goes on without it), and the federation link is cut for 75 s, longer than the copies' 30 s
lease. Every second the run samples over-allocation, duplicate workers, double runs and stuck
jobs (tests/chaos/measures.py), and at the end it prints the figures and expects them all zero,
and every job finished but the two built never to fit, which must say NeverFits.

    hack/test.sh -m chaos                           # or: .venv/bin/pytest -m chaos tests/chaos
    ESTUARY_CHAOS_SEED=7 hack/test.sh -m chaos      # another workload and fault schedule
"""

from __future__ import annotations

import os

import pytest

from tests.chaos import workload
from tests.chaos.conftest import LEASE
from tests.chaos.harness import ApiOutage, ChaosRun, Side
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.provider_tools import TcpProxy

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.timeout(3000)]

SEED = int(os.environ.get("ESTUARY_CHAOS_SEED", "2026"))
STUCK_AFTER_S = 180.0  # a job holding accelerators whose state has not changed for 3 min
DRAIN_S = 600.0  # after the last fault, for the queue to empty


def test_no_overallocation_duplicate_double_run_or_stuck_job_under_chaos(
    chaos_home: tuple[Side, OperatorProcess, ApiOutage, TcpProxy],
    chaos_partner: tuple[object, Side],
    capsys: pytest.CaptureFixture[str],
) -> None:
    home, operator, outage, proxy = chaos_home
    _, partner = chaos_partner
    plans = workload.jobs(SEED)
    schedule = workload.faults(SEED)
    never_fits = {f"biology/{name}" for name in workload.NEVER_FITS}
    run = ChaosRun(home, partner, operator, outage, proxy, STUCK_AFTER_S)
    with capsys.disabled():
        print(f"\nchaos: seed {SEED}, {len(plans)} jobs, faults {[(f.at, f.action) for f in schedule]}")
        figures = run.run(plans, schedule, DRAIN_S, never_fits)
        print(figures.report())
    waiting = {
        f"{j['metadata']['namespace']}/{j['metadata']['name']}": (j.get("status") or {}).get("reason")
        for j in home.jobs()
        if f"{j['metadata']['namespace']}/{j['metadata']['name']}" in never_fits
    }
    problems = [
        f"{what}: {value}"
        for what, value, fine in (
            ("jobs submitted", figures.jobs, figures.jobs == len(plans)),
            ("SIGKILLs", figures.kills, figures.kills == 5),
            ("outage s", figures.outage_s, figures.outage_s >= 30),
            ("partition s", figures.partition_s, figures.partition_s >= LEASE),
            ("samples", figures.samples, figures.samples >= 100),
            ("max over-allocation (bound pods)", figures.max_over_bound, figures.max_over_bound == 0),
            ("max over-allocation (bookings)", figures.max_over_booked, figures.max_over_booked == 0),
            ("duplicate workers", sorted(figures.duplicates), not figures.duplicates),
            ("double runs", sorted(figures.double_runs), not figures.double_runs),
            ("stuck holding accelerators", figures.stuck_during, not figures.stuck_during),
            ("not finished", figures.stuck_at_end, not figures.stuck_at_end),
            ("never-fitting jobs", waiting, waiting == dict.fromkeys(never_fits, "NeverFits")),
            ("runs at the partner", figures.burst_runs, figures.burst_runs > 0),
            ("operator exits on its own", figures.operator_exits, figures.operator_exits == 0),
        )
        if not fine
    ]
    assert operator.proc is not None and operator.proc.poll() is None, "the operator is running"
    assert not problems, "\n".join(problems)
