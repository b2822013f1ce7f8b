"""Two clusters, each a real operator loop over an in-memory API server, stepped by hand:
bursting, mirroring, spend, and every path of the exactly-once lease."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from .world import LEASE, MARGIN, NS, Cluster, World, aijob, burst_and_run, cycle, kubeconfig


def copy_status(partner: Cluster) -> dict[str, Any]:
    [copy] = partner.server.items("aijobs")
    return dict(copy.get("status") or {})


def test_a_job_no_local_pool_fits_bursts_runs_and_succeeds_there_and_spend_is_counted(world: World) -> None:
    clock, home, partner = world
    copy = burst_and_run(clock, home, partner)
    status = home.status(NS, "big")
    assert status["placement"]["cluster"] == "gz" and status["placement"]["link"] == "gz"
    assert status["placement"]["pool"] == "h800" and len(status["placement"]["nodes"]) == 4
    assert status["remote"]["uid"] == copy["metadata"]["uid"] and status["attempt"] == 1
    assert copy["spec"]["burst"]["enabled"] is False
    assert copy["metadata"]["annotations"]["estuary.dev/sim-duration-ms"] == "5000"
    link = home.link_status("gz")
    assert link["reachable"] and link["jobs"] == [f"{NS}/big"]
    assert {c["vendor"]: c["capacity"] for c in link["capacity"]} == {"nvidia": 32}
    for _ in range(360):  # half an hour of heartbeats
        cycle(clock, home, partner, seconds=5.0)
    partner.server.set_pods("Succeeded")
    cycle(clock, home, partner)
    cycle(clock, home, partner)
    status = home.status(NS, "big")
    assert status["phase"] == "Succeeded" and status["completionTime"]
    # Federation's writes pass the same StatusWriter: the run is recorded at home (at the link) and,
    # for the partner's own books, on the copy.
    [(home_run, copy_run)] = zip(status["runs"], copy_status(partner)["runs"], strict=True)
    assert (home_run["cluster"], home_run["outcome"], home_run["accelerators"]) == ("gz", "Succeeded", 32)
    assert (copy_run["cluster"], copy_run["pool"], copy_run["outcome"]) == ("local", "h800", "Succeeded")
    link = home.link_status("gz")
    [spent] = link["spend"]
    assert spent["tenant"] == "physics" and spent["acceleratorHours"] == pytest.approx(16.0, rel=0.02)
    assert spent["spend"] == pytest.approx(32.0, rel=0.02) and link["jobs"] == []
    cycle(clock, home, partner)
    [book] = home.server.items("configmaps")  # the spend book: one record, charged once
    assert book["metadata"]["name"].startswith("estuary-spend-gz-") and len(book["data"]) == 1
    assert home.link_status("gz")["spend"] == link["spend"] and "charged" not in home.link_status("gz")


def test_spend_survives_the_loss_of_the_links_status(world: World) -> None:
    clock, home, partner = world
    burst_and_run(clock, home, partner)
    for _ in range(12):
        cycle(clock, home, partner, seconds=5.0)
    partner.server.set_pods("Succeeded")
    for _ in range(3):
        cycle(clock, home, partner)
    spent = home.link_status("gz")["spend"]
    assert spent and spent[0]["spend"] > 0
    link = home.server.get("federationlinks", "estuary-system/gz")
    assert link is not None
    home.server.put({**link, "status": {}})  # a backup restored without status
    cycle(clock, home, partner)
    assert home.link_status("gz")["spend"] == spent


def test_residency_keeps_the_job_home_with_the_reason(world: World) -> None:
    clock, home, partner = world
    home.server.put(aijob("local-data", residency="hk"))
    for _ in range(3):
        cycle(clock, home, partner)
    status = home.status(NS, "local-data")
    assert status["phase"] == "Queued" and "placement" not in status
    burst = next(c for c in status["conditions"] if c["type"] == "Burst")
    assert burst["status"] == "False" and burst["reason"] == "ResidencyForbids"
    assert burst["message"] == "may not burst: data must stay in hk; link gz is mainland"
    assert partner.server.items("aijobs") == []
    assert status["reason"] == "NeverFits"  # the waiting message says both: why here, why not there
    assert status["message"].endswith("; may not burst: data must stay in hk; link gz is mainland")


def test_a_lost_partner_is_given_up_only_after_lease_and_margin_and_its_copy_never_resumes(
    world: World,
) -> None:
    clock, home, partner = world
    old = burst_and_run(clock, home, partner)
    partner.server.down = True  # the partner's API server is gone, for everyone
    lost_at = clock.wall()
    while clock.wall() - lost_at < LEASE + MARGIN - 6:
        cycle(clock, home, partner, seconds=1.0)
        assert home.status(NS, "big")["phase"] == "Running"
    for _ in range(12):
        cycle(clock, home, partner, seconds=1.0)
    status = home.status(NS, "big")
    assert status["phase"] == "Queued" and "placement" not in status and "remote" not in status
    running = next(c for c in status["conditions"] if c["type"] == "Running")
    assert running["reason"] == "PartnerLost" and "Unreachable" in running["message"]
    given_up = [e for e in home.server.events if e[1] == "PartnerLost"]
    assert len(given_up) == 1 and f"{LEASE}s + {MARGIN:g}s margin" in given_up[0][2]
    # back: the old copy's lease ran out on the partner's clock; it is stopped before anything
    partner.server.down = False
    partner.federation.observer.poll()
    partner.step()
    stopped = partner.status(old["metadata"]["namespace"], old["metadata"]["name"])
    assert stopped["phase"] == "Failed" and stopped["reason"] == "LeaseExpired"
    assert partner.server.items("pods") == []
    # the origin collects it as an orphan, and only once it is gone sends the job again
    home.step()
    home.heartbeat("gz")
    assert partner.server.items("aijobs") == []
    home.step()
    assert "placement" not in home.status(NS, "big")  # the last listing still showed the old copy
    for _ in range(2):
        home.heartbeat("gz")
        home.step()
    home.heartbeat("gz")
    copies = partner.server.items("aijobs")
    assert [c["metadata"]["name"] for c in copies] != [old["metadata"]["name"]]
    assert all(c["metadata"]["annotations"]["estuary.dev/origin-attempt"] == "2" for c in copies)
    assert home.status(NS, "big")["attempt"] == 2


def test_a_renewal_that_landed_without_an_answer_still_moves_the_anchor(world: World) -> None:
    clock, home, partner = world
    burst_and_run(clock, home, partner)
    runtime = home.federation.runtimes["gz"]
    name = home.status(NS, "big")["remote"]["name"]
    before = runtime.tracks[name].anchor
    clock.advance(10)
    home.partners["last"].fail_next_renewal_after_commit = True
    home.heartbeat("gz")
    assert runtime.tracks[name].anchor == clock.mono() > before


def test_no_give_up_while_a_renewal_is_in_flight_and_no_renewal_after_a_give_up(world: World) -> None:
    clock, home, partner = world
    burst_and_run(clock, home, partner)
    runtime = home.federation.runtimes["gz"]
    name = home.status(NS, "big")["remote"]["name"]
    clock.advance(LEASE + MARGIN + 1)
    runtime.tracks[name].in_flight = True  # the worker is sending a renewal right now
    assert not runtime.try_give_up(name, LEASE, 0)
    runtime.tracks[name].in_flight = False
    assert runtime.try_give_up(name, LEASE, 0)
    calls = home.partners["last"].log
    calls.clear()
    home.heartbeat("gz")  # the plan still names the copy: it is not renewed, and it is deleted
    assert "patch_copy" not in calls and "delete_copy" in calls


def test_the_partner_stops_a_copy_when_the_origin_stops_renewing_and_the_origin_runs_it_again(
    world: World,
) -> None:
    clock, home, partner = world
    old = burst_and_run(clock, home, partner)
    for _ in range(int(LEASE / 2) + 2):  # the origin operator is down: no heartbeats, no steps
        partner.federation.observer.poll()
        partner.step()
        clock.advance(2)
    stopped = partner.status(old["metadata"]["namespace"], old["metadata"]["name"])
    assert stopped["reason"] == "LeaseExpired" and stopped["phase"] == "Failed"
    assert stopped["lease"]["observedAt"]
    cycle(clock, home, partner)  # the origin is back
    status = home.status(NS, "big")
    assert status["phase"] == "Queued" and status["reason"] == "LeaseExpired" and status["retryAfter"]


def test_a_partner_operator_restart_does_not_extend_the_lease(world: World) -> None:
    from estuary.federation.observer import LeaseObserver

    clock, home, partner = world
    old = burst_and_run(clock, home, partner)
    key = f"{old['metadata']['namespace']}/{old['metadata']['name']}"
    credited = partner.status(*key.split("/"))["lease"]["observedAt"]
    # partner operator restarts; meanwhile the origin renewed once, then went silent
    home.heartbeat("gz")
    partner.federation.expiry.observer = LeaseObserver(partner.server, clock.wall, 2.0)
    for _ in range(LEASE):
        partner.federation.observer.poll()
        partner.step()
        clock.advance(1)
    status = partner.status(*key.split("/"))
    assert status["lease"]["observedAt"] == credited  # the unseen renewal was not credited late
    assert status["reason"] == "LeaseExpired"


def test_deleting_the_local_job_deletes_the_copy(world: World) -> None:
    clock, home, partner = world
    burst_and_run(clock, home, partner)
    home.server.delete("aijobs", f"{NS}/big")
    cycle(clock, home, partner)
    cycle(clock, home, partner)
    assert partner.server.items("aijobs") == [] and partner.server.items("pods") == []


def test_bad_credentials_mark_the_link_and_explain_the_job_without_leaking_them(world: World) -> None:
    clock, home, partner = world
    home.server.patch(
        "secrets",
        "estuary-system/gz-kubeconfig",
        {"data": {"kubeconfig": base64.b64encode(kubeconfig("wrong-s3cret").encode()).decode()}},
    )
    home.server.put(aijob("big"))
    for _ in range(3):
        cycle(clock, home, partner)
    link = home.link_status("gz")
    ready = next(c for c in link["conditions"] if c["type"] == "Ready")
    assert not link["reachable"] and ready["status"] == "False" and ready["reason"] == "BadCredentials"
    status = home.status(NS, "big")
    burst = next(c for c in status["conditions"] if c["type"] == "Burst")
    assert burst["reason"] == "LinkNotReady" and "BadCredentials" in burst["message"]
    assert "wrong-s3cret" not in repr(link) + repr(status) + repr(home.server.events)


def test_a_job_placed_on_a_link_whose_credentials_go_bad_is_requeued_and_not_sent_back(world: World) -> None:
    clock, home, partner = world
    burst_and_run(clock, home, partner)
    home.server.patch(
        "secrets",
        "estuary-system/gz-kubeconfig",
        {"data": {"kubeconfig": base64.b64encode(kubeconfig("revoked").encode()).decode()}},
    )
    for _ in range(int((LEASE + MARGIN) / 2) + 3):
        cycle(clock, home, partner)
    status = home.status(NS, "big")
    assert status["phase"] == "Queued"
    assert any(e[1] == "PartnerLost" and "BadCredentials" in e[2] for e in home.server.events)
    for _ in range(5):
        cycle(clock, home, partner)
    assert "placement" not in home.status(NS, "big")  # not back to the unhealthy link


def test_budget_spent_stops_bursting_for_that_tenant(world: World) -> None:
    clock, home, partner = world
    home.server.patch(
        "federationlinks",
        "estuary-system/gz",
        {"status": {"spend": [{"tenant": "physics", "acceleratorHours": 500, "spend": 1000}]}},
        subresource="status",
    )
    home.server.put(aijob("big"))
    for _ in range(3):
        cycle(clock, home, partner)
    burst = next(c for c in home.status(NS, "big")["conditions"] if c["type"] == "Burst")
    assert burst["reason"] == "BudgetExhausted" and "1000.00 of its 1000.00" in burst["message"]


def test_link_limits_hold_at_the_partner(world: World) -> None:
    clock, home, partner = world
    home.server.patch("federationlinks", "estuary-system/gz", {"spec": {"limits": {"maxJobs": 1}}})
    home.server.put(aijob("one", workers=4))
    home.server.put(aijob("two", workers=4))
    for _ in range(4):
        cycle(clock, home, partner)
    placed = [n for n in ("one", "two") if home.status(NS, n).get("placement")]
    assert len(placed) == 1 and len(partner.server.items("aijobs")) == 1


def test_a_partner_that_rejects_the_job_gets_a_refused_condition_and_the_job_comes_home(world: World) -> None:
    from estuary.federation.partner import PartnerError

    clock, home, partner = world
    home.server.put(aijob("big"))
    home.step()
    home.heartbeat("gz")

    home.partners["last"].failures["create_copy"] = PartnerError(
        "Refused", "creating the job at the partner: admission webhook denied it", 403
    )
    for _ in range(3):
        cycle(clock, home, partner)
    status = home.status(NS, "big")
    assert "placement" not in status and status["phase"] == "Queued"
    assert any(e[1] == "BurstRefused" and "webhook denied" in e[2] for e in home.server.events)
    link = home.link_status("gz")
    accepting = next(c for c in link["conditions"] if c["type"] == "Accepting")
    assert accepting["status"] == "False" and accepting["reason"] == "Refused"
    burst = next(c for c in status["conditions"] if c["type"] == "Burst")
    assert burst["reason"] == "RefusedRecently"  # not sent again at once
    assert partner.server.items("aijobs") == []


def test_a_partner_without_estuary_is_refused(world: World) -> None:
    from estuary.federation.partner import PartnerError

    clock, home, partner = world
    home.step()
    home.heartbeat("gz")

    home.partners["last"].failures["list_pools"] = PartnerError(
        "Refused",
        "the partner has no ComputePool CRD (estuary.dev/v1alpha1): is Estuary installed there?",
        404,
    )
    cycle(clock, home, partner)
    link = home.link_status("gz")
    ready = next(c for c in link["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "Refused" and "no ComputePool CRD" in ready["message"]


def test_suspending_a_burst_job_suspends_its_copy_and_resuming_resumes_it(world: World) -> None:
    clock, home, partner = world
    copy = burst_and_run(clock, home, partner)
    key = (copy["metadata"]["namespace"], copy["metadata"]["name"])
    home.server.patch("aijobs", f"{NS}/big", {"spec": {"suspend": True}})
    for _ in range(3):
        cycle(clock, home, partner)
    assert home.status(NS, "big")["phase"] == "Suspended"
    assert partner.status(*key)["phase"] == "Suspended" and partner.server.items("pods") == []
    home.server.patch("aijobs", f"{NS}/big", {"spec": {"suspend": False}})
    for _ in range(3):
        cycle(clock, home, partner)
    partner.server.set_pods("Running")
    for _ in range(2):
        cycle(clock, home, partner)
    assert partner.status(*key)["phase"] == "Running"
    assert home.status(NS, "big")["phase"] == "Running"
