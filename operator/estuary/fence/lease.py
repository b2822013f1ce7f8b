"""The fence's lease arithmetic (pure): when a renewal is credited, and when the lease is over.

The origin changes the lease object's `estuary.dev/lease-renew` token on every renewal. The
sidecar reads the object every few seconds. A token that differs from what the previous
successful read showed was written after that read began, so it is credited at that read's start:
never later than it was written, whatever the delays of requests or of the sidecar itself. This is
the rule the partner's operator uses for copies (federation/observer.py); both measure only
durations on their own clock, so no clock is ever compared with another cluster's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

LEASE_RENEW = "estuary.dev/lease-renew"  # the annotation the origin changes on every renewal
LEASE_SECONDS = "estuary.dev/lease-seconds"  # the lease, on the object that carries the token


def credit(token: str, last_token: str | None, previous_read_start: float | None) -> float | None:
    """When to credit `token`, seen in a read, given the token the previous read showed (None:
    not present then) and when that read started (None: there was none, so nobody can tell when
    a change happened: no credit)."""
    if token == last_token or previous_read_start is None:
        return None
    return previous_read_start


@dataclass(frozen=True)
class FenceState:
    """What a fence knows, on the node's monotonic clock (shared by the pod's containers)."""

    boot_id: str
    credited: float | None = None  # the latest credited renewal
    last_token: str | None = None  # what the previous successful read showed
    previous_read_start: float | None = None  # when that read started
    fenced: str | None = None  # why the workers were stopped (once set, for good)


def observe(state: FenceState, token: str, read_start: float) -> FenceState:
    """The state after a successful read that started at `read_start` and showed `token`."""
    credited = credit(token, state.last_token, state.previous_read_start)
    newest = state.credited if credited is None else max(credited, state.credited or credited)
    return replace(state, credited=newest, last_token=token, previous_read_start=read_start)


def expired(state: FenceState, lease_seconds: float, now: float) -> bool:
    """Whether the lease is over: never credited, or credited more than `lease_seconds` ago."""
    return state.credited is None or now - state.credited > lease_seconds
