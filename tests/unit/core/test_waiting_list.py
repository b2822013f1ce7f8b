"""The cycle's waiting jobs as a `WaitingList`, and verdicts handed on only while they hold.

A cycle returns its waiting jobs as keys plus one shared verdict entry per class (waiting.py), and
hands a class's verdict to its later jobs until something that verdict read changes (verdicts.py:
the cycle's validity counter). Both are checked against the frozen core of before
(tests/unit/core/reference) and against the plain dict a caller would expect.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from estuary.core import CycleState, Policy, run_cycle
from estuary.core.waiting import WaitingList
from estuary.model import Reason, TypeVerdict, Waiting

from . import reference
from .builders import make_job, make_nodes, make_pool, quota, snapshot
from .test_differential import SETTINGS, assert_same, crowded, job_of, next_snapshot, nominations, started

LONG = settings(SETTINGS, max_examples=max(10, (SETTINGS.max_examples or 0) // 3))
CAPACITY_VERDICT = (TypeVerdict("h800", "nvidia", "H800", False, Reason.CAPACITY, "full", 1.0),)


def test_a_waiting_list_reads_as_the_dict_of_waiting_jobs_in_queue_order() -> None:
    full = (Reason.CAPACITY, "pool h800 is full", CAPACITY_VERDICT)
    quota_entry = (Reason.QUOTA, "over quota", ())
    listed = WaitingList(["ns/a", "ns/b", "ns/c"], [full, quota_entry, full])
    expected = {
        "ns/a": Waiting("ns/a", Reason.CAPACITY, "pool h800 is full", 1, CAPACITY_VERDICT),
        "ns/b": Waiting("ns/b", Reason.QUOTA, "over quota", 2),
        "ns/c": Waiting("ns/c", Reason.CAPACITY, "pool h800 is full", 3, CAPACITY_VERDICT),
    }
    assert list(listed.items()) == list(expected.items())
    assert list(listed.values()) == list(expected.values())
    assert list(listed) == list(expected)
    assert listed == expected and expected == listed
    assert listed["ns/b"] == expected["ns/b"] and hash(listed["ns/b"]) == hash(expected["ns/b"])
    assert "ns/c" in listed and "ns/x" not in listed and listed.get("ns/x") is None
    assert len(listed) == 3
    assert listed.keys_with({Reason.QUOTA}) == ["ns/b"]
    assert listed.keys_with({Reason.CAPACITY, Reason.QUOTA}) == ["ns/a", "ns/b", "ns/c"]
    assert listed != {**expected, "ns/c": Waiting("ns/c", Reason.CAPACITY, "pool h800 is full", 4)}


def test_a_class_verdict_is_decided_again_after_an_admission_changes_its_quota() -> None:
    """big1 and big2 are one class; small's admission in between uses the tenant's quota, so
    big2's message must show the new usage, not big1's (the validity counter moves)."""
    pool = make_pool(quotas={"physics": quota(8, 0)})
    snap = snapshot([pool], make_nodes("n", 3), [])
    jobs = [
        make_job("ns/big1", workers=2, arrival=0),
        make_job("ns/small", arrival=1),
        make_job("ns/big2", workers=2, arrival=2),
    ]
    policy = Policy(fair_sharing=False, preemption=False)
    new = run_cycle(snap, jobs, 0.0, policy, state=CycleState())
    old = reference.run_cycle(snap, jobs, 0.0, reference.frozen_policy(policy))
    assert [a.job_key for a in new.admissions] == ["ns/small"] == [a.job_key for a in old.admissions]
    assert list(new.waiting.items()) == list(old.waiting.items())
    assert "used 0 of nominal 8" in new.waiting["ns/big1"].message
    assert "used 8 of nominal 8" in new.waiting["ns/big2"].message


def test_without_quotas_later_jobs_of_a_class_behind_admissions_decide_as_the_reference() -> None:
    """No pool has quotas: an admission does not move the validity counter, so a class's later
    jobs take its verdict without being decided again; reasons, messages and positions stay the
    reference's, in a carried state's second cycle too."""
    snap = snapshot([make_pool()], make_nodes("n", 2), [])
    jobs = [make_job(f"ns/big{i}", workers=3, arrival=2 * i) for i in range(4)]
    jobs += [make_job(f"ns/small{i}", arrival=2 * i + 1) for i in range(4)]
    policy = Policy(fair_sharing=False, preemption=False)
    state = CycleState()
    for now in (0.0, 10.0):
        new = run_cycle(snap, jobs, now, policy, state=state)
        old = reference.run_cycle(snap, jobs, now, reference.frozen_policy(policy))
        assert new.admissions == old.admissions
        assert list(new.waiting.items()) == list(old.waiting.items())
    assert [a.job_key for a in new.admissions] == ["ns/small0", "ns/small1"]
    assert {w.reason for k, w in new.waiting.items() if k.startswith("ns/big")} == {Reason.NEVER_FITS}


@LONG
@given(st.data())
def test_long_queues_of_a_few_shapes_decide_as_the_reference_cycle_after_cycle(data: st.DataObject) -> None:
    """Queues of 40-160 jobs from a few shapes, arrivals spread over the starvation guard's age:
    most jobs are handed their class's verdict in bulk (sweep.py), between the first jobs of
    classes, while others are admitted, reserve nodes or are nominated."""
    snap, kinds, policy = data.draw(crowded())
    arrivals = data.draw(st.lists(st.integers(0, 900), min_size=40, max_size=160))
    picks = data.draw(
        st.lists(st.integers(0, len(kinds) - 1), min_size=len(arrivals), max_size=len(arrivals))
    )
    pending = [
        job_of(kinds[k], f"ns/l{i:03d}", float(t))
        for i, (k, t) in enumerate(zip(picks, arrivals, strict=True))
    ]
    state = CycleState()
    for step in range(3):
        now = 300.0 * (step + 1)
        carried = run_cycle(snap, pending, now, policy, state=state)
        assert_same(carried, reference.run_cycle(snap, pending, now, reference.frozen_policy(policy)))
        running = started(snap, carried, pending, now)
        admitted = {a.job_key for a in carried.admissions}
        pending = [j for j in pending if j.key not in admitted]
        stopping = [r.job for r in running.values() if r.terminating]
        snap = next_snapshot(data.draw, snap, running, nominations(data.draw, carried, pending))
        pending += [job for job in stopping if job.key not in snap.running]
