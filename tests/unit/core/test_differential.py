"""The fast cycle decides exactly what the previous cycle decided: a differential test.

`tests/unit/core/reference/` is a frozen copy of the core before the incremental cycle. On random
clusters and queues, under every `Policy` setting, both must give identical admissions (pool,
nodes per rank, reason), preemptions, and waiting jobs (reason, message, position, verdicts, in
the same order). The fast cycle is checked three ways: with a fresh state, with a state carried
over a sequence of cycles (jobs start, finish, arrive, are preempted; nodes and foreign usage
change now and then), and against itself with a fresh state at every step of that sequence.
The queues are built from a few job shapes, many jobs each, so that verdicts shared by a class of
identical jobs, and the events that invalidate them, are exercised.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Protocol, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from estuary.core import CycleState, Policy, explain, pool_usage, run_cycle
from estuary.model import (
    AcceptedType,
    CycleResult,
    JobRequest,
    NodeInfo,
    Reason,
    RunningJob,
    Snapshot,
    Taint,
    Toleration,
)

from . import reference
from .builders import (
    ASCEND,
    GI,
    GPU,
    apply,
    ascend_pool,
    make_job,
    make_node,
    make_nodes,
    make_pool,
    quota,
    run,
    snapshot,
)
from .test_properties import ANY_CLUSTER

TENANTS = ("physics", "chem", "bio")
TAINT = Taint("dedicated", "ml")
T = TypeVar("T")


class Draw(Protocol):
    """What `queue` and `next_snapshot` draw with: a composite's `draw`, or `st.data().draw`."""

    def __call__(self, strategy: st.SearchStrategy[T], /) -> T: ...


SETTINGS = settings(max_examples=int(os.environ.get("ESTUARY_PROPERTY_EXAMPLES", "150")), deadline=None)


def assert_same(new: CycleResult, old: CycleResult) -> None:
    assert new.admissions == old.admissions
    assert new.preemptions == old.preemptions
    assert list(new.waiting.items()) == list(old.waiting.items())


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    return Policy(
        type_choice=draw(st.sampled_from(["fastest", "preference", "any_free", "wait_fastest"])),
        backfill=draw(st.booleans()),
        reserve_after_s=draw(st.sampled_from([0.0, 50.0, 300.0])),
        preemption=draw(st.booleans()),
        fair_sharing=draw(st.booleans()),
    )


@st.composite
def shapes(draw: st.DrawFn) -> list[dict[str, object]]:
    """A few job shapes; every job of a queue is one of them (a name and an arrival apart)."""
    found = []
    for _ in range(draw(st.integers(1, 5))):
        workers = draw(st.integers(1, 4))
        found.append(
            {
                "workers": workers,
                "gpus": draw(st.sampled_from([1, 2, 4, 8])),
                "cpu": draw(st.sampled_from([0, 0, 16_000])),
                "memory": draw(st.sampled_from([0, 0, 256 * GI])),
                "tenant": draw(st.sampled_from(TENANTS)),
                "accepts": draw(
                    st.lists(
                        st.sampled_from(
                            [
                                AcceptedType("nvidia"),
                                AcceptedType("huawei"),
                                AcceptedType("nvidia", "A800", throughput=3.0),
                            ]
                        ),
                        min_size=1,
                        max_size=3,
                        unique=True,
                    )
                ),
                "priority": draw(st.sampled_from([0, 0, 1, 3])),
                "min_workers": draw(st.sampled_from([None, 1])) if workers > 1 else None,
                "residency": draw(st.sampled_from(["any"] * 6 + ["mainland"])),
                "tolerations": (Toleration("dedicated", "Equal", "ml"),) if draw(st.booleans()) else (),
                "node_selector": {"estuary.dev/rack": "r1"} if draw(st.integers(0, 6)) == 0 else {},
                "preemptible": draw(st.integers(0, 5)) > 0,
            }
        )
    return found


def job_of(shape: dict[str, object], key: str, arrival: float) -> JobRequest:
    return make_job(key, arrival=arrival, **shape)  # type: ignore[arg-type]


@st.composite
def crowded(draw: st.DrawFn) -> tuple[Snapshot, list[dict[str, object]], Policy]:
    """Three pools (quotas or not), 2-12 nodes in racks and zones, some busy with running jobs."""
    quotas = {}
    if draw(st.booleans()):
        quotas = {
            t: quota(draw(st.sampled_from([0, 8, 16])), draw(st.sampled_from([None, 0, 8])))
            for t in TENANTS[:2]
        }
        quotas["*"] = quota(draw(st.sampled_from([0, 8])))
    pools = [
        make_pool("h800", throughput=2.0, quotas=quotas),
        make_pool("a800", model="A800"),
        ascend_pool(throughput=1.5, quotas=quotas if draw(st.booleans()) else {}),
    ]
    nodes = []
    for index in range(draw(st.integers(2, 12))):
        pool = draw(st.sampled_from(["h800", "a800", "ascend-910b"]))
        nodes.append(
            make_node(
                f"n{index:02d}",
                draw(st.sampled_from([4, 8])),
                pool=pool,
                resource=ASCEND if pool == "ascend-910b" else GPU,
                cpu=draw(st.sampled_from([32_000, 96_000])),
                rack=draw(st.sampled_from([None, "r1", "r2"])),
                zone=draw(st.sampled_from([None, "z1", "z2"])),
                taints=(TAINT,) if draw(st.integers(0, 6)) == 0 else (),
                ready=draw(st.integers(0, 12)) > 0,
                unhealthy=draw(st.sampled_from([0, 0, 0, 1])),
            )
        )
    snap = Snapshot(
        {p.name: p for p in pools},
        {n.name: n for n in nodes},
        jurisdiction=draw(st.sampled_from([None, "hk"])),
    )
    return snap, draw(shapes()), draw(policies())


def queue(draw: Draw, kinds: list[dict[str, object]], prefix: str, start: float) -> list[JobRequest]:
    count = draw(st.integers(0, 25))
    return [
        job_of(
            kinds[draw(st.integers(0, len(kinds) - 1))],
            f"ns/{prefix}{i:02d}",
            start + draw(st.integers(0, 60)),
        )
        for i in range(count)
    ]


def started(
    snap: Snapshot, result: CycleResult, pending: list[JobRequest], now: float
) -> dict[str, RunningJob]:
    jobs = {j.key: j for j in pending}
    running = dict(snap.running)
    for a in result.admissions:
        running[a.job_key] = RunningJob(jobs[a.job_key], a.assignment, now)
    for p in result.preemptions:
        old = running[p.victim_key]
        running[p.victim_key] = RunningJob(old.job, old.assignment, old.started, terminating=True)
    return running


def next_snapshot(
    draw: Draw, snap: Snapshot, running: dict[str, RunningJob], nominated: frozenset[str] = frozenset()
) -> Snapshot:
    """Some running jobs end (terminating ones first); now and then a node or foreign usage changes.
    `nominated`: the jobs decided first in the next cycle (those that chose victims)."""
    for key in sorted(running):
        if draw(st.integers(0, 3 if running[key].terminating else 6)) == 0:
            del running[key]
    nodes: dict[str, NodeInfo] = dict(snap.nodes)
    if draw(st.integers(0, 5)) == 0:
        name = draw(st.sampled_from(sorted(nodes)))
        nodes[name] = dataclasses.replace(nodes[name], ready=not nodes[name].ready)
    foreign = snap.foreign_usage
    if draw(st.integers(0, 5)) == 0:
        foreign = {name: {GPU: draw(st.sampled_from([0, 1])), "cpu": 4_000} for name in sorted(nodes)}
    same = draw(st.integers(0, 3)) > 0  # mostly the very same objects, as the simulator passes them
    return Snapshot(
        snap.pools if same else dict(snap.pools),
        snap.nodes if nodes == snap.nodes and same else nodes,
        running,
        foreign,
        snap.jurisdiction,
        nominated,
    )


def nominations(draw: Draw, result: CycleResult, pending: list[JobRequest]) -> frozenset[str]:
    """As the shell passes them: the jobs that waited for preemption; now and then a few others
    (a status written before a restart), to exercise the order with any set."""
    keys = {k for k, w in result.waiting.items() if w.reason == Reason.PREEMPTING}
    if pending and draw(st.integers(0, 3)) == 0:
        keys.update(draw(st.lists(st.sampled_from([j.key for j in pending]), max_size=3)))
    return frozenset(keys)


@SETTINGS
@given(ANY_CLUSTER)
def test_one_cycle_decides_as_the_reference_on_the_property_test_clusters(
    case: tuple[Snapshot, list[JobRequest], float, Policy],
) -> None:
    snap, pending, now, policy = case
    assert_same(
        run_cycle(snap, pending, now, policy),
        reference.run_cycle(snap, pending, now, reference.frozen_policy(policy)),
    )


@SETTINGS
@given(st.data())
def test_a_sequence_of_cycles_with_a_carried_state_decides_as_the_reference(data: st.DataObject) -> None:
    snap, kinds, policy = data.draw(crowded())
    state = CycleState()
    pending = queue(data.draw, kinds, "a", 0.0)
    for step in range(data.draw(st.integers(1, 5))):
        now = 100.0 * (step + 1)
        carried = run_cycle(snap, pending, now, policy, state=state)
        assert_same(carried, reference.run_cycle(snap, pending, now, reference.frozen_policy(policy)))
        assert_same(run_cycle(snap, pending, now, policy), carried)
        running = started(snap, carried, pending, now)
        admitted = {a.job_key for a in carried.admissions}
        pending = [j for j in pending if j.key not in admitted] + queue(data.draw, kinds, f"s{step}-", now)
        stopping = [r.job for r in running.values() if r.terminating]
        snap = next_snapshot(data.draw, snap, running, nominations(data.draw, carried, pending))
        pending += [job for job in stopping if job.key not in snap.running]  # victims requeued


@SETTINGS
@given(st.data())
def test_repeating_a_cycle_on_a_carried_state_gives_the_same_result(data: st.DataObject) -> None:
    """The state is rolled back after each cycle: the same input twice decides the same twice."""
    snap, kinds, policy = data.draw(crowded())
    pending = queue(data.draw, kinds, "a", 0.0)
    state = CycleState()
    once = run_cycle(snap, pending, 400.0, policy, state=state)
    assert_same(run_cycle(snap, pending, 400.0, policy, state=state), once)


@SETTINGS
@given(st.data())
def test_explain_and_pool_usage_match_the_reference(data: st.DataObject) -> None:
    snap, kinds, policy = data.draw(crowded())
    pending = queue(data.draw, kinds, "a", 0.0)
    snap = next_snapshot(data.draw, snap, started(snap, run_cycle(snap, pending, 0.0, policy), pending, 0.0))
    job = job_of(kinds[0], "ns/x", 0.0)
    assert explain(snap, job, 0.0) == reference.explain(snap, job, 0.0)
    new = {k: dataclasses.asdict(v) for k, v in pool_usage(snap).items()}
    old = {k: dataclasses.asdict(v) for k, v in reference.pool_usage(snap).items()}
    assert new == old


def test_a_victim_turned_terminating_is_awaited_by_a_carried_state_as_by_the_reference() -> None:
    """The random sequences seldom keep a preemptor pending beside its terminating victim; this
    case pins it: the carried view must see the victim's change (a `RunningJob` replaced by an
    unequal one), or the next cycle would pick the same victim again."""
    running = [run(make_job(f"ns/low{i}", priority=0), "h800", [f"n{i}"]) for i in (1, 2)]
    snap = snapshot([make_pool()], make_nodes("n", 2), running)
    urgent = [make_job("ns/urgent", priority=5, arrival=1.0)]
    policy, state = Policy(), CycleState()
    first = run_cycle(snap, urgent, 10.0, policy, state=state)
    assert [p.victim_key for p in first.preemptions] == ["ns/low1"]
    snap = apply(snap, first, 10.0, urgent)  # the same pools and nodes: the view is kept
    second = run_cycle(snap, urgent, 20.0, policy, state=state)
    assert_same(second, reference.run_cycle(snap, urgent, 20.0, reference.frozen_policy(policy)))
    assert not second.preemptions
    assert second.waiting["ns/urgent"].message.startswith("waiting for ns/low1 to finish terminating")
