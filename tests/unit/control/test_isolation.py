"""Every object is judged alone: one job's or pool's mistake never stops the step for the others,
and status converges (written once, then left alone). Through the shared fake API; the same
behaviour runs against a real API server in tests/robustness and tests/e2e/test_hardening.py."""

from __future__ import annotations

from typing import Any

from .harness import NS, Harness, node


def _pool(name: str, selector: dict[str, str], vendor: str = "nvidia", **spec: Any) -> dict[str, Any]:
    return {
        "kind": "ComputePool",
        "metadata": {"name": name},
        "spec": {"vendor": vendor, "model": "H800", "nodeSelector": selector, **spec},
    }


def _conditions(h: Harness, pool: str) -> dict[str, dict[str, Any]]:
    raw = h.server.get("computepools", pool)
    assert raw is not None
    return {c["type"]: c for c in (raw.get("status") or {}).get("conditions") or []}


def test_a_job_whose_cpu_is_not_a_quantity_fails_alone_and_others_are_admitted() -> None:
    h = Harness()
    h.submit("bad", workers=1, resources={"cpu": "lots", "memory": "1Gi"})
    h.submit("good", workers=1)
    h.step()
    assert h.phase("bad") == ("Failed", "InvalidSpec")
    assert "spec.resources.cpu: 'lots' is not a Kubernetes quantity" in h.status("bad")["message"]
    assert {c["type"]: c["status"] for c in h.status("bad")["conditions"]} == {"Failed": "True"}
    assert h.phase("good") == ("Admitted", "Admitted")
    assert ("bad", "InvalidSpec") in [(o, r) for o, r, _ in h.server.events]


def test_a_negative_memory_is_refused_naming_the_field() -> None:
    h = Harness()
    h.submit("bad", workers=1, resources={"cpu": "1", "memory": "-1Gi"})
    h.step()
    assert h.phase("bad") == ("Failed", "InvalidSpec")
    assert "spec.resources.memory: '-1Gi' is negative" in h.status("bad")["message"]


def test_a_pool_that_does_not_parse_says_why_and_the_other_pool_still_schedules() -> None:
    h = Harness()
    broken = _pool("broken", {"estuary.dev/model": "H100"}, quotas=[{"nominal": 8}])  # no tenant
    h.server.put(broken)
    h.submit(workers=1)
    h.step()
    ready = _conditions(h, "broken")["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "quotas.0.tenant" in ready["message"]
    assert h.phase() == ("Admitted", "Admitted")
    assert ("broken", "InvalidSpec") in [(o, r) for o, r, _ in h.server.events]


def test_a_pool_of_an_unknown_vendor_is_not_ready_with_what_to_fix() -> None:
    h = Harness()
    h.server.put(_pool("mystery", {"x": "y"}, vendor="acme"))
    h.step()
    ready = _conditions(h, "mystery")["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "UnknownVendor")
    assert "spec.resourceName" in ready["message"]


def test_a_pool_without_nodes_turns_ready_when_its_nodes_arrive_and_the_old_condition_goes() -> None:
    h = Harness(nodes=0)
    h.step()
    ready = _conditions(h, "h800")["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "NoNodes")
    assert "estuary.dev/model=H800" in ready["message"]
    h.server.put(node("n0"))
    h.clock.advance(5)
    h.step()
    ready = _conditions(h, "h800")["Ready"]
    assert (ready["status"], ready["reason"]) == ("True", "Ready")
    assert ready["lastTransitionTime"] == "2027-01-15T08:00:05Z"
    assert h.server.get("computepools", "h800")["status"]["capacity"] == 8  # type: ignore[index]


def test_nothing_is_written_when_nothing_changed() -> None:
    h = Harness()
    h.submit(workers=1)
    h.submit("waits", workers=3)  # never fits: Queued with a reason
    h.step()
    h.set_pods("Running")
    h.step()
    h.server.calls.clear()
    h.clock.advance(30)
    h.step(3, seconds=1)
    assert h.server.calls == []


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    h = Harness(nodes=0)
    h.step()
    first = _conditions(h, "h800")["Ready"]["lastTransitionTime"]
    h.clock.advance(60)
    h.server.patch("computepools", "h800", {"spec": {"nodeSelector": {"zone": "a"}}})  # still no node
    h.step()
    ready = _conditions(h, "h800")["Ready"]
    assert ready["lastTransitionTime"] == first and "zone=a" in ready["message"]
    assert ready["observedGeneration"] == 2


def test_a_pool_deleted_and_created_again_gets_a_status() -> None:
    h = Harness()
    h.step()
    h.server.delete("computepools", "h800")
    h.step()
    h.server.put(_pool("h800", {"estuary.dev/model": "H800"}))
    h.step()
    status = h.server.get("computepools", "h800")["status"]  # type: ignore[index]
    assert status["capacity"] == 16 and status["conditions"][0]["status"] == "True"


def test_a_newer_pool_overlapping_an_older_one_takes_none_of_its_nodes() -> None:
    h = Harness()
    h.clock.advance(10)
    h.server.put(_pool("a-newer", {"estuary.dev/model": "H800"}))  # first by name, created later
    h.submit(workers=2)
    h.step()
    old, new = h.server.get("computepools", "h800"), h.server.get("computepools", "a-newer")
    assert old is not None and new is not None
    assert old["status"]["capacity"] == 16 and new["status"]["capacity"] == 0
    assert h.status()["placement"]["pool"] == "h800"
    ready = _conditions(h, "a-newer")["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "NodesCountedElsewhere")
    overlap = _conditions(h, "h800")["Overlap"]
    assert (
        overlap["status"] == "True"
        and "also selected by pool a-newer and 2 of them count here" in (overlap["message"])
    )
    h.server.delete("computepools", "a-newer")
    h.step()
    assert "Overlap" not in _conditions(h, "h800")


def test_aijob_conditions_follow_the_job_and_name_the_generation() -> None:
    h = Harness()
    h.running(workers=1)
    h.set_pods("Succeeded")
    h.step()
    conditions = {c["type"]: c for c in h.status()["conditions"]}
    assert {t: c["status"] for t, c in conditions.items()} == {
        "Admitted": "True",
        "Running": "False",
        "Succeeded": "True",
    }
    assert all(c["observedGeneration"] == 1 for c in conditions.values())
    assert h.status()["observedGeneration"] == 1


def test_a_spec_change_of_a_queued_job_is_observed_once() -> None:
    h = Harness()
    h.submit(workers=3)
    h.step()
    h.server.patch("aijobs", f"{NS}/train", {"spec": {"priority": 5}})
    h.server.calls.clear()
    h.step(2)
    assert h.status()["observedGeneration"] == 2
    assert len(h.server.calls) == 1


def test_a_pool_whose_tolerations_pods_would_refuse_is_left_out_with_the_field() -> None:
    h = Harness()
    bad = {"key": "estuary.dev/accelerator", "operator": "Exists", "value": "yes"}
    h.server.patch("computepools", "h800", {"spec": {"tolerations": [bad]}})
    h.submit(workers=1)
    h.step()
    ready = _conditions(h, "h800")["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert ready["message"].startswith("spec.tolerations[0].value: must be empty when operator is Exists")
    assert h.phase() == ("Queued", "NoMatchingPool") and h.pods() == []


def test_a_pool_with_an_empty_selector_is_left_out_instead_of_taking_every_node() -> None:
    h = Harness()
    h.server.put(_pool("everything", {}))
    h.submit(workers=2)
    h.step()
    ready = _conditions(h, "everything")["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.nodeSelector" in ready["message"]
    assert h.status()["placement"]["pool"] == "h800"


def test_a_pool_whose_nodes_are_all_not_ready_says_so() -> None:
    h = Harness(nodes=0)
    h.server.put(node("n0", ready=False))
    h.step()
    ready = _conditions(h, "h800")["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "NoReadyNodes",
        "none of its 1 node(s) is Ready",
    )
