"""Properties that hold for any cluster and queue: checked on generated inputs with hypothesis.

No decision over-allocates a node; the same input gives the same result, in any pending order;
residency is never violated; no gang is partial; quota limits hold; victims follow the rules.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from estuary.core import Policy, run_cycle
from estuary.model import (
    AcceptedType,
    Assignment,
    CycleResult,
    JobRequest,
    RunningJob,
    Snapshot,
    Taint,
    Toleration,
)
from estuary.model.cluster import tolerated

from .builders import ASCEND, GI, GPU, apply, ascend_pool, make_job, make_node, make_pool, quota, snapshot

TAINT = Taint("dedicated", "ml")
TENANTS = ("physics", "chem", "bio")


@st.composite
def clusters(draw: st.DrawFn) -> tuple[Snapshot, list[JobRequest], float, Policy]:
    with_quotas = draw(st.booleans())
    quotas = (
        {
            t: quota(
                draw(st.sampled_from([0, 8, 16])),
                draw(st.sampled_from([None, 0, 8])),
                draw(st.sampled_from([None, 0, 8])),
                draw(st.sampled_from([1.0, 2.0])),
            )
            for t in TENANTS[:2]
        }
        if with_quotas
        else {}
    )
    if with_quotas and draw(st.booleans()):
        quotas["*"] = quota(8)
    pools = [
        make_pool("h800", throughput=2.0, quotas=quotas),
        make_pool("a800", model="A800"),
        ascend_pool(throughput=1.5, quotas=quotas),
    ]
    nodes = []
    for index in range(draw(st.integers(1, 10))):
        pool = draw(st.sampled_from(["h800", "a800", "ascend-910b"]))
        nodes.append(
            make_node(
                f"n{index:02d}",
                draw(st.sampled_from([4, 8])),
                pool=pool,
                resource=ASCEND if pool == "ascend-910b" else GPU,
                cpu=draw(st.sampled_from([16_000, 64_000])),
                memory=draw(st.sampled_from([128, 512])) * GI,
                rack=draw(st.sampled_from([None, "r1", "r2"])),
                zone=draw(st.sampled_from([None, "z1"])),
                taints=(TAINT,) if draw(st.integers(0, 5)) == 0 else (),
                ready=draw(st.integers(0, 9)) > 0,
                unschedulable=draw(st.integers(0, 9)) == 0,
                unhealthy=draw(st.sampled_from([0, 0, 0, 1, 2])),
            )
        )
    jobs = []
    for index in range(draw(st.integers(0, 14))):
        accepts = draw(
            st.lists(
                st.sampled_from(
                    [AcceptedType("nvidia"), AcceptedType("huawei"), AcceptedType("nvidia", "A800")]
                ),
                min_size=1,
                max_size=2,
            )
        )
        workers = draw(st.integers(1, 4))
        jobs.append(
            make_job(
                f"ns/j{index:02d}",
                workers=workers,
                gpus=draw(st.sampled_from([1, 2, 4, 8])),
                cpu=draw(st.sampled_from([0, 4_000, 16_000])),
                memory=draw(st.sampled_from([0, 64 * GI])),
                tenant=draw(st.sampled_from(TENANTS)),
                accepts=accepts,
                priority=draw(st.integers(0, 2)),
                arrival=float(draw(st.integers(0, 5))),
                min_workers=draw(st.sampled_from([None, 1])) if workers > 1 else None,
                residency=draw(st.sampled_from(["any", "any", "hk", "mainland"])),
                tolerations=(Toleration("dedicated", "Equal", "ml"),) if draw(st.booleans()) else (),
                preemptible=draw(st.integers(0, 4)) > 0,
            )
        )
    snap = snapshot(pools, nodes, jurisdiction=draw(st.sampled_from([None, "hk"])))
    # Some of the jobs run already: admit a prefix in a first cycle, mark a few terminating.
    split = draw(st.integers(0, len(jobs)))
    first = run_cycle(snap, jobs[:split], 0.0)
    snap = apply(snap, first, 0.0, jobs[:split])
    running = {
        k: RunningJob(r.job, r.assignment, r.started, draw(st.integers(0, 4)) == 0)
        for k, r in sorted(snap.running.items())
    }
    foreign = {n.name: {GPU: draw(st.sampled_from([0, 0, 1])), "cpu": 2_000} for n in nodes}
    snap = Snapshot(snap.pools, snap.nodes, running, foreign, snap.jurisdiction)
    pending = [j for j in jobs if j.key not in running]
    extra = [
        make_job(
            f"ns/late{i}",
            workers=draw(st.integers(1, 3)),
            gpus=draw(st.sampled_from([2, 8])),
            tenant=draw(st.sampled_from(TENANTS)),
            priority=draw(st.sampled_from([0, 3, 5])),
            accepts=("nvidia", "huawei"),
            arrival=10.0 + i,
        )
        for i in range(draw(st.integers(0, 5)))
    ]
    policy = Policy(
        type_choice=draw(st.sampled_from(["fastest", "preference", "any_free", "wait_fastest"])),
        backfill=draw(st.booleans()),
        reserve_after_s=draw(st.sampled_from([0.0, 300.0])),
        preemption=draw(st.booleans()),
        fair_sharing=draw(st.booleans()),
    )
    return snap, pending + extra, draw(st.sampled_from([5.0, 1000.0])), policy


@st.composite
def busy_clusters(draw: st.DrawFn) -> tuple[Snapshot, list[JobRequest], float, Policy]:
    """One pool, every node full of running jobs of several tenants: preemption territory."""
    quotas = {"physics": quota(16), "chem": quota(8), "*": quota(0)} if draw(st.booleans()) else {}
    count = draw(st.integers(2, 6))
    nodes = [make_node(f"n{i}", 8) for i in range(count)]
    running: dict[str, RunningJob] = {}
    for i in range(count):
        left = 8
        while left > 0:
            gpus = min(left, draw(st.sampled_from([2, 4, 8])))
            left -= gpus
            job = make_job(
                f"ns/r{len(running):02d}",
                gpus=gpus,
                tenant=draw(st.sampled_from(TENANTS)),
                priority=draw(st.integers(0, 3)),
                preemptible=draw(st.integers(0, 6)) > 0,
            )
            running[job.key] = RunningJob(
                job,
                Assignment("h800", (f"n{i}",)),
                float(draw(st.integers(0, 9))),
                draw(st.integers(0, 9)) == 0,
            )
    pending = [
        make_job(
            f"ns/p{i}",
            workers=draw(st.integers(1, 2)),
            gpus=draw(st.sampled_from([2, 4, 8])),
            tenant=draw(st.sampled_from(TENANTS)),
            priority=draw(st.integers(0, 4)),
            arrival=float(i),
        )
        for i in range(draw(st.integers(1, 6)))
    ]
    snap = Snapshot({"h800": make_pool(quotas=quotas)}, {n.name: n for n in nodes}, running)
    policy = Policy(backfill=draw(st.booleans()), fair_sharing=draw(st.booleans()))
    return snap, pending, 100.0, policy


ANY_CLUSTER = st.one_of(clusters(), busy_clusters())


def _free(snap: Snapshot, node: str, resource: str) -> list[int]:
    info = snap.nodes[node]
    foreign = snap.foreign_usage.get(node, {})
    free = [
        info.capacity.get(resource, 0) - foreign.get(resource, 0) - info.unhealthy_accelerators,
        info.capacity.get("cpu", 0) - foreign.get("cpu", 0),
        info.capacity.get("memory", 0) - foreign.get("memory", 0),
    ]
    for r in snap.running.values():
        for n in r.assignment.nodes:
            if n == node:
                w = r.job.per_worker
                free = [free[0] - w.accelerators, free[1] - w.cpu_milli, free[2] - w.memory]
    return free


# ESTUARY_PROPERTY_EXAMPLES=5000 for a deeper search than the default quick run
SETTINGS = settings(max_examples=int(os.environ.get("ESTUARY_PROPERTY_EXAMPLES", "150")), deadline=None)


@SETTINGS
@given(ANY_CLUSTER)
def test_no_decision_over_allocates_a_node_or_ignores_its_rules(
    case: tuple[Snapshot, list[JobRequest], float, Policy],
) -> None:
    snap, pending, now, policy = case
    result = run_cycle(snap, pending, now, policy)
    jobs = {j.key: j for j in pending}
    taken: dict[str, list[int]] = {}
    for a in result.admissions:
        job = jobs[a.job_key]
        pool = snap.pools[a.assignment.pool]
        assert any(t.matches(pool.vendor, pool.model) for t in job.accepted)
        for node in a.assignment.nodes:
            info = snap.nodes[node]
            assert info.ready and not info.unschedulable and pool.selects(info)
            assert tolerated(info.taints, pool.tolerations + job.tolerations)
            used = taken.setdefault(node, [0, 0, 0])
            w = job.per_worker
            used[0] += w.accelerators
            used[1] += w.cpu_milli
            used[2] += w.memory
    for node, used in taken.items():
        pool = next(p for p in snap.pools.values() if p.selects(snap.nodes[node]))
        free = _free(snap, node, pool.resource)
        # a resource nobody asks for may be over-committed by others already (Kubernetes does the same)
        assert all(u <= f for u, f in zip(used, free, strict=True) if u > 0), (node, used, free)


@SETTINGS
@given(ANY_CLUSTER, st.randoms(use_true_random=False))
def test_the_same_input_gives_the_same_result_in_any_pending_order(
    case: tuple[Snapshot, list[JobRequest], float, Policy], rnd: random.Random
) -> None:
    snap, pending, now, policy = case
    once = run_cycle(snap, pending, now, policy)
    shuffled = list(pending)
    rnd.shuffle(shuffled)
    again = run_cycle(snap, shuffled, now, policy)
    assert once == again
    assert list(once.waiting) == list(again.waiting)


def _usage(snap: Snapshot, result: CycleResult, jobs: Mapping[str, JobRequest]) -> dict[tuple[str, str], int]:
    used: dict[tuple[str, str], int] = {}
    for r in snap.running.values():
        key = (r.assignment.pool, r.job.tenant)
        used[key] = used.get(key, 0) + r.job.per_worker.accelerators * r.assignment.workers
    for a in result.admissions:
        job = jobs[a.job_key]
        key = (a.assignment.pool, job.tenant)
        used[key] = used.get(key, 0) + job.per_worker.accelerators * a.assignment.workers
    return used


@SETTINGS
@given(ANY_CLUSTER)
def test_gangs_are_whole_residency_holds_and_quota_limits_hold(
    case: tuple[Snapshot, list[JobRequest], float, Policy],
) -> None:
    snap, pending, now, policy = case
    result = run_cycle(snap, pending, now, policy)
    jobs = {j.key: j for j in pending}
    assert {a.job_key for a in result.admissions}.isdisjoint(result.waiting)
    assert {a.job_key for a in result.admissions} | set(result.waiting) == set(jobs)
    assert [w.position for w in result.waiting.values()] == list(range(1, len(result.waiting) + 1))
    for a in result.admissions:
        job = jobs[a.job_key]
        smallest = job.workers if job.min_workers is None else job.min_workers
        assert smallest <= a.assignment.workers <= job.workers
        assert snap.jurisdiction is None or job.residency in ("any", snap.jurisdiction)
    usage = _usage(snap, result, jobs)
    for a in result.admissions:
        pool = snap.pools[a.assignment.pool]
        tenant = jobs[a.job_key].tenant
        if pool.quotas:
            entry = pool.quotas.get(tenant) or pool.quotas.get("*")
            assert entry is not None
            if entry.borrowing_limit is not None:
                assert usage[(pool.name, tenant)] <= entry.nominal + entry.borrowing_limit


@SETTINGS
@given(ANY_CLUSTER)
def test_victims_follow_the_preemption_rules(case: tuple[Snapshot, list[JobRequest], float, Policy]) -> None:
    snap, pending, now, policy = case
    result = run_cycle(snap, pending, now, policy)
    jobs = {j.key: j for j in pending}
    assert policy.preemption or not result.preemptions
    keys = [p.victim_key for p in result.preemptions]
    assert len(keys) == len(set(keys))
    for p in result.preemptions:
        victim = snap.running[p.victim_key]
        preemptor = jobs[p.preemptor_key]
        assert not victim.terminating and victim.job.preemptible
        assert result.waiting[p.preemptor_key].reason.value == "WaitingForPreemption"
        if p.reason == "Priority":
            assert victim.job.tenant == preemptor.tenant and victim.job.priority < preemptor.priority
        else:
            assert p.reason == "Reclaim" and victim.job.tenant != preemptor.tenant
            pool = snap.pools[victim.assignment.pool]
            nominal = (pool.quotas.get(victim.job.tenant) or pool.quotas.get("*") or quota(0)).nominal
            held = sum(
                r.job.per_worker.accelerators * r.assignment.workers
                for r in snap.running.values()
                if r.job.tenant == victim.job.tenant and r.assignment.pool == pool.name
            ) + sum(  # this cycle's admissions count; preempting jobs' future places do not
                jobs[a.job_key].per_worker.accelerators * a.assignment.workers
                for a in result.admissions
                if jobs[a.job_key].tenant == victim.job.tenant and a.assignment.pool == pool.name
            )
            assert held > nominal  # the victim's tenant was borrowing
    for preemptor_key in {p.preemptor_key for p in result.preemptions}:
        gone = {p.victim_key for p in result.preemptions if p.preemptor_key == preemptor_key}
        after = Snapshot(
            snap.pools,
            snap.nodes,
            {k: r for k, r in snap.running.items() if k not in gone},
            snap.foreign_usage,
            snap.jurisdiction,
        )
        alone = run_cycle(after, [jobs[preemptor_key]], now, policy)
        assert [a.job_key for a in alone.admissions] == [preemptor_key]  # the victims were enough
