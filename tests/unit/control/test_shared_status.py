"""ComputePool and UsageLedger status written in the background (control/writes.py `latest`).

What a user relies on: a slow API server answering a pool's or a ledger's status write never
holds up admissions; the pool and the ledger still end up saying what the cluster holds (the latest
status wins, none is lost); a failed ledger write is made good on a later step; and in the
operator two writes of one pool are spaced, so a trickle of admissions does not cost a pool write
and a ledger write per job.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from estuary.control.writes import Background
from estuary.core import pool_usage
from estuary.ledger import Ledger
from estuary.state import snapshot

from .harness import NS, Harness


def hang_pool_writes(h: Harness) -> tuple[threading.Event, threading.Event]:
    """Every ComputePool status write hangs until released: (entered, release)."""
    entered, release = threading.Event(), threading.Event()
    real = h.server.patch_pool_status

    def patch_pool_status(name: str, status: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        assert release.wait(10), "the test never released the write"
        return real(name, status)

    h.server.patch_pool_status = patch_pool_status  # type: ignore[method-assign]
    return entered, release


def pool_writes(h: Harness) -> int:
    return sum(1 for method, _ in h.server.calls if method == "patch_pool_status")


def test_a_hanging_pool_status_write_never_holds_up_admissions() -> None:
    h = Harness(nodes=4)
    entered, release = hang_pool_writes(h)
    h.submit("first")
    h.loop.tick()
    assert entered.wait(5)  # the pool's status write hangs...
    h.submit("second")
    h.loop.tick()
    h.loop.tick()  # ...and steps go on: the second job is admitted meanwhile
    assert h.controller.background.wait(f"{NS}/second", timeout=5)
    assert h.phase("second") == ("Admitted", "Admitted") and len(h.pods("second")) == 2
    release.set()
    h.controller.background.wait()
    h.step()
    pool = h.server.get("computepools", "h800")
    assert pool is not None and pool["status"]["allocated"] == 32  # both jobs, as the cluster holds
    assert pool_writes(h) == 2  # the one that hung, then the latest of those decided meanwhile


def test_a_failed_ledger_status_write_is_made_good_on_a_later_step() -> None:
    h = Harness()
    h.loop.ledger = Ledger(h.server, later=h.controller.background.latest)  # as the operator wires it
    real, failures = h.server.patch_ledger_status, [RuntimeError("etcdserver: request timed out")]

    def patch_ledger_status(name: str, status: dict[str, Any]) -> dict[str, Any]:
        if failures:
            raise failures.pop()
        return real(name, status)

    h.server.patch_ledger_status = patch_ledger_status  # type: ignore[method-assign]
    h.submit()
    h.step()  # admitted; its run's ledger write fails
    assert [ledger.get("status") for ledger in h.server.items("usageledgers")] == [None]
    h.step()  # the ledgers are listed again and the run written
    records = [r for ledger in h.server.items("usageledgers") for r in ledger["status"]["records"]]
    assert [r["attempt"] for r in records] == [1]


def test_two_writes_of_one_object_are_spaced_and_the_latest_wins() -> None:
    h = Harness()
    background = Background(h.server, h.server.cache, h.controller.writer, spacing=0.2)
    written: list[str] = []
    last = threading.Event()

    def write(what: str) -> None:
        written.append(what)
        if what == "third":
            last.set()

    background.latest("ComputePool h800", lambda: write("first"))  # sent at once
    background.wait()
    background.latest("ComputePool h800", lambda: write("second"))  # within the spacing: held...
    background.latest("ComputePool h800", lambda: write("third"))  # ...and replaced
    assert written == ["first"]
    assert last.wait(5)
    background.wait()
    time.sleep(0.3)  # nothing else comes
    assert written == ["first", "third"]
    background.close()


def test_pool_usage_from_the_kept_working_view_is_what_a_fresh_one_gives() -> None:
    """The pool status is computed from the core's kept working view (not built again each
    step): after admissions, a finished job and a node going away, it says what a fresh view of
    the same snapshot says."""
    h = Harness(nodes=4)
    for name in ("first", "second"):
        h.submit(name)
    h.step()
    h.set_pods("Running", "first")
    h.step()
    h.set_pods("Succeeded", "first")
    h.server.delete("nodes", "n3")
    h.submit("third", workers=1)
    for _ in range(3):
        h.step()
        after = snapshot.read(h.server.cache, h.clock.wall()).snapshot()
        kept = h.controller.cycle_state.workspace(after)
        assert pool_usage(after, kept) == pool_usage(after)
    assert pool_usage(after)["h800"].allocated > 0
