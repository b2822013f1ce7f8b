"""Which token a request speaks with, and how a pasted one is kept."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from estuary.portal import identity
from estuary.portal.settings import ApiServer, PortalSettings

SETTINGS = PortalSettings(api=ApiServer(host="https://k8s:6443"), secret=b"s" * 32)


def request(headers: dict[str, str], session: dict[str, Any] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "headers": raw, "session": session or {}})


def test_authorization_header_wins_then_forwarded_token_then_the_session() -> None:
    sealer = identity.Sealer(SETTINGS)
    session = {"token": sealer.seal("from-session")}
    both = {"Authorization": "Bearer from-proxy", "X-Forwarded-Access-Token": "forwarded"}
    assert identity.token_of(request(both, session), sealer) == "from-proxy"
    forwarded = request({"X-Forwarded-Access-Token": "forwarded"}, session)
    assert identity.token_of(forwarded, sealer) == "forwarded"
    assert identity.token_of(request({}, session), sealer) == "from-session"
    assert identity.token_of(request({"Authorization": "Basic dTpw"}, session), sealer) == "from-session"


def test_no_token_means_not_signed_in() -> None:
    sealer = identity.Sealer(SETTINGS)
    with pytest.raises(identity.NotSignedIn):
        identity.token_of(request({}), sealer)
    with pytest.raises(identity.NotSignedIn):
        identity.token_of(request({"Authorization": "Bearer two words"}), sealer)


def test_the_session_holds_the_token_encrypted_and_refuses_another_secret() -> None:
    sealed = identity.Sealer(SETTINGS).seal("eyJhbGciOi.secret-token")
    assert "secret-token" not in sealed
    other = PortalSettings(api=SETTINGS.api, secret=b"o" * 32)
    assert identity.Sealer(other).unseal(sealed) is None
    assert identity.Sealer(SETTINGS).unseal(sealed[:-2] + "xx") is None
    assert identity.Sealer(SETTINGS).unseal(sealed) == "eyJhbGciOi.secret-token"


def test_plausible_tokens_are_one_printable_word() -> None:
    assert identity.plausible_token("abc.def-ghi_jkl")
    for bad in ("", "two words", "line\nbreak", "ü", "x" * (identity.MAX_TOKEN_LENGTH + 1)):
        assert not identity.plausible_token(bad), bad


def test_service_account_users_have_a_namespace() -> None:
    assert identity.Identity("system:serviceaccount:physics:alice").service_account_namespace == "physics"
    assert identity.Identity("alice@uni.edu").service_account_namespace is None


def test_the_user_client_carries_only_the_users_token() -> None:
    api = ApiServer(host="https://k8s:6443", ca_file="/ca.crt")
    with identity.user_client(api, "user-token") as client:
        conf = client.configuration
        assert conf.host == "https://k8s:6443" and conf.ssl_ca_cert == "/ca.crt"
        assert conf.get_api_key_with_prefix("authorization") == "Bearer user-token"
        assert conf.cert_file is None and conf.key_file is None
