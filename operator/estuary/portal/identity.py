"""Who the user is, as far as the API server is concerned: a bearer token and nothing else.

A request may bring its token three ways, tried in this order:
1. `Authorization: Bearer <token>`, as an OIDC reverse proxy (oauth2-proxy with
   `--pass-authorization-header`) sets it;
2. `X-Forwarded-Access-Token: <token>`, as oauth2-proxy's `--pass-access-token` sets it;
3. the portal's own session cookie, holding the token the user pasted on the login page, encrypted.

The portal never trusts a user *name* header (`X-Forwarded-User`): a name proves nothing, a token is
checked by the API server on every call. Tokens are never logged, never put in a URL, never shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from kubernetes import client
from starlette.requests import Request

from estuary.portal.settings import ApiServer, PortalSettings

FORWARDED_TOKEN_HEADER = "x-forwarded-access-token"
MAX_TOKEN_LENGTH = 16 * 1024  # OIDC ID tokens with many groups run to several kilobytes


class NotSignedIn(Exception):
    """The request carries no usable token: the user must sign in."""


class TokenRefused(Exception):
    """The API server answered 401: the token is expired, revoked or not a token at all."""


@dataclass(frozen=True)
class Identity:
    """The user as the API server sees them (SelfSubjectReview)."""

    username: str
    groups: tuple[str, ...] = ()

    @property
    def service_account_namespace(self) -> str | None:
        """`system:serviceaccount:<ns>:<name>` users live in a namespace they usually may use."""
        parts = self.username.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            return parts[2]
        return None


def plausible_token(value: str) -> bool:
    """A bearer token is one printable word; anything else is refused before it reaches the API."""
    return 0 < len(value) <= MAX_TOKEN_LENGTH and value.isascii() and value.isprintable() and " " not in value


class Sealer:
    """Encrypts the pasted token for the session cookie (which is only signed, not encrypted)."""

    def __init__(self, settings: PortalSettings) -> None:
        import base64

        self._fernet = Fernet(base64.urlsafe_b64encode(settings.derived_key("session-token")))
        self._ttl = int(settings.session_hours * 3600)

    def seal(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def unseal(self, sealed: str) -> str | None:
        try:
            return self._fernet.decrypt(sealed.encode(), ttl=self._ttl).decode()
        except (InvalidToken, ValueError):
            return None


def token_of(request: Request, sealer: Sealer) -> str:
    """The request's bearer token, by the precedence in the module docstring; NotSignedIn if none."""
    authorization = request.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and plausible_token(credentials.strip()):
        return credentials.strip()
    forwarded = request.headers.get(FORWARDED_TOKEN_HEADER, "").strip()
    if plausible_token(forwarded):
        return forwarded
    sealed = request.session.get("token")
    token = sealer.unseal(sealed) if isinstance(sealed, str) else None
    if token:
        return token
    raise NotSignedIn()


def from_proxy(request: Request) -> bool:
    """Whether the token came in a header (then there is nothing to sign out of here)."""
    return bool(request.headers.get("authorization") or request.headers.get(FORWARDED_TOKEN_HEADER))


def _configuration(api: ApiServer, token: str) -> client.Configuration:
    conf = client.Configuration()
    conf.host = api.host
    conf.ssl_ca_cert = api.ca_file
    conf.verify_ssl = api.verify_ssl
    if api.tls_server_name:
        conf.tls_server_name = api.tls_server_name
    conf.api_key = {"authorization": token}
    conf.api_key_prefix = {"authorization": "Bearer"}
    return conf


@contextmanager
def user_client(api: ApiServer, token: str) -> Iterator[client.ApiClient]:
    """An API client that speaks as the user: their token, the cluster's CA, nothing of the portal's."""
    api_client = client.ApiClient(_configuration(api, token))
    try:
        yield api_client
    finally:
        api_client.close()


def whoami(api_client: client.ApiClient) -> Identity:
    """Ask the API server who this token is (any authenticated user may)."""
    review = client.AuthenticationV1Api(api_client).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    )
    info = review.status.user_info if review.status else None
    if info is None or not info.username:
        raise TokenRefused()
    return Identity(username=info.username, groups=tuple(info.groups or ()))
