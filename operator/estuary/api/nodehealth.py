"""The annotation contract between the node agent (writer) and the operator (reader).

It lives in `api/` because it is part of Estuary's API, like the CRDs: the agent (agent/) writes
it and the operator's state layer reads it, and neither imports the other.

The agent summarises each poll onto its own Node object as four annotations. Annotations, not a
CRD or a ConfigMap: the operator already watches Nodes, so the summary arrives with the events it
handles anyway; nothing new has to be installed or garbage-collected; and the agent needs only
`patch` on `nodes`. Both sides import this module, so the keys and formats live in one place.

    estuary.dev/accelerators-healthy    "7"
    estuary.dev/accelerators-unhealthy  "1"
    estuary.dev/accelerator-health      {"0":{"healthy":true,"reasons":[],"uuid":"GPU-..."}, ...}
    estuary.dev/agent-heartbeat         "2025-03-01T08:15:00Z"   (RFC 3339, UTC)

Reading back: a node without a heartbeat has no agent, and a heartbeat older than `max_age_s`
means the agent stopped reporting; in both cases nothing is counted as unhealthy (a dead agent
must not take a whole node out of service), and `read_health` says so through `stale`/`present`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

HEALTHY_KEY = "estuary.dev/accelerators-healthy"
UNHEALTHY_KEY = "estuary.dev/accelerators-unhealthy"
HEALTH_KEY = "estuary.dev/accelerator-health"
HEARTBEAT_KEY = "estuary.dev/agent-heartbeat"
ANNOTATION_KEYS: tuple[str, ...] = (HEALTHY_KEY, UNHEALTHY_KEY, HEALTH_KEY, HEARTBEAT_KEY)

DEFAULT_MAX_AGE_S = 300.0  # ten polls at the default 30 s interval


def format_heartbeat(now: datetime) -> str:
    """RFC 3339 in UTC with a Z suffix, to the second. `now` must be timezone-aware."""
    if now.tzinfo is None:
        raise ValueError("heartbeat time must be timezone-aware")
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_heartbeat(text: str) -> datetime | None:
    """The heartbeat as an aware datetime, or None when it is not RFC 3339 with a zone."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    uuid: str
    healthy: bool
    reasons: tuple[str, ...] = ()


def encode(
    devices: Mapping[str, DeviceHealth], healthy: int, unhealthy: int, now: datetime
) -> dict[str, str]:
    """The four annotations for a node's devices (by index), taken at `now`."""
    health = {
        index: {"uuid": d.uuid, "healthy": d.healthy, "reasons": list(d.reasons)}
        for index, d in devices.items()
    }
    return {
        HEALTHY_KEY: str(healthy),
        UNHEALTHY_KEY: str(unhealthy),
        HEALTH_KEY: json.dumps(health, sort_keys=True, separators=(",", ":")),
        HEARTBEAT_KEY: format_heartbeat(now),
    }


@dataclass(frozen=True, slots=True)
class AcceleratorHealth:
    """What the annotations of one node say, as the operator should act on it.

    `unhealthy` is what scheduling subtracts: 0 unless the agent is present and its heartbeat is
    fresh. `reported_unhealthy` is what the annotations say regardless, for status and `explain`.
    """

    present: bool  # a parseable heartbeat exists
    stale: bool  # present, but older than the allowed age
    heartbeat: datetime | None
    healthy: int
    unhealthy: int
    reported_unhealthy: int
    devices: Mapping[str, DeviceHealth] = field(default_factory=dict)


def _count(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


def _devices(text: str | None) -> dict[str, DeviceHealth]:
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, DeviceHealth] = {}
    for index, entry in raw.items():
        if not isinstance(entry, dict):
            continue
        reasons = entry.get("reasons", [])
        out[str(index)] = DeviceHealth(
            uuid=str(entry.get("uuid", "")),
            healthy=entry.get("healthy") is True,
            reasons=tuple(str(r) for r in reasons) if isinstance(reasons, list) else (),
        )
    return out


def read_health(
    annotations: Mapping[str, str] | None,
    *,
    now: datetime | None = None,
    max_age_s: float = DEFAULT_MAX_AGE_S,
) -> AcceleratorHealth:
    """Decode a node's agent annotations (None or missing keys: no agent)."""
    annotations = annotations or {}
    now = now or datetime.now(UTC)
    beat_text = annotations.get(HEARTBEAT_KEY)
    heartbeat = parse_heartbeat(beat_text) if beat_text else None
    devices = _devices(annotations.get(HEALTH_KEY))
    from_devices = sum(1 for d in devices.values() if not d.healthy)
    unhealthy = _count(annotations.get(UNHEALTHY_KEY))
    reported = unhealthy if unhealthy is not None else from_devices
    healthy = _count(annotations.get(HEALTHY_KEY))
    if healthy is None:
        healthy = len(devices) - from_devices
    present = heartbeat is not None
    stale = present and heartbeat is not None and (now - heartbeat).total_seconds() > max_age_s
    return AcceleratorHealth(
        present=present,
        stale=stale,
        heartbeat=heartbeat,
        healthy=healthy,
        unhealthy=reported if present and not stale else 0,
        reported_unhealthy=reported,
        devices=devices,
    )


def unhealthy_count(
    annotations: Mapping[str, str] | None,
    *,
    now: datetime | None = None,
    max_age_s: float = DEFAULT_MAX_AGE_S,
) -> int:
    """How many accelerators of a node the operator must not place on.

    0 when the node has no agent annotations or the heartbeat is older than `max_age_s`.
    """
    return read_health(annotations, now=now, max_age_s=max_age_s).unhealthy
