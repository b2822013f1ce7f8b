"""The copy of a burst job in the partner cluster: its manifest, and what the origin reads back
from it (pure functions over plain dicts)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from estuary.api.aijob import FINISHED, AIJob
from estuary.federation import naming
from estuary.federation.choose import residency_allows
from estuary.kube.render import PASS_THROUGH_PREFIX

LEASE_EXPIRED = "LeaseExpired"


class ResidencyViolation(RuntimeError):
    """Refuses to build a copy for a partner the job's data may not go to (defence in depth)."""


def manifest(
    job: AIJob,
    *,
    origin: str,
    link: str,
    link_uid: str,
    jurisdiction: str,
    allowed_residency: list[str],
    namespace: str,
    name: str,
    attempt: int,
    lease_seconds: int,
    token: str,
    accelerator: str | None = None,
    fence: bool = False,
) -> dict[str, Any]:
    """The AIJob to create at the partner: the same spec with bursting off (no re-burst) and the
    same residency, marked with its origin, its lease, and the job's `estuary.dev/sim-*`
    annotations (the partner copies those to the worker pods, as for any job)."""
    if not residency_allows(job.spec.residency, jurisdiction, allowed_residency):
        raise ResidencyViolation(
            f"residency {job.spec.residency} may not go to link {link} "
            f"({jurisdiction}, allows {sorted(allowed_residency)})"
        )
    meta = job.metadata
    spec = job.spec.model_copy(deep=True)
    spec.burst.enabled = False
    spec.burst.after_seconds = None
    passed = {
        k: str(v) for k, v in (meta.get("annotations") or {}).items() if k.startswith(PASS_THROUGH_PREFIX)
    }
    return {
        "apiVersion": job.api_version,
        "kind": "AIJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                naming.ORIGIN_CLUSTER: naming.label_value(origin),
                naming.ORIGIN_NAMESPACE: meta["namespace"],
                naming.ORIGIN_NAME: meta["name"],
                naming.MANAGED_BY: "estuary",
            },
            "annotations": {
                **passed,
                naming.ORIGIN_CLUSTER: origin,
                naming.ORIGIN_NAMESPACE: meta["namespace"],
                naming.ORIGIN_NAME: meta["name"],
                naming.ORIGIN_UID: str(meta.get("uid")),
                naming.ORIGIN_ATTEMPT: str(attempt),
                naming.ORIGIN_LINK: link,
                naming.ORIGIN_LINK_UID: link_uid,
                naming.LEASE_SECONDS: str(lease_seconds),
                naming.LEASE_RENEW: token,
                **({naming.ORIGIN_ACCELERATOR: accelerator} if accelerator else {}),
                **({naming.FENCE: "true"} if fence else {}),
            },
        },
        "spec": spec.to_wire(),
    }


@dataclass(frozen=True, slots=True)
class CopyView:
    """What the origin needs from the copy at the partner."""

    name: str
    uid: str
    origin_uid: str | None
    origin_attempt: int | None
    phase: str | None
    reason: str | None
    message: str | None
    placement: Mapping[str, Any] = field(default_factory=dict)
    accelerator: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    suspend: bool = False

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED


def view(copy: Mapping[str, Any]) -> CopyView:
    meta = copy.get("metadata") or {}
    notes = meta.get("annotations") or {}
    status = copy.get("status") or {}
    try:
        attempt: int | None = int(notes.get(naming.ORIGIN_ATTEMPT, ""))
    except ValueError:
        attempt = None
    return CopyView(
        name=str(meta.get("name")),
        uid=str(meta.get("uid") or ""),
        origin_uid=notes.get(naming.ORIGIN_UID),
        origin_attempt=attempt,
        phase=status.get("phase"),
        reason=status.get("reason"),
        message=status.get("message"),
        placement=dict(status.get("placement") or {}),
        accelerator=status.get("accelerator"),
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
        suspend=bool((copy.get("spec") or {}).get("suspend")),
    )


def is_labelled(obj: Mapping[str, Any]) -> bool:
    """Whether an AIJob carries the origin label: a copy another cluster sent here, or anyone's
    job that claims to be one (origins.py tells them apart)."""
    return naming.ORIGIN_CLUSTER in ((obj.get("metadata") or {}).get("labels") or {})
