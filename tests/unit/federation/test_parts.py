"""Copy names, spend accounting, the copy's manifest, and what partner errors may say."""

from __future__ import annotations

import json
import re

import pytest
import urllib3
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException
from tests.fakeapi import FakeApiServer

from estuary.api.aijob import AIJob
from estuary.federation import naming, remote, spend, spendbook
from estuary.federation.partner import (
    BAD_CREDENTIALS,
    REFUSED,
    UNREACHABLE,
    PartnerError,
    classify,
    parse_kubeconfig,
    scrub,
)
from estuary.federation.spendbook import Charge, SpendBook

DNS = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


# ---- naming --------------------------------------------------------------------------------------
def test_remote_name_is_deterministic_per_attempt_and_readable() -> None:
    a = naming.remote_name("hk", "team-a", "train", "uid-1", 1)
    assert a == naming.remote_name("hk", "team-a", "train", "uid-1", 1)
    assert a.startswith("team-a-train-") and len(a) == len("team-a-train-") + 8
    assert naming.remote_name("hk", "team-a", "train", "uid-1", 2) != a  # a new attempt, a new copy
    assert naming.remote_name("gz", "team-a", "train", "uid-1", 1) != a  # another origin
    assert naming.remote_name("hk", "team-a", "train", "uid-2", 1) != a  # a re-created job


@given(
    origin=st.text(max_size=30),
    namespace=st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True),
    name=st.from_regex(r"[a-z]([-a-z0-9]{0,48}[a-z0-9])?", fullmatch=True),
    attempt=st.integers(0, 10**6),
)
def test_property_remote_name_is_a_short_dns_label_starting_with_a_letter(
    origin: str, namespace: str, name: str, attempt: int
) -> None:
    out = naming.remote_name(origin, namespace, name, "u", attempt)
    assert len(out) <= 50 and DNS.match(out), out


@given(st.text(max_size=100))
def test_property_label_values_are_valid(value: str) -> None:
    out = naming.label_value(value)
    assert len(out) <= 63 and re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", out)


# ---- spend ---------------------------------------------------------------------------------------
def test_cost_prefers_the_model_then_the_vendor_then_zero() -> None:
    costs = [("nvidia", None, 2.0), ("nvidia", "H800", 3.5), ("huawei", None, 1.0)]
    assert spend.cost_of(costs, "nvidia", "h800") == 3.5
    assert spend.cost_of(costs, "nvidia", "A800") == 2.0
    assert spend.cost_of(costs, "hygon", "K100") == 0.0


def test_accelerator_hours_and_charging_once_per_attempt() -> None:
    hours = spend.accelerator_hours(1000.0, 1000.0 + 1800, 16)
    assert hours == 8.0
    assert spend.accelerator_hours(5.0, 1.0, 8) == 0.0
    server = FakeApiServer()
    book = SpendBook(server, "estuary-system")
    now = 1_800_000_000.0
    assert book.charge("gz", "ns/j/u/1", Charge("physics", hours, 24.0), now)
    assert not book.charge("gz", "ns/j/u/1", Charge("physics", hours, 24.0), now + 60)  # counted once
    assert book.charge("gz", "ns/j/u/2", Charge("physics", 1.0, 3.0), now)
    assert book.charge("gz", "ns/k/u/1", Charge("bio", 2.0, 2.0), now + 40 * 86400)  # next month
    assert book.spent("gz") == {"bio": 2.0, "physics": 27.0} and book.spent("other") == {}
    fresh = SpendBook(server, "estuary-system")  # a restarted operator lists the records again
    assert fresh.totals("gz") == book.totals("gz")
    assert not fresh.charge("gz", "ns/j/u/2", Charge("physics", 1.0, 3.0), now)
    names = sorted(cm["metadata"]["name"] for cm in server.items("configmaps"))
    assert names == ["estuary-spend-gz-2027-01", "estuary-spend-gz-2027-02"]


def test_a_full_spend_record_continues_in_the_next_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spendbook, "MAX_RECORDS", 5)
    server = FakeApiServer()
    book = SpendBook(server, "estuary-system")
    for i in range(6):
        book.charge("gz", f"ns/j/u/{i}", Charge("physics", 1.0, 1.0), 1_800_000_000.0)
    sizes = {cm["metadata"]["name"]: len(cm["data"]) for cm in server.items("configmaps")}
    assert sizes == {"estuary-spend-gz-2027-01": 5, "estuary-spend-gz-2027-01-2": 1}
    assert book.spent("gz") == {"physics": 6.0}


def test_spend_that_cannot_be_read_is_never_taken_for_none() -> None:
    server = FakeApiServer()
    server.down = True
    with pytest.raises(ConnectionError):
        SpendBook(server, "estuary-system").spent("gz")


# ---- the copy ------------------------------------------------------------------------------------
def _job(**spec: object) -> AIJob:
    return AIJob.model_validate(
        {
            "metadata": {
                "name": "train",
                "namespace": "team-a",
                "uid": "uid-1",
                "annotations": {"estuary.dev/sim-duration-ms": "3000", "other": "x"},
            },
            "spec": {
                "accelerators": [{"vendor": "nvidia", "model": "H800", "image": "img"}],
                "burst": {"enabled": True, "afterSeconds": 5},
                **spec,
            },
        }
    )


def test_the_copy_cannot_burst_again_keeps_residency_and_carries_its_origin() -> None:
    out = remote.manifest(
        _job(residency="mainland"),
        origin="hk-campus",
        link="gz",
        link_uid="l1",
        jurisdiction="mainland",
        allowed_residency=["any", "mainland"],
        namespace="estuary-burst",
        name="team-a-train-0123abcd",
        attempt=3,
        lease_seconds=30,
        token="n.0",
    )
    assert out["spec"]["burst"] == {"enabled": False} and out["spec"]["residency"] == "mainland"
    notes = out["metadata"]["annotations"]
    assert notes["estuary.dev/sim-duration-ms"] == "3000" and "other" not in notes
    assert notes[naming.ORIGIN_UID] == "uid-1" and notes[naming.ORIGIN_ATTEMPT] == "3"
    assert notes[naming.LEASE_SECONDS] == "30" and notes[naming.LEASE_RENEW] == "n.0"
    assert out["metadata"]["labels"][naming.ORIGIN_CLUSTER] == "hk-campus"
    assert remote.is_labelled(out)
    AIJob.model_validate(out)  # a valid AIJob for the partner


@pytest.mark.parametrize(
    ("residency", "jurisdiction", "allowed"),
    [("hk", "mainland", ["any", "mainland"]), ("any", "mainland", ["mainland"]), ("hk", "hk", ["any"])],
)
def test_no_copy_is_ever_built_for_a_forbidden_partner(
    residency: str, jurisdiction: str, allowed: list[str]
) -> None:
    with pytest.raises(remote.ResidencyViolation):
        remote.manifest(
            _job(residency=residency),
            origin="o",
            link="l",
            link_uid="u",
            jurisdiction=jurisdiction,
            allowed_residency=allowed,
            namespace="n",
            name="x",
            attempt=1,
            lease_seconds=30,
            token="t",
        )


def test_view_reads_phase_placement_and_origin() -> None:
    copy = remote.view(
        {
            "metadata": {
                "name": "c",
                "uid": "u2",
                "annotations": {naming.ORIGIN_UID: "u1", naming.ORIGIN_ATTEMPT: "2"},
            },
            "spec": {"suspend": True},
            "status": {
                "phase": "Running",
                "placement": {"pool": "h800", "nodes": ["n0"]},
                "startTime": "2026-01-01T00:00:00Z",
            },
        }
    )
    assert (copy.uid, copy.origin_uid, copy.origin_attempt, copy.phase) == ("u2", "u1", 2, "Running")
    assert copy.placement["pool"] == "h800" and copy.suspend and not copy.finished


# ---- partner errors and kubeconfigs --------------------------------------------------------------
SECRET = "s3cr3t-t0ken-value"


def _api_error(status: int, message: str) -> ApiException:
    err = ApiException(status=status, reason="x")
    err.body = json.dumps({"kind": "Status", "message": message})
    return err


@pytest.mark.parametrize(
    ("exc", "kind", "maybe"),
    [
        (_api_error(401, "Unauthorized"), BAD_CREDENTIALS, False),
        (_api_error(403, 'User "x" cannot list'), BAD_CREDENTIALS, False),
        (_api_error(404, "not found"), REFUSED, False),
        (_api_error(422, "spec.workers: Invalid value"), REFUSED, False),
        (_api_error(500, "etcd timeout"), UNREACHABLE, True),
        (ApiException(status=0, reason=f"SSLError\nhttps://user:{SECRET}@10.0.0.1/api"), UNREACHABLE, False),
        (
            urllib3.exceptions.NewConnectionError(
                urllib3.connection.HTTPConnection("h"), f"https://x:{SECRET}@h refused"
            ),
            UNREACHABLE,
            False,
        ),
        (
            urllib3.exceptions.ReadTimeoutError(
                urllib3.HTTPConnectionPool("h"), f"/apis?token={SECRET}", "read timed out"
            ),
            UNREACHABLE,
            True,
        ),
        (urllib3.exceptions.ProtocolError(f"reset {SECRET}"), UNREACHABLE, True),
    ],
)
def test_classify_names_the_kind_and_never_repeats_the_exception_text(
    exc: Exception, kind: str, maybe: bool
) -> None:
    err = classify(exc, "probing")
    assert (err.kind, err.maybe_applied) == (kind, maybe)
    assert SECRET not in str(err) and "https://" not in str(err)


def test_a_partner_message_is_scrubbed_of_urls_and_tokens() -> None:
    text = scrub(f"failed calling webhook https://admin:{SECRET}@hook.svc/validate: Bearer {SECRET}")
    assert SECRET not in text and "<url>" in text


def test_kubeconfigs_that_run_programs_or_read_files_are_refused() -> None:
    base = {
        "clusters": [{"name": "c", "cluster": {"server": "https://x"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    ok = {**base, "users": [{"name": "u", "user": {"token": SECRET}}]}
    assert parse_kubeconfig(json.dumps(ok), "Secret s") == ok
    for user in (
        {"exec": {"command": "sh"}},
        {"auth-provider": {"name": "gcp"}},
        {"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"},
        {"client-certificate": "/etc/cert"},
    ):
        with pytest.raises(PartnerError) as info:
            parse_kubeconfig(json.dumps({**base, "users": [{"name": "u", "user": user}]}), "Secret s")
        assert info.value.kind == BAD_CREDENTIALS
    for raw in (b"", b"::: not yaml", b"just a string"):
        with pytest.raises(PartnerError) as info:
            parse_kubeconfig(raw, "Secret s")
        assert info.value.kind == BAD_CREDENTIALS and SECRET not in str(info.value)
