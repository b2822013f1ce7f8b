"""What a link's worker thread and the controller thread share: the plan of copies the controller
wants at the partner (`PlanEntry`), the origin-side lease state of each copy (`Track`), the
link's health, and the snapshot the controller reads of the worker's latest results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from estuary.federation.choose import TypeOffer
from estuary.federation.network import Network
from estuary.federation.remote import CopyView


@dataclass
class PlanEntry:
    """A local job placed at this link, as the controller sees it now."""

    remote_name: str
    job_key: str
    origin_uid: str
    attempt: int
    lease_seconds: int
    grace_seconds: int
    finished: bool = False  # the local job finished: keep the copy (audit), stop renewing it
    suspend: bool = False
    manifest: dict[str, Any] | None = None  # create the copy from this if it is not there yet


@dataclass
class Track:
    """Origin-side lease state of one copy (times on the origin's monotonic clock)."""

    anchor: float  # end of the last request that may have renewed or created the copy
    may_exist: bool  # a create may have reached the partner (or this process did not burst it)
    seen: bool = False  # the partner showed or returned the copy at least once
    in_flight: bool = False  # a renewal or create is being sent
    abandoned: bool = False  # given up: never renewed or created again
    refused: str | None = None  # the partner refused to create it (why)
    renewals: int = 0
    running_since: float | None = None  # first heartbeat that saw it Running (spend estimate)
    running_seen: float | None = None  # last heartbeat that saw it Running
    pending_since: float | None = None  # since when its workers are not all running (gang timeout)
    stop_at: float | None = None  # the controller asked for the attempt to be removed (agentless)
    gone: bool = False  # a listing that began after the stop and the last request lacks it


@dataclass(frozen=True)
class Health:
    ready: bool
    reason: str  # Ready, Pending, BadCredentials, Unreachable, Refused
    message: str
    last_ok: float | None = None  # wall clock of the last successful heartbeat


@dataclass(frozen=True)
class Snapshot:
    """What the controller thread reads from a runtime: copies of the latest results."""

    health: Health
    capacity: tuple[TypeOffer, ...]
    copies: Mapping[str, CopyView]
    listed: frozenset[str]  # every copy of this cluster the last successful heartbeat listed
    accepting: tuple[bool, str]
    heartbeats: int
    network: Network = field(default_factory=Network)


def capacity_of(pools: list[dict[str, Any]]) -> tuple[TypeOffer, ...]:
    """Partner capacity by accelerator type, from its ComputePools' specs and statuses (model ""
    is an agentless provider's type discovered from its quota: any model of the vendor)."""
    by_type: dict[tuple[str, str], list[float]] = {}
    for pool in pools:
        spec, status = pool.get("spec") or {}, pool.get("status") or {}
        if not spec.get("vendor") or "model" not in spec:
            continue
        entry = by_type.setdefault((str(spec["vendor"]), str(spec["model"] or "")), [0, 0, 0.0])
        entry[0] += int(status.get("capacity") or 0)
        entry[1] += int(status.get("free") or 0)
        entry[2] = max(entry[2], float(spec.get("relativeThroughput") or 1.0))
    return tuple(TypeOffer(v, m, int(c), int(f), t) for (v, m), (c, f, t) in sorted(by_type.items()))
