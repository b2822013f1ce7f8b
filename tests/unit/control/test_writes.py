"""Writes in the background (control/writes.py): the loop assumes, a pool of workers writes.

What a user relies on: a slow API server does not stop the operator deciding for other jobs; a job
admitted but not yet written is never admitted twice nor its accelerators given to another job; a
write that fails leaves nothing booked and the job back in the queue; and a job costs the API server
at most `workers + 3` writes from creation to Running.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from estuary.control import writes
from estuary.control.decisions import POSITION_REFRESH_S, POSITION_WRITES_PER_S
from estuary.core import CycleState, run_cycle
from estuary.kube.status import joinable, joined
from estuary.state import snapshot
from estuary.state.codec import held_nodes

from .harness import NS, Harness, node


def writes_of(h: Harness, job: str) -> list[str]:
    """The writes the operator made for one job: status patches, creates and events."""
    out = [
        f"{method} {what}"
        for method, what in h.server.calls
        if method in ("patch_job_status", "create") and what.split(":")[0].split("/")[-1].startswith(job)
    ]
    return out + [f"event {reason}" for name, reason, _ in h.server.events if name == job]


class Gate:
    """Holds every AIJob status write (those `holds`, when given) until opened (a slow API
    server), then lets them through or fails them."""

    def __init__(self, h: Harness, holds: Callable[[dict[str, Any]], bool] | None = None) -> None:
        self.open, self.entered = threading.Event(), threading.Event()
        self.fail: Exception | None = None
        real = h.server.patch_job_status

        def patch_job_status(namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
            if holds is not None and not holds(status):
                return real(namespace, name, status)
            self.entered.set()
            assert self.open.wait(10), "the test never opened the gate"
            if self.fail is not None:
                raise self.fail
            return real(namespace, name, status)

        h.server.patch_job_status = patch_job_status  # type: ignore[method-assign]


def booked(h: Harness) -> set[str]:
    """The jobs that hold accelerators in what the next tick reads."""
    return set(snapshot.read(h.server.cache, h.clock.wall()).snapshot().running)


def test_a_job_costs_at_most_workers_plus_three_writes_until_it_runs() -> None:
    h = Harness(nodes=4)
    for name, workers in (("one", 1), ("two", 2)):
        h.submit(name, workers=workers)
    h.step()
    for name in ("one", "two"):
        h.set_pods("Running", name)
    h.step()
    for name, workers in (("one", 1), ("two", 2)):
        assert h.phase(name) == ("Running", "Running")
        writes = writes_of(h, name)
        assert len(writes) == workers + 3, writes  # Admitted, Service, the pods, Running
        assert writes[0] == f"patch_job_status {name}:Admitted"
        assert writes[-1] == f"patch_job_status {name}:Running"
    # the check that the API server would accept its pods is a dry run: one per job, no write
    assert sorted(w for m, w in h.server.calls if m == "dry_run") == ["Pod/one-worker-0", "Pod/two-worker-0"]


def test_the_loop_decides_on_while_an_admission_is_being_written() -> None:
    h = Harness()
    gate = Gate(h)
    h.submit("first")
    h.loop.tick()  # admits `first`; its write hangs in the background
    assert gate.entered.wait(5)
    assert h.status("first") == {}  # the API server has nothing yet...
    assert booked(h) == {f"{NS}/first"}  # ...but the operator counts its accelerators booked
    h.submit("second")  # needs the same two nodes
    h.loop.tick()
    h.loop.tick()  # ticks go on while the write hangs, and admit nothing twice
    assert not [c for c in h.server.calls if c[0] == "create"]  # no pod before its admission
    gate.open.set()
    h.controller.background.wait()
    h.step()
    assert h.phase("first") == ("Admitted", "Admitted") and len(h.pods("first")) == 2
    assert h.phase("second") == ("Queued", "InsufficientCapacity") and h.pods("second") == []
    assert h.status("first")["attempt"] == 1


def test_a_failed_admission_write_is_undone_and_the_job_queued_again() -> None:
    h = Harness()
    gate = Gate(h)
    h.submit()
    h.loop.tick()
    assert gate.entered.wait(5) and booked(h) == {f"{NS}/train"}
    gate.fail = RuntimeError("etcdserver: request timed out")
    gate.open.set()
    h.controller.background.wait()
    assert booked(h) == set()  # nothing is booked for it
    view = snapshot.read(h.server.cache, h.clock.wall())
    assert [r.key for r in view.pending(h.clock.wall())] == [f"{NS}/train"]  # back in the queue
    assert h.status() == {} and h.pods() == []  # and no pod was created for the lost admission
    gate.fail = None
    h.step()  # decided again from what the API server holds
    assert h.phase() == ("Admitted", "Admitted") and h.status()["attempt"] == 1 and len(h.pods()) == 2


def test_a_refused_background_create_releases_the_attempt_with_a_hold() -> None:
    h = Harness()
    h.submit()
    h.step()  # passes the dry run and is admitted
    h.server.delete("pods", f"{NS}/train-worker-1")
    h.server.refuse_pods = lambda pod: "spec.containers[0].image: Required value"
    h.step(2)  # the lifecycle recreates the missing worker, refused; the next step releases
    status = h.status()
    assert status["phase"] == "Queued" and status["reason"] == "InvalidPodTemplate", status
    assert status["hold"]["generation"] == 1
    assert booked(h) == {f"{NS}/train"}  # kept until its pods are gone: nothing double-booked
    h.step()
    assert booked(h) == set() and h.pods() == []


def test_jobs_told_why_they_wait_never_hold_up_an_admission() -> None:
    h = Harness()
    held, opened = threading.Event(), threading.Event()
    real = h.server.patch_job_status

    def patch_job_status(namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        if status.get("phase") == "Queued":  # a slow lane: every waiting reason hangs
            held.set()
            assert opened.wait(10)
        return real(namespace, name, status)

    h.server.patch_job_status = patch_job_status  # type: ignore[method-assign]
    for i in range(12):
        h.submit(f"huge-{i}", workers=3)  # three nodes' worth: never fits on two
    h.loop.tick()  # twelve waiting reasons, every one hanging
    assert held.wait(5)
    h.submit("train")
    h.loop.tick()
    h.controller.background.wait(f"{NS}/train", timeout=10)  # answered while the others hang
    assert h.phase("train") == ("Admitted", "Admitted") and len(h.pods("train")) == 2
    assert all(h.status(f"huge-{i}") == {} for i in range(12))
    opened.set()
    h.controller.background.wait()
    assert h.phase("huge-0") == ("Queued", "NeverFits")


def test_an_admission_whose_write_fails_leaves_no_run_in_the_usage_ledger() -> None:
    from estuary.ledger import Ledger

    h = Harness()
    h.loop.ledger = Ledger(h.server)
    gate = Gate(h)
    h.submit()
    h.loop.tick()  # admitted in the cache, the write hangs; the ledger syncs at the tick's end
    assert gate.entered.wait(5)
    gate.fail = RuntimeError("etcdserver: request timed out")
    gate.open.set()
    h.controller.background.wait()
    h.loop.tick()  # nothing of the lost admission reached a ledger
    assert not [ledger.get("status", {}).get("records") for ledger in h.server.items("usageledgers")]
    gate.fail = None
    h.controller.background.wait()  # admitted again, and written this time
    h.step(2)  # the ledger copies it once the write is answered
    records = [
        r for ledger in h.server.items("usageledgers") for r in ledger.get("status", {}).get("records", [])
    ]
    assert len(records) == 1 and records[0]["attempt"] == 1  # only the admission that was written
    assert h.status()["attempt"] == 1 and len(h.status()["runs"]) == 1


def hang_writes_of(h: Harness, job: str) -> tuple[threading.Event, threading.Event]:
    """Every status write of one job hangs until released: (entered, release)."""
    entered, release = threading.Event(), threading.Event()
    real = h.server.patch_job_status

    def patch_job_status(namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        if name == job:
            entered.set()
            assert release.wait(10), "the test never released the write"
        return real(namespace, name, status)

    h.server.patch_job_status = patch_job_status  # type: ignore[method-assign]
    return entered, release


def status_writes(h: Harness, job: str) -> list[str]:
    return [w for w in writes_of(h, job) if w.startswith("patch_job_status")]


def test_a_waiting_job_has_one_write_queued_at_most_and_the_latest_wins() -> None:
    h = Harness(writers=2)  # the waiting lane has one worker
    entered, release = hang_writes_of(h, "huge-0")
    h.submit("huge-0", workers=3)  # three nodes' worth: never fits on two
    h.loop.tick()
    assert entered.wait(5)  # the lane's one worker hangs on it
    h.submit("huge-1", workers=3)
    h.loop.tick()  # huge-1: position 2, queued behind huge-0 in the lane
    h.clock.advance(POSITION_REFRESH_S + 1)
    h.submit("urgent", workers=3, priority=5)  # goes ahead of both
    h.loop.tick()  # huge-1 moves to position 3 while its first write is still queued
    h.loop.tick()
    release.set()
    h.controller.background.wait()
    assert status_writes(h, "huge-1") == ["patch_job_status huge-1:Queued"]  # one write, not two
    status = h.status("huge-1")
    assert (status["reason"], status["queuePosition"]) == ("NeverFits", 3)  # the latest
    assert status["queuedAt"]


def test_an_admission_behind_a_queued_waiting_reason_goes_out_at_once_as_one_write() -> None:
    h = Harness(writers=2)
    entered, release = hang_writes_of(h, "blocker")
    h.submit("blocker", workers=4)  # never fits, even on three nodes
    h.loop.tick()
    assert entered.wait(5)  # the waiting lane's one worker hangs
    h.submit("train", workers=3)
    h.loop.tick()  # train waits (NeverFits on two nodes); its reason queued behind blocker's
    h.server.put(node("n2"))  # now it fits
    h.loop.tick()
    h.controller.background.wait(f"{NS}/train", timeout=5)
    assert not h.controller.background.busy(f"{NS}/train")  # answered while blocker's hangs
    assert h.phase("train") == ("Admitted", "Admitted") and len(h.pods("train")) == 3
    assert status_writes(h, "train") == ["patch_job_status train:Admitted"]  # the reason joined it
    assert h.status("train")["queuedAt"]  # what the waiting write said is kept
    assert h.status("blocker") == {}  # still hanging: the admission did not wait for the lane
    release.set()
    h.controller.background.wait()
    assert h.phase("blocker") == ("Queued", "NeverFits")


def test_merge_patches_join_only_when_one_patch_does_the_same() -> None:
    first = {"phase": "Queued", "hold": None, "queuePosition": 2, "placement": {"pool": "a"}}
    then = {"queuePosition": 3, "placement": {"nodes": ["n0"]}, "verdicts": None}
    assert joinable(first, then)
    assert joined(first, then) == {
        "phase": "Queued",
        "hold": None,
        "queuePosition": 3,
        "placement": {"pool": "a", "nodes": ["n0"]},
        "verdicts": None,
    }
    assert not joinable({"hold": None}, {"hold": {"reason": "x"}})  # the old hold's keys would stay


def test_a_dry_run_never_holds_up_a_step_and_a_passed_one_is_not_asked_again() -> None:
    h = Harness(precheck_wait_s=0.0)
    answer = threading.Event()
    real = h.server.create

    def create(manifest: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        if dry_run:
            assert answer.wait(10), "the test never let the dry run answer"
        return real(manifest, dry_run)

    h.server.create = create  # type: ignore[method-assign]
    h.submit()
    tick = threading.Thread(target=h.loop.tick)
    tick.start()
    tick.join(5)
    assert not tick.is_alive()  # the step went on while the API server had not answered
    h.controller.background.wait()
    assert h.status() == {} and h.pods() == []  # nothing decided for the job before the answer
    answer.set()
    for _ in range(200):  # the answer starts a step; one of them admits the job
        h.step()
        if h.phase()[0] == "Admitted":
            break
    assert h.phase() == ("Admitted", "Admitted") and len(h.pods()) == 2
    h.server.delete("pods", f"{NS}/train-worker-0")
    h.server.delete("pods", f"{NS}/train-worker-1")
    h.server.patch("aijobs", f"{NS}/train", {"status": None}, "status")  # as if never written
    h.step(2)
    assert h.phase() == ("Admitted", "Admitted")
    assert [w for m, w in h.server.calls if m == "dry_run"] == ["Pod/train-worker-0"]  # asked once


def test_the_carried_cycle_state_frees_what_an_undone_admission_booked() -> None:
    h = Harness()
    gate = Gate(h)
    h.submit("first")
    h.loop.tick()  # first assumed admitted: the carried state books its two nodes
    assert gate.entered.wait(5)
    h.submit("second")
    h.loop.tick()  # second waits behind it
    gate.fail = RuntimeError("etcdserver: request timed out")
    gate.open.set()
    h.controller.background.wait()  # every write failed: nothing booked, both back in the queue
    now = h.clock.wall()
    view = snapshot.read(h.server.cache, now)
    carried = run_cycle(view.snapshot(), view.pending(now), now, state=h.controller.cycle_state)
    fresh = run_cycle(view.snapshot(), view.pending(now), now, state=CycleState())
    assert carried == fresh and [a.job_key for a in carried.admissions] == [f"{NS}/first"]
    gate.fail = None
    h.step()
    assert h.phase("first") == ("Admitted", "Admitted") and len(h.pods("first")) == 2
    assert h.phase("second") == ("Queued", "InsufficientCapacity") and h.pods("second") == []


def never_double_booked(h: Harness) -> list[dict[str, int]]:
    """Check after every AIJob status write that what the API server holds books no node twice;
    returns the nodes found booked twice (empty when never)."""
    found: list[dict[str, int]] = []
    real = h.server.patch_job_status

    def patch_job_status(namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        answer = real(namespace, name, status)
        held = Counter(n for j in h.server.items("aijobs") for n in held_nodes(j.get("status")))
        if twice := {n: c for n, c in held.items() if c > 1}:
            found.append(twice)
        return answer

    h.server.patch_job_status = patch_job_status  # type: ignore[method-assign]
    return found


def finished_then_second_waiting(h: Harness) -> Gate:
    """`first` runs on both nodes and `second` waits for them; `first`'s workers then succeed and
    the write that says so hangs in a gate."""
    h.running("first")
    h.submit("second")
    h.step()
    assert h.phase("second") == ("Queued", "InsufficientCapacity")
    gate = Gate(h, holds=lambda status: status.get("phase") == "Succeeded")
    h.set_pods("Succeeded", "first")
    h.loop.tick()
    assert gate.entered.wait(5)
    h.loop.tick()
    assert booked(h) == {f"{NS}/second"}  # the loop has given first's nodes to second...
    return gate


def test_nodes_a_finished_job_frees_are_booked_again_only_once_its_finish_is_written() -> None:
    h = Harness()
    twice = never_double_booked(h)
    gate = finished_then_second_waiting(h)
    # ...but second's admission is not written while first's finish is not
    assert h.controller.background.wait(f"{NS}/second", timeout=1.0)
    assert h.phase("second") == ("Queued", "InsufficientCapacity") and h.pods("second") == []
    gate.open.set()
    h.controller.background.wait()
    order = [w for m, w in h.server.calls if m == "patch_job_status" and ":" in w]
    assert order.index("first:Succeeded") < order.index("second:Admitted"), order
    assert h.phase("first")[0] == "Succeeded" and h.phase("second")[0] == "Admitted"
    assert len(h.pods("second")) == 2 and twice == []


def test_an_admission_onto_nodes_whose_freeing_write_failed_is_undone() -> None:
    h = Harness()
    twice = never_double_booked(h)
    gate = finished_then_second_waiting(h)
    gate.fail = RuntimeError("etcdserver: request timed out")
    gate.open.set()
    h.controller.background.wait()
    # first still holds the nodes in what the API server says: second's admission is not written
    assert h.phase("first")[0] == "Running" and h.phase("second")[0] == "Queued"
    assert h.pods("second") == [] and booked(h) == {f"{NS}/first"}  # as written
    gate.fail = None
    h.step(2)  # decided again from what the API server holds: first finishes, then second starts
    assert h.phase("first")[0] == "Succeeded" and h.phase("second")[0] == "Admitted"
    assert len(h.pods("second")) == 2 and twice == []


def test_a_flood_of_new_jobs_is_told_why_it_waits_a_bounded_number_at_a_time(monkeypatch: Any) -> None:
    monkeypatch.setattr(writes, "WAITING_QUEUED_MAX", 3)
    h = Harness(writers=2)
    entered, release = hang_writes_of(h, "huge-0")
    for i in range(8):
        h.submit(f"huge-{i}", workers=3)  # never fit
    h.loop.tick()
    assert entered.wait(5)
    h.loop.tick()
    told = [i for i in range(8) if h.controller.background.busy(f"{NS}/huge-{i}")]
    assert told == [0, 1, 2]  # three reasons queued; the others not assumed, told later
    h.submit("train")
    h.loop.tick()  # an admission is never held back by the bound
    h.controller.background.wait(f"{NS}/train", timeout=5)
    assert h.phase("train") == ("Admitted", "Admitted")
    release.set()
    h.step(3)
    assert all(h.phase(f"huge-{i}") == ("Queued", "NeverFits") for i in range(8))
    assert [w for m, w in h.server.calls if m == "dry_run" and "huge-7" in w] == ["Pod/huge-7-worker-0"]


def test_with_many_jobs_waiting_positions_that_only_moved_are_rewritten_less_often() -> None:
    h = Harness()
    for i in range(400):
        h.submit(f"huge-{i:03}", workers=3)  # never fit; 401 waiting: a rewrite every ~20 s
    h.step()
    assert h.status("huge-000")["queuePosition"] == 1
    h.submit("urgent", workers=3, priority=5)  # every position behind it moves
    h.clock.advance(POSITION_REFRESH_S + 1)
    h.step()
    assert h.controller.decisions.refresh_s == 401 / POSITION_WRITES_PER_S
    assert h.status("huge-000")["queuePosition"] == 1  # not yet: 400 rewrites are spread out
    h.clock.advance(401 / POSITION_WRITES_PER_S - POSITION_REFRESH_S)
    h.step()
    assert h.status("huge-000")["queuePosition"] == 2
