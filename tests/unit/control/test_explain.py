"""`estuary explain` reads through the same pure snapshot a controller step starts from, and never
writes: anyone may run it about anyone's jobs, including AIJobs Estuary cannot parse."""

from __future__ import annotations

from estuary import explain
from estuary.state import snapshot

from .harness import NS, Harness, job


def test_explain_an_invalid_job_of_someone_else_without_writing_or_crashing() -> None:
    h = Harness()
    bad = job("broken")
    bad["spec"]["workers"] = 0  # refused by today's CRD; an object from an older schema may hold it
    h.server.put(bad)
    h.submit("fine", workers=1)
    h.server.calls.clear()
    version = h.server.version
    out = explain.render(f"{NS}/broken", h.server.cache, None, h.clock.wall())
    assert out.startswith(f"AIJob {NS}/broken is not valid: the job cannot run as written: spec.workers")
    other = explain.render(f"{NS}/fine", h.server.cache, None, h.clock.wall())
    assert "nvidia/H800 in pool h800: fits now" in other
    assert h.server.calls == [] and h.server.version == version  # nothing written


def test_explain_says_why_a_job_waits_with_the_numbers() -> None:
    h = Harness()
    h.submit("big", workers=3)
    h.step()
    out = explain.render(f"{NS}/big", h.server.cache, None, h.clock.wall())
    assert "phase:    Queued" in out and "reason:   NeverFits" in out
    assert "nvidia/H800 in pool h800: NeverFits" in out


def test_the_snapshot_read_is_pure() -> None:
    h = Harness()
    h.submit("a", workers=1)
    before = h.server.cache.items("aijobs")
    view = snapshot.read(h.server.cache, h.clock.wall())
    assert [r.key for r in view.pending(h.clock.wall())] == [f"{NS}/a"] and view.snapshot().running == {}
    assert h.server.cache.items("aijobs") == before and h.server.calls == []
