"""Signing in with a pasted token, and out. With an OIDC reverse proxy in front, neither is needed:
the proxy's header carries the token on every request (see identity.py)."""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from estuary.portal import identity
from estuary.portal.forms import ActionForm, LoginForm, bind
from estuary.portal.web import Portal


def _portal(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


def safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/jobs"


async def login(request: Request) -> Response:
    portal = _portal(request)
    formdata = await request.form() if request.method == "POST" else None
    form = bind(LoginForm, request, portal.csrf_secret, formdata)
    error = request.query_params.get("expired") and "Your token was not accepted any more: sign in again."
    target = safe_next(request.query_params.get("next"))
    if request.method == "POST" and form.validate():
        token = form.token.data.strip()
        if not identity.plausible_token(token):
            error = "That is not a bearer token: it must be one line without spaces."
        else:
            try:
                me = await run_in_threadpool(_check, portal, token)
            except (ApiException, identity.TokenRefused):
                error = "The API server did not accept this token."
            else:
                request.session["token"] = portal.sealer.seal(token)
                request.session["user"] = me.username
                return RedirectResponse(target, status_code=303)
    form.token.data = ""  # never echo a token back into the page
    context = {"form": form, "error": error, "next": target}
    failed = request.method == "POST"  # a successful sign-in returned above
    return portal.render(request, "login.html", context, status_code=400 if failed else 200)


def _check(portal: Portal, token: str) -> identity.Identity:
    with identity.user_client(portal.settings.api, token) as api:
        return identity.whoami(api)


async def logout(request: Request) -> Response:
    portal = _portal(request)
    form = bind(ActionForm, request, portal.csrf_secret, await request.form())
    if not form.validate():
        return portal.render(request, "refused.html", csrf_refusal(), status_code=403)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def csrf_refusal() -> dict[str, str]:
    return {
        "title": "This form has expired",
        "sentence": "The form was not sent from this page of the portal, or it is too old. "
        "Reload the page and try again.",
        "detail": "",
    }
