"""What every page handler shares: settings, templates, and "read this as the signed-in user".

`Portal.user(request)` is the one door to the API server: it takes the request's token (see
identity.py), opens an API client with it, and asks who it is. Handlers never see the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from estuary.portal import identity, present
from estuary.portal.forms import ActionForm, bind
from estuary.portal.reads import UserReads
from estuary.portal.settings import PortalSettings

HERE = Path(__file__).resolve().parent


@dataclass
class Session:
    """One request's view of the cluster: the user's reads and who they are."""

    reads: UserReads
    me: identity.Identity


class Portal:
    def __init__(self, settings: PortalSettings) -> None:
        self.settings = settings
        self.sealer = identity.Sealer(settings)
        self.csrf_secret = settings.derived_key("csrf")
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["nav"] = NAV
        self.templates.env.globals["headline_of"] = lambda reason: present.headline("Queued", reason)

    @contextmanager
    def user(self, request: Request) -> Iterator[Session]:
        token = identity.token_of(request, self.sealer)  # NotSignedIn when there is none
        with identity.user_client(self.settings.api, token) as api:
            yield Session(reads=UserReads(api), me=identity.whoami(api))

    def candidate_namespaces(self, request: Request, session: Session) -> set[str]:
        """Namespaces to look in when the user may not list AIJobs cluster-wide."""
        remembered = request.session.get("namespaces") or []
        found = set(self.settings.namespaces) | {str(ns) for ns in remembered}
        if session.me.service_account_namespace:
            found.add(session.me.service_account_namespace)
        found.update(session.reads.listable_namespaces())
        return found

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        status_code: int = 200,
        me: identity.Identity | None = None,
    ) -> Response:
        page = {
            "me": me,
            "from_proxy": identity.from_proxy(request),
            "signout": bind(ActionForm, request, self.csrf_secret),
            **context,
        }
        return self.templates.TemplateResponse(request, template, page, status_code=status_code)


NAV = (
    ("/jobs", "My jobs"),
    ("/queue", "Queue"),
    ("/submit", "Submit"),
    ("/usage", "Quota and usage"),
    ("/pools", "Pools"),
    ("/tenants", "Tenants"),
    ("/links", "Partners"),
)
