"""What the operator writes for people without cluster-wide rights: per-type verdicts of a
waiting job, run records of every attempt, the usage ledger they are copied into, and pool
capacity in PFLOPS (through the shared fake API; tests/e2e/test_researcher.py checks the same
against a real API server)."""

from __future__ import annotations

from typing import Any

from estuary.ledger import Ledger
from estuary.usage import format_time

from .harness import NS, Harness


def test_a_waiting_job_carries_a_verdict_per_accepted_type_and_loses_it_when_admitted() -> None:
    h = Harness()
    h.submit("big", workers=3)  # 24 GPUs; the pool has 16
    h.step()
    (verdict,) = h.status("big")["verdicts"]
    assert verdict == {
        "pool": "h800",
        "vendor": "nvidia",
        "model": "H800",
        "fits": False,
        "reason": "NeverFits",
        "message": verdict["message"],
        "relativeRuntime": 1.0,
    }
    assert "16" in verdict["message"]
    writes = len(h.writes())
    h.step()  # nothing changed: nothing written
    assert len(h.writes()) == writes
    h.server.patch("aijobs", f"{NS}/big", {"spec": {"workers": 2}})
    h.step()
    assert h.phase("big") == ("Admitted", "Admitted") and "verdicts" not in h.status("big")


def test_every_attempt_is_recorded_with_its_accelerators_and_times() -> None:
    h = Harness()
    admitted = format_time(h.clock.wall())
    h.running()
    (opened,) = h.status()["runs"]
    assert opened["accelerators"] == 16 and opened["attempt"] == 1 and "endTime" not in opened
    assert opened["startTime"] == admitted and opened["pool"] == "h800" and opened["cluster"] == "local"
    assert "verdicts" not in h.status()
    h.clock.advance(600)
    h.submit("urgent", priority=100)  # needs both nodes: train is preempted
    h.step()
    (closed,) = h.status()["runs"]
    assert closed["outcome"] == "Preempted"
    assert closed["startTime"] == admitted and closed["endTime"] == format_time(h.clock.wall())


def test_the_loop_copies_run_records_into_the_tenants_usage_ledger() -> None:
    h = Harness()
    h.loop.ledger = Ledger(h.server)
    h.running()
    h.clock.advance(3600)
    h.set_pods("Succeeded")
    h.step(2)  # Succeeded is written in the background; the ledger copies it once answered
    (book,) = h.server.items("usageledgers")
    assert book["spec"]["tenant"] == "default"
    (record,) = book["status"]["records"]
    assert record["job"] == "train" and record["outcome"] == "Succeeded" and record["accelerators"] == 16
    assert book["status"]["acceleratorHours"] == 16.0
    h.server.delete("aijobs", f"{NS}/train")
    h.step()  # the job is gone; its usage stays
    assert h.server.items("usageledgers")[0]["status"]["records"] == [record]


def test_pool_status_shows_capacity_and_free_in_pflops() -> None:
    h = Harness()
    h.step()
    pool: dict[str, Any] = (h.server.get("computepools", "h800") or {})["status"]
    assert pool["capacityPflops"] == round(16 * 989.4 / 1000, 3)
    assert pool["freePflops"] == pool["capacityPflops"] and pool["allocatedPflops"] == 0
    assert pool["tflopsPerAccelerator"] == 989.4
