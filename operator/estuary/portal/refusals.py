"""API errors in plain words: "you may not list ComputePools at the cluster scope", not a traceback.

The API server's 403 message names the user, verb, resource and scope; this module turns it into a
sentence a researcher can act on (ask the platform team for that right), and keeps the server's own
message beside it for the platform team.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from kubernetes.client.exceptions import ApiException

_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>[a-z]+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]+)"| at the (?P<cluster>cluster) scope)?'
)


@dataclass(frozen=True)
class Refusal:
    """Why the API server said no, in a sentence, with its own message kept."""

    status: int
    sentence: str
    server_message: str


def server_message(err: ApiException) -> str:
    """The `message` of the API server's Status body, else its reason phrase."""
    try:
        body = json.loads(err.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or err.reason or f"HTTP {err.status}")


def plain(err: ApiException) -> Refusal:
    """A Refusal for any ApiException; 403s get the "you may not ..." sentence."""
    message = server_message(err)
    if err.status == 403:
        return Refusal(403, forbidden_sentence(message), message)
    if err.status == 404:
        return Refusal(404, "It does not exist (or was just deleted).", message)
    if err.status == 401:
        return Refusal(401, "The API server did not accept your token: it may have expired.", message)
    return Refusal(err.status or 502, f"The API server answered {err.status}: {message}", message)


def forbidden_sentence(message: str) -> str:
    match = _FORBIDDEN.search(message)
    if match is None:
        return "You may not do this: the API server refused it."
    resource = match["resource"]
    if match["group"]:
        resource = f"{resource}.{match['group']}"
    where = ""
    if match["namespace"]:
        where = f" in namespace {match['namespace']}"
    elif match["cluster"]:
        where = " across the cluster"
    return f"You ({match['user']}) may not {match['verb']} {resource}{where}."
