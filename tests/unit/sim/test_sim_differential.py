"""A whole replay decides as it did with the core before the incremental cycle.

The simulator carries one `CycleState` through a replay; the frozen core
(tests/unit/core/reference) gets none. Over overloaded streams, under every named policy, every
job must start at the same time, on the same pool, end at the same time and be preempted as often.
This is what keeps the published Gavel and Philly results valid.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from tests.unit.core import reference

from estuary.model import CycleResult, JobRequest, Snapshot, TenantQuota
from estuary.sim.cluster import PoolDecl, SimCluster, gavel_cluster, pool_decl
from estuary.sim.engine import Schedule, SimResult, Simulator
from estuary.sim.policies import DEFAULT_POLICIES, POLICIES
from estuary.sim.throughputs import ThroughputTable
from estuary.sim.traces import TraceJob, gavel_generated, load_philly
from estuary.sim.workload import to_sim_job


def frozen(policy: str) -> Schedule:
    settings = reference.frozen_policy(POLICIES[policy].policy)

    def cycle(snapshot: Snapshot, pending: Sequence[JobRequest], now: float) -> CycleResult:
        return reference.run_cycle(snapshot, pending, now, settings)

    return cycle


def replay(
    cluster: SimCluster, table: ThroughputTable, jobs: list[TraceJob], policy: str, old: bool
) -> SimResult:
    p = POLICIES[policy]
    sims = [s for s in (to_sim_job(j, cluster, table) for j in jobs) if s is not None]
    schedule = frozen(policy) if old else p.schedule()
    return Simulator(cluster, table, schedule, policy_name=policy, wake_after=p.wake_after).run(sims)


def rows(result: SimResult) -> list[tuple[object, ...]]:
    return [
        (r.key, r.first_start, r.end, r.pool, r.preemptions, r.unschedulable, r.run_seconds)
        for r in sorted(result.records.values(), key=lambda r: r.index)
    ]


@pytest.mark.parametrize("policy", DEFAULT_POLICIES)
def test_an_overloaded_gavel_replay_decides_as_the_frozen_core(policy: str, table: ThroughputTable) -> None:
    cluster = gavel_cluster(per_type=8, per_node=4)  # 24 accelerators against about 3 jobs/h
    jobs = list(itertools.islice(gavel_generated(table, 3.0, seed=1), 250))
    new, old = (replay(cluster, table, jobs, policy, flag) for flag in (False, True))
    assert rows(new) == rows(old)
    assert new.cycles == old.cycles and new.preemptions == old.preemptions


@pytest.mark.parametrize("policy", DEFAULT_POLICIES)
def test_a_philly_replay_of_gangs_decides_as_the_frozen_core(
    policy: str, table: ThroughputTable, data_dir: Path
) -> None:
    # Gangs of 1-16 accelerators on nodes of 4 and 8, an Ascend pool, submission gaps compressed so
    # that a queue forms. No quotas here (the next test has them).
    path = data_dir / "philly" / "philly.csv"
    jobs, _ = load_philly(path, table, limit=150, max_accelerators=16, compress=40)
    cluster = SimCluster(
        "small",
        (
            pool_decl("v100", "v100", 4, 8),
            pool_decl("p100", "p100", 4, 4),
            pool_decl("ascend", "ascend910", 2, 8),
        ),
    )
    new, old = (replay(cluster, table, jobs, policy, flag) for flag in (False, True))
    assert rows(new) == rows(old)
    assert new.cycles == old.cycles


def test_a_philly_replay_with_quotas_reclaims_without_circles_and_decides_as_the_frozen_core(
    table: ThroughputTable, data_dir: Path
) -> None:
    """Tenants with nominal quotas (half, a quarter, an eighth of each pool; the rest none) and
    gangs: reclaim preempts borrowers, each preemptor is nominated until it starts (issue 17), and
    the replay ends with every job done and no job preempted more than twice."""
    path = data_dir / "philly" / "philly.csv"
    jobs, _ = load_philly(path, table, limit=150, max_accelerators=16, compress=40)
    tenants = [t for t, _ in Counter(j.tenant for j in jobs).most_common(3)]

    def pool(name: str, worker_type: str, nodes: int, per_node: int) -> PoolDecl:
        size = nodes * per_node
        quotas = {t: TenantQuota(size // share) for t, share in zip(tenants, (2, 4, 8), strict=True)}
        return pool_decl(name, worker_type, nodes, per_node, quotas={**quotas, "*": TenantQuota(0)})

    cluster = SimCluster(
        "quotas", (pool("v100", "v100", 4, 8), pool("p100", "p100", 4, 4), pool("ascend", "ascend910", 2, 8))
    )
    new, old = (replay(cluster, table, jobs, "estuary", flag) for flag in (False, True))
    assert rows(new) == rows(old)
    assert new.preemptions > 0, "the replay exercises reclaim"
    assert all(r.end is not None for r in new.records.values())
    assert max(r.preemptions for r in new.records.values()) <= 2
