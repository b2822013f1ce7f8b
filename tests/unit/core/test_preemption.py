"""Gang-aware preemption: reclaim lent quota, priority within a tenant, whole jobs, no flapping."""

from __future__ import annotations

from estuary.core import Policy
from estuary.model import CycleResult, Reason, Snapshot

from .builders import admitted, apply, cycle, finish, make_job, make_nodes, make_pool, quota, run, snapshot

QUOTAS = {"physics": quota(16), "chem": quota(16)}


def _chem_borrows_everything() -> Snapshot:
    """4 nodes; chem runs 4 jobs (32, nominal 16): it borrows physics' 16."""
    chem = [
        run(make_job(f"ns/c{i}", tenant="chem", priority=i % 2), "h800", [f"n{i}"], started=float(i))
        for i in range(1, 5)
    ]
    return snapshot([make_pool(quotas=QUOTAS)], make_nodes("n", 4), chem)


def victims(result: CycleResult) -> list[tuple[str, str, str]]:
    return [(p.victim_key, p.preemptor_key, p.reason) for p in result.preemptions]


def test_a_tenant_within_nominal_reclaims_from_a_borrower() -> None:
    result = cycle(_chem_borrows_everything(), make_job("ns/p", tenant="physics"))
    # least valuable: lowest priority (c2, c4 have priority 0), then most recently started: c4
    assert victims(result) == [("ns/c4", "ns/p", "Reclaim")]
    waiting = result.waiting["ns/p"]
    assert waiting.reason == Reason.PREEMPTING
    assert waiting.message == "preempting ns/c4 in pool h800 to start 1 worker"
    assert "tenant chem borrows 16 above its nominal 16" in result.preemptions[0].message


def test_reclaim_stops_once_the_borrower_is_back_at_its_nominal() -> None:
    result = cycle(_chem_borrows_everything(), make_job("ns/p", workers=3, tenant="physics"))
    assert not result.preemptions  # 24 > physics' nominal 16: not a reclaim
    result = cycle(_chem_borrows_everything(), make_job("ns/p", workers=2, tenant="physics"))
    assert sorted(v for v, _, _ in victims(result)) == ["ns/c2", "ns/c4"]


def test_a_borrower_cannot_reclaim_from_another_borrower() -> None:
    snap = _chem_borrows_everything()
    busy = {**snap.running, "ns/pp": run(make_job("ns/pp", workers=2, tenant="physics"), "h800", ["x", "y"])}
    snap = Snapshot(snap.pools, snap.nodes, busy)
    result = cycle(snap, make_job("ns/p", tenant="physics"))  # physics at 16 + 8 > nominal
    assert not result.preemptions
    assert result.waiting["ns/p"].reason != Reason.PREEMPTING


def test_higher_priority_evicts_lower_priority_of_the_same_tenant_only() -> None:
    running = [
        run(make_job("ns/mine-low", tenant="physics", priority=0), "h800", ["n1"]),
        run(make_job("ns/theirs-low", tenant="chem", priority=0), "h800", ["n2"]),
    ]
    snap = snapshot([make_pool()], make_nodes("n", 2), running)
    result = cycle(snap, make_job("ns/urgent", tenant="physics", priority=5))
    assert victims(result) == [("ns/mine-low", "ns/urgent", "Priority")]


def test_equal_priority_never_preempts() -> None:
    snap = snapshot([make_pool()], make_nodes("n", 1), [run(make_job("ns/a"), "h800", ["n1"])])
    assert not cycle(snap, make_job("ns/b")).preemptions


def test_non_preemptible_and_terminating_jobs_are_never_victims() -> None:
    running = [
        run(make_job("ns/keep", priority=0, preemptible=False), "h800", ["n1"]),
        run(make_job("ns/leaving", priority=0), "h800", ["n2"], terminating=True),
    ]
    snap = snapshot([make_pool()], make_nodes("n", 2), running)
    result = cycle(snap, make_job("ns/urgent", workers=2, priority=5))
    assert not result.preemptions
    assert result.waiting["ns/urgent"].reason == Reason.CAPACITY


def test_no_new_victims_while_terminating_jobs_would_make_room() -> None:
    running = [
        run(make_job("ns/low1", priority=0), "h800", ["n1"], terminating=True),
        run(make_job("ns/low2", priority=0), "h800", ["n2"]),
    ]
    snap = snapshot([make_pool()], make_nodes("n", 2), running)
    result = cycle(snap, make_job("ns/urgent", priority=5))
    assert not result.preemptions
    assert result.waiting["ns/urgent"].reason == Reason.PREEMPTING
    assert result.waiting["ns/urgent"].message.startswith("waiting for ns/low1 to finish terminating")


def test_a_gang_evicts_whole_jobs_and_the_fewest_of_them() -> None:
    # n1 holds four 2-GPU jobs started late, n2 one 8-GPU job started early: evicting the one is enough
    small = [run(make_job(f"ns/s{i}", gpus=2), "h800", ["n1"], started=10.0 + i) for i in range(4)]
    big = [run(make_job("ns/big", gpus=8), "h800", ["n2"], started=0.0)]
    snap = snapshot([make_pool()], make_nodes("n", 2), small + big)
    result = cycle(snap, make_job("ns/urgent", priority=5))
    assert victims(result) == [("ns/big", "ns/urgent", "Priority")]


def test_lower_priority_victims_are_chosen_over_fewer_higher_priority_ones() -> None:
    small = [run(make_job(f"ns/s{i}", gpus=4, priority=0), "h800", ["n1"]) for i in range(2)]
    big = [run(make_job("ns/big", gpus=8, priority=3), "h800", ["n2"])]
    snap = snapshot([make_pool()], make_nodes("n", 2), small + big)
    result = cycle(snap, make_job("ns/urgent", priority=5))
    assert sorted(v for v, _, _ in victims(result)) == ["ns/s0", "ns/s1"]


def test_victims_are_only_taken_where_they_make_the_gang_fit() -> None:
    # the gang needs both nodes of rack-less pool; n3's job is irrelevant to a 2-node fit of n1+n2
    running = [
        run(make_job("ns/a", priority=0), "h800", ["n1"], started=1.0),
        run(make_job("ns/b", priority=0), "h800", ["n2"], started=2.0),
    ]
    snap = snapshot([make_pool()], make_nodes("n", 3), running)
    result = cycle(snap, make_job("ns/urgent", workers=2, priority=5))
    assert victims(result) == [("ns/b", "ns/urgent", "Priority")]


def test_a_preempting_job_holds_its_room_against_later_jobs_in_the_cycle() -> None:
    running = [run(make_job("ns/low", priority=0), "h800", ["n1"])]
    snap = snapshot([make_pool()], make_nodes("n", 2), running)
    result = cycle(
        snap, make_job("ns/urgent", workers=2, priority=5), make_job("ns/filler", priority=0, arrival=1)
    )
    assert victims(result) == [("ns/low", "ns/urgent", "Priority")]
    assert not result.admissions


def test_no_preemption_when_the_policy_turns_it_off() -> None:
    result = cycle(
        _chem_borrows_everything(), make_job("ns/p", tenant="physics"), policy=Policy(preemption=False)
    )
    assert not result.preemptions
    assert result.waiting["ns/p"].reason == Reason.CAPACITY


def test_reclaim_does_not_flap_over_two_cycles() -> None:
    snap = _chem_borrows_everything()
    physics = make_job("ns/p", workers=2, tenant="physics", arrival=10)
    first = cycle(snap, physics, now=10)
    evicted = {v for v, _, _ in victims(first)}
    assert evicted == {"ns/c2", "ns/c4"}
    snap = finish(apply(snap, first, 10, [physics]), *evicted)
    second = cycle(snap, physics, now=11)
    assert admitted(second)["ns/p"][1] == ("n2", "n4")
    snap = apply(snap, second, 11, [physics])
    requeued = [make_job(k, tenant="chem", arrival=12) for k in sorted(evicted)]
    third = cycle(snap, *requeued, now=12)
    assert not third.preemptions  # chem would borrow again, and physics only uses its nominal
    assert all(w.reason != Reason.PREEMPTING for w in third.waiting.values())


def test_priority_preemption_does_not_flap_over_two_cycles() -> None:
    low = make_job("ns/low", priority=0)
    snap = snapshot([make_pool()], make_nodes("n", 1), [run(low, "h800", ["n1"])])
    urgent = make_job("ns/urgent", priority=5, arrival=1)
    first = cycle(snap, urgent, now=1)
    assert victims(first) == [("ns/low", "ns/urgent", "Priority")]
    snap = finish(apply(snap, first, 1, [urgent]), "ns/low")
    second = cycle(snap, urgent, low, now=2)
    assert set(admitted(second)) == {"ns/urgent"}
    snap = apply(snap, second, 2, [urgent, low])
    third = cycle(snap, low, now=3)
    assert not third.preemptions
    assert third.waiting["ns/low"].reason == Reason.CAPACITY
