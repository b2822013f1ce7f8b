"""A cycle over 10,000 pending jobs and 1,000 nodes gives a decision for every job.

Its speed is measured by bench/core_cycle.py (medians and ratios), not asserted here: tests never
assert wall-clock times on shared machines.
"""

from __future__ import annotations

import random

from estuary.core import Policy, run_cycle
from estuary.model import AcceptedType, JobRequest, RunningJob

from .builders import ASCEND, GI, ascend_pool, make_job, make_node, make_pool, quota, run, snapshot

TENANTS = [f"t{i}" for i in range(10)]


def _jobs(rnd: random.Random, count: int) -> list[JobRequest]:
    jobs = []
    for i in range(count):
        gpus = rnd.choice([1] * 10 + [2] * 3 + [4] * 3 + [8] * 3 + [16, 32, 64])
        workers, per = max(1, gpus // 8), min(gpus, 8)
        jobs.append(
            make_job(
                f"ns/j{i:05d}",
                workers=workers,
                gpus=per,
                cpu=per * 4000,
                memory=per * 32 * GI,
                tenant=rnd.choice(TENANTS),
                accepts=(AcceptedType("nvidia"), AcceptedType("huawei")),
                priority=rnd.choice([0, 0, 0, 1, 2]),
                arrival=float(i),
                min_workers=1 if workers > 2 and rnd.random() < 0.2 else None,
            )
        )
    return jobs


def test_ten_thousand_jobs_on_a_thousand_nodes_each_get_a_decision() -> None:
    rnd = random.Random(7)
    pools = [
        make_pool(
            "h800", throughput=2.0, quotas={t: quota(300, weight=1 + i % 3) for i, t in enumerate(TENANTS)}
        ),
        ascend_pool(quotas={t: quota(200) for t in TENANTS}),
    ]
    nodes = [make_node(f"g{i:04d}", rack=f"r{i // 20:02d}", zone=f"z{i // 150}") for i in range(600)]
    nodes += [
        make_node(f"a{i:04d}", pool="ascend-910b", resource=ASCEND, rack=f"ar{i // 20:02d}")
        for i in range(400)
    ]
    empty = snapshot(pools, nodes)
    jobs = _jobs(rnd, 10_000)
    first = run_cycle(empty, jobs, 1000.0, Policy())
    by_key = {j.key: j for j in jobs}
    running: list[RunningJob] = [
        run(by_key[a.job_key], a.assignment.pool, a.assignment.nodes) for a in first.admissions
    ]
    full = snapshot(pools, nodes, running)
    rest = [j for j in jobs if j.key not in {r.job.key for r in running}]
    second = run_cycle(full, rest, 2000.0, Policy())
    assert len(first.admissions) > 500
    assert len(second.waiting) + len(second.admissions) == len(rest)
    assert len(first.waiting) + len(first.admissions) == len(jobs)
