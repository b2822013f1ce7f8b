"""What a link's worker removes at the partner: attempts the controller asked to stop (agentless:
a failed or stuck gang), and orphans, copies no local job points at any more."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from estuary.federation import naming
from estuary.federation.partner import Partner, PartnerError
from estuary.federation.plan import PlanEntry
from estuary.federation.remote import view

if TYPE_CHECKING:
    from estuary.federation.worker import LinkRuntime

log = logging.getLogger("estuary.federation")


def remove_stopped(
    runtime: LinkRuntime,
    partner: Partner,
    namespace: str,
    name: str,
    raw: dict[str, Any] | None,
    listed_at: float,
) -> None:
    """An attempt being stopped: delete it while it is listed; once a listing that began
    after the stop and after the last request that may have created it lacks it, it is gone."""
    with runtime.lock:
        track = runtime.tracks.get(name)
        if track is None or track.stop_at is None:
            return
        settled = max(track.stop_at, track.anchor + runtime.timing.request_timeout_s)
        if raw is None:
            track.gone = track.gone or listed_at >= settled
            return
    if raw["metadata"].get("deletionTimestamp"):
        return
    try:
        partner.delete_copy(namespace, name)
        log.info("federation link %s: removing attempt %s/%s", runtime.name, namespace, name)
    except PartnerError as err:
        log.warning("federation link %s: removing %s: %s", runtime.name, name, err)


def collect_orphans(
    runtime: LinkRuntime,
    partner: Partner,
    namespace: str,
    found: Mapping[str, dict[str, Any]],
    plan: Mapping[str, PlanEntry],
) -> None:
    """Delete copies that no local job points at any more (deleted, requeued, given up)."""
    for name, raw in found.items():
        if raw["metadata"].get("deletionTimestamp"):
            continue  # being deleted (its pods first: foreground)
        sender = (raw["metadata"].get("annotations") or {}).get(naming.ORIGIN_LINK_UID)
        if not runtime.link_uid or sender != runtime.link_uid:
            continue  # sent through another link (or another cluster with the same id)
        entry = plan.get(name)
        with runtime.lock:
            track = runtime.tracks.get(name)
            wanted = (
                entry is not None
                and view(raw).origin_uid == entry.origin_uid
                and not (track is not None and track.abandoned)
            )
        if wanted:
            continue
        try:
            partner.delete_copy(namespace, name)
            log.info("federation link %s: deleted orphan copy %s/%s", runtime.name, namespace, name)
        except PartnerError as err:
            log.warning("federation link %s: deleting orphan %s: %s", runtime.name, name, err)
