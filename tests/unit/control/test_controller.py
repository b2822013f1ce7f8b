"""The job controller's write order, through the shared fake API.

The same behaviour runs against a real API server in tests/e2e/test_aijob.py; these tests pin the
ordering that crash safety depends on, which an end-to-end test cannot observe directly.
"""

from __future__ import annotations

from estuary.control.seal import Sealer

from .harness import KEY, NS, Harness


def test_admission_writes_status_before_creating_any_pod() -> None:
    h = Harness()
    h.submit()
    h.step()
    writes = h.writes()
    assert writes[0] == ("patch_job_status", "train:Admitted")  # one write admits a new job
    assert ("create", "Pod/train-worker-0") in writes[1:] and ("create", "Pod/train-worker-1") in writes[1:]
    assert ("create", "Service/train") in writes[1:]
    status = h.status()
    assert status["placement"]["nodes"] == ["n0", "n1"] and status["attempt"] == 1


def test_no_pod_is_created_when_the_admission_cannot_be_recorded() -> None:
    h = Harness()
    h.submit()
    h.server.failures["patch_job_status"] = RuntimeError("API server unavailable")
    h.step()
    assert not [c for c in h.server.calls if c[0] == "create"] and h.pods() == []
    del h.server.failures["patch_job_status"]
    h.step()  # the next step decides again from fresh state
    assert h.phase() == ("Admitted", "Admitted") and len(h.pods()) == 2


def test_a_restarted_controller_creates_only_the_missing_workers_of_an_admitted_job() -> None:
    h = Harness()
    h.submit()
    h.step()
    h.server.delete("pods", f"{NS}/train-worker-1")  # the operator died between the two creates
    h.submit("other")  # must not fit: the two nodes are held by train
    h.server.calls.clear()
    # a new process, with the key from the same Secret
    h.controller = type(h.controller)(h.server.cache, h.server, clock=h.clock.wall, sealer=Sealer(KEY))
    h.loop.jobs = h.controller
    h.step()
    creates = [c[1] for c in h.server.calls if c[0] == "create"]
    assert "Pod/train-worker-1" in creates and "Pod/train-worker-0" not in creates
    assert not any(c.startswith("Pod/other") for c in creates)
    assert h.status("other")["reason"] == "InsufficientCapacity"


def test_each_job_is_parsed_once_per_step() -> None:
    from unittest import mock

    from estuary.api.aijob import AIJob

    h = Harness()
    h.submit("a", workers=1)
    h.submit("b", workers=1)
    h.step()
    with mock.patch.object(AIJob, "model_validate", wraps=AIJob.model_validate) as parse:
        h.step()
    parsed = [c.args[0]["metadata"]["name"] for c in parse.call_args_list]
    assert parsed.count("a") == 1 and parsed.count("b") == 1, parsed


def test_pool_status_counts_what_this_step_admitted() -> None:
    h = Harness()
    h.submit(workers=1)
    h.step()
    pool = h.server.get("computepools", "h800")
    assert pool is not None
    assert (
        pool["status"]["capacity"] == 16 and pool["status"]["allocated"] == 8 and pool["status"]["free"] == 8
    )
