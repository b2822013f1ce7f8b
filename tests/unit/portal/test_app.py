"""The portal's HTTP behaviour that needs no API server: sign-in redirects, CSRF refusals, headers.

Everything that reads the cluster is tested in a real browser against a real API server
(tests/e2e/test_portal*.py).
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from estuary.portal.app import create_app
from estuary.portal.pages_auth import safe_next
from estuary.portal.settings import ApiServer, PortalSettings

# An API server that cannot be reached: any test that got as far as calling it would see a 502.
SETTINGS = PortalSettings(api=ApiServer(host="https://127.0.0.1:9"), secret=b"k" * 32, secure_cookies=False)


@pytest.fixture
def http() -> TestClient:
    return TestClient(create_app(SETTINGS), follow_redirects=False)


def test_a_page_without_a_token_sends_the_browser_to_sign_in(http: TestClient) -> None:
    response = http.get("/jobs/physics/train")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/jobs/physics/train"


def test_pages_forbid_framing_and_caching(http: TestClient) -> None:
    response = http.get("/login")
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert 'name="csrf_token"' in response.text


@pytest.mark.parametrize("path", ["/logout", "/login"])
def test_a_post_without_the_forms_csrf_token_is_refused(http: TestClient, path: str) -> None:
    response = http.post(path, data={"token": "pasted-token"}, headers={"Authorization": "Bearer proxied"})
    assert response.status_code in (400, 403)
    assert "pasted-token" not in response.text


def test_the_session_cookie_is_http_only_and_same_site() -> None:
    secure = PortalSettings(api=SETTINGS.api, secret=SETTINGS.secret, secure_cookies=True)
    cookie = TestClient(create_app(secure)).get("/login").headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower() and "secure" in cookie.lower()


def test_sign_in_redirects_only_to_paths_on_this_site() -> None:
    assert safe_next("/jobs/a/b") == "/jobs/a/b"
    for hostile in ("https://evil.example", "//evil.example/x", "/\\evil", None, ""):
        assert safe_next(hostile) == "/jobs"


def test_an_unreachable_api_server_is_a_page_not_a_traceback(http: TestClient) -> None:
    response = http.get("/jobs", headers={"Authorization": "Bearer some-token"})
    assert response.status_code == 502
    assert "cannot be reached" in response.text
    assert "some-token" not in response.text
