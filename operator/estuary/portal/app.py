"""The portal as an ASGI application: routes, the session cookie, security headers, and errors as
pages (a 403 is "you may not ...", a lost token is the login page, never a traceback)."""

from __future__ import annotations

import logging

from kubernetes.client.exceptions import ApiException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from urllib3.exceptions import HTTPError

from estuary.portal import pages_auth, pages_jobs, pages_platform, pages_submit, refusals
from estuary.portal.identity import NotSignedIn, TokenRefused
from estuary.portal.settings import PortalSettings
from estuary.portal.web import HERE, Portal

log = logging.getLogger("estuary.portal")

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Every response: no framing, no sniffing, no third-party content; pages are not cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers += SECURITY_HEADERS
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _not_signed_in(request: Request, exc: Exception) -> Response:
    target = pages_auth.safe_next(request.url.path)
    return RedirectResponse(f"/login?next={target}", status_code=303)


def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiException)
    portal: Portal = request.app.state.portal
    if exc.status == 401:
        request.session.pop("token", None)
        target = pages_auth.safe_next(request.url.path)
        return RedirectResponse(f"/login?expired=1&next={target}", status_code=303)
    refusal = refusals.plain(exc)
    if refusal.status >= 500:
        log.warning("API server error on %s: %s", request.url.path, refusal.server_message)
    titles = {403: "You may not see this", 404: "Not found"}
    context = {
        "title": titles.get(refusal.status, "The API server refused"),
        "sentence": refusal.sentence,
        "detail": refusal.server_message,
    }
    return portal.render(request, "refused.html", context, status_code=refusal.status)


def _token_refused(request: Request, exc: Exception) -> Response:
    request.session.pop("token", None)
    return RedirectResponse("/login?expired=1", status_code=303)


def _unreachable(request: Request, exc: Exception) -> Response:
    portal: Portal = request.app.state.portal
    log.warning("API server unreachable on %s: %s", request.url.path, type(exc).__name__)
    context = {
        "title": "The cluster cannot be reached",
        "sentence": "The portal could not reach the Kubernetes API server. Try again in a minute; "
        "if it persists, tell the platform team.",
        "detail": type(exc).__name__,
    }
    return portal.render(request, "refused.html", context, status_code=502)


def _healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def routes() -> list[Route | Mount]:
    return [
        Route("/", lambda request: RedirectResponse("/jobs", status_code=303)),
        Route("/healthz", _healthz),
        Route("/login", pages_auth.login, methods=["GET", "POST"]),
        Route("/logout", pages_auth.logout, methods=["POST"]),
        Route("/jobs", pages_jobs.jobs),
        Route("/jobs/{namespace}/{name}", pages_jobs.job),
        Route("/jobs/{namespace}/{name}/logs/{pod}", pages_jobs.log),
        Route("/queue", pages_jobs.queue),
        Route("/submit", pages_submit.submit_form, methods=["GET"]),
        Route("/submit", pages_submit.submit, methods=["POST"]),
        Route("/usage", pages_platform.usage),
        Route("/usage.csv", pages_platform.usage_csv),
        Route("/pools", pages_platform.pools),
        Route("/tenants", pages_platform.tenants),
        Route("/links", pages_platform.links),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]


def create_app(settings: PortalSettings) -> Starlette:
    portal = Portal(settings)
    app = Starlette(
        routes=routes(),
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=settings.derived_key("session-cookie").hex(),
                session_cookie="estuary_session",
                max_age=int(settings.session_hours * 3600),
                same_site="lax",
                https_only=settings.secure_cookies,
            ),
        ],
        exception_handlers={
            NotSignedIn: _not_signed_in,
            TokenRefused: _token_refused,
            ApiException: _api_error,
            HTTPError: _unreachable,
        },
    )
    app.state.portal = portal
    return app
