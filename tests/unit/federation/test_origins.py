"""Which AIJobs are federation copies: a burst namespace and a signature only a known origin's key
makes. A tenant who writes the origin label gets an ordinary job, and a condition saying so."""

from __future__ import annotations

import base64
import copy
from typing import Any

from estuary.federation import naming, origins

from .world import LEASE, NS, SIGNING_KEY, World, aijob, burst_and_run, cycle, link_spec

RULE = origins.CopyRule(frozenset({"estuary-burst"}), {"hk": SIGNING_KEY})


def _copy(namespace: str = "estuary-burst", origin: str = "hk") -> dict[str, Any]:
    return {
        "metadata": {
            "name": "team-a-big-0123abcd",
            "namespace": namespace,
            "labels": {naming.ORIGIN_CLUSTER: origin},
            "annotations": {
                naming.ORIGIN_CLUSTER: origin,
                naming.ORIGIN_NAMESPACE: "team-a",
                naming.ORIGIN_NAME: "big",
                naming.ORIGIN_UID: "uid-1",
                naming.ORIGIN_ATTEMPT: "1",
            },
        }
    }


def test_a_signed_copy_in_a_burst_namespace_is_a_copy() -> None:
    assert origins.judge(origins.sign(_copy(), SIGNING_KEY), RULE).verdict == origins.Verdict.COPY


def test_an_unlabelled_job_is_ordinary_with_nothing_to_say() -> None:
    plain = {"metadata": {"name": "x", "namespace": "estuary-burst"}}
    assert origins.judge(plain, RULE) == origins.Judgement(origins.Verdict.ORDINARY)


def test_the_label_outside_a_burst_namespace_is_ignored_even_when_signed() -> None:
    signed = origins.sign(_copy(namespace="team-a"), SIGNING_KEY)
    judgement = origins.judge(signed, RULE)
    assert judgement.verdict == origins.Verdict.IGNORED and "not a burst namespace" in judgement.why


def test_a_missing_forged_or_foreign_signature_is_ignored() -> None:
    unsigned = origins.judge(_copy(), RULE)
    assert unsigned.verdict == origins.Verdict.IGNORED and "signature does not match" in unsigned.why
    forged = origins.sign(_copy(), b"someone-elses-key-0123456789")
    assert origins.judge(forged, RULE).verdict == origins.Verdict.IGNORED
    stranger = origins.judge(origins.sign(_copy(origin="sz"), SIGNING_KEY), RULE)
    assert stranger.verdict == origins.Verdict.IGNORED and "no signing key" in stranger.why


def test_a_signature_binds_the_copy_name_namespace_and_origin_attempt() -> None:
    signed = origins.sign(_copy(), SIGNING_KEY)
    for path, value in (
        (("metadata", "name"), "other-name"),
        (("metadata", "annotations", naming.ORIGIN_ATTEMPT), "2"),
        (("metadata", "annotations", naming.ORIGIN_UID), "uid-2"),
    ):
        moved = copy.deepcopy(signed)
        target = moved
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        assert origins.judge(moved, RULE).verdict == origins.Verdict.IGNORED, path


def test_until_the_keys_are_read_a_labelled_job_in_a_burst_namespace_is_neither() -> None:
    unread = origins.CopyRule(frozenset({"estuary-burst"}), None)
    assert origins.judge(_copy(), unread).verdict == origins.Verdict.UNKNOWN


def test_short_keys_are_not_used() -> None:
    assert origins.keys_from_secret({"hk": SIGNING_KEY, "weak": b"short", "blank": b"  "}) == {
        "hk": SIGNING_KEY
    }


# ---- through both operators -------------------------------------------------------------------
def _spoofed(name: str, namespace: str) -> dict[str, Any]:
    job = aijob(name, workers=1)
    job["metadata"]["namespace"] = namespace
    job["metadata"]["labels"] = {naming.ORIGIN_CLUSTER: "hk"}
    job["metadata"]["annotations"][naming.ORIGIN_CLUSTER] = "hk"
    job["metadata"]["annotations"][naming.LEASE_SECONDS] = "30"
    return job


def test_a_tenant_job_with_the_origin_label_runs_as_an_ordinary_job_and_is_told_so(world: World) -> None:
    clock, _, partner = world
    partner.server.put(_spoofed("sneaky", NS))
    partner.server.put(_spoofed("squatter", "estuary-burst"))
    for _ in range(2):
        partner.step()
    partner.server.set_pods("Running")
    for _ in range(3 * LEASE):  # well past any lease: nothing stops them
        partner.federation.observer.poll()
        partner.step()
        clock.advance(1)
    for ns, name, why in (
        (NS, "sneaky", "not a burst namespace"),
        ("estuary-burst", "squatter", "signature does not match"),
    ):
        status = partner.status(ns, name)
        assert status["phase"] == "Running", status
        [cond] = [c for c in status["conditions"] if c["type"] == origins.COPY_CONDITION]
        assert cond["status"] == "False" and cond["reason"] == origins.IGNORED and why in cond["message"]
    assert sum(1 for e in partner.server.events if e[1] == origins.IGNORED) == 2  # said once each


def test_the_copy_a_known_origin_sends_is_signed_and_checked_as_a_copy(world: World) -> None:
    clock, home, partner = world
    sent = burst_and_run(clock, home, partner)
    assert sent["metadata"]["annotations"][origins.SIGNATURE].startswith("v1:")
    status = partner.status(sent["metadata"]["namespace"], sent["metadata"]["name"])
    assert status.get("lease", {}).get("observedAt")  # the lease rules apply to it
    assert not [c for c in status.get("conditions") or [] if c["type"] == origins.COPY_CONDITION]


def test_a_partner_without_this_origins_key_runs_nothing_as_a_copy(world: World) -> None:
    clock, home, partner = world
    partner.server.delete("secrets", "estuary-system/estuary-origin-keys")
    partner.federation.expiry.keys._read_at = None  # re-read now rather than in 30 s
    home.server.put(aijob("big"))
    for _ in range(4):
        cycle(clock, home, partner)
    [sent] = partner.server.items("aijobs")
    status = partner.status(sent["metadata"]["namespace"], sent["metadata"]["name"])
    [cond] = [c for c in status["conditions"] if c["type"] == origins.COPY_CONDITION]
    assert "no signing key is configured here for origin cluster 'hk'" in cond["message"]


def test_a_link_without_a_signing_key_is_not_ready_and_sends_nothing(world: World) -> None:
    clock, home, partner = world
    spec = link_spec()
    del spec["signingKeySecretRef"]
    home.server.patch("federationlinks", "estuary-system/gz", {"spec": {**spec, "signingKeySecretRef": None}})
    home.server.put(aijob("big"))
    for _ in range(3):
        cycle(clock, home, partner)
    ready = next(c for c in home.link_status("gz")["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "BadCredentials" and "signingKeySecretRef" in ready["message"]
    assert partner.server.items("aijobs") == []
    key = base64.b64encode(SIGNING_KEY).decode()
    assert key not in repr(home.link_status("gz"))


def test_a_link_may_ask_the_partner_to_fence_the_copys_workers(world: World) -> None:
    clock, home, partner = world
    home.server.patch("federationlinks", "estuary-system/gz", {"spec": {"fencing": True}})
    sent = burst_and_run(clock, home, partner)
    pods = [p for p in partner.server.items("pods") if p["metadata"]["namespace"] == "estuary-burst"]
    assert len(pods) == 4
    for pod in pods:
        spec = pod["spec"]
        assert spec["shareProcessNamespace"] is True and spec["initContainers"][-1]["name"] == "fence"
        args = spec["initContainers"][-1]["args"]
        assert f"aijob/{sent['metadata']['name']}" in args and args[args.index("--lease-seconds") + 1] == "30"
        assert "affinity" in spec  # still pinned by the partner's own scheduler


def test_the_fence_annotation_outside_a_burst_namespace_changes_nothing(world: World) -> None:
    _, _, partner = world
    job = _spoofed("wants-fence", NS)
    job["metadata"]["annotations"]["estuary.dev/fence"] = "true"
    partner.server.put(job)
    for _ in range(2):
        partner.step()
    [pod] = [p for p in partner.server.items("pods") if p["metadata"]["namespace"] == NS]
    assert "initContainers" not in pod["spec"] and "shareProcessNamespace" not in pod["spec"]
