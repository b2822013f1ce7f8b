"""Which AIJobs in this cluster are federation copies (pure): the rule and the signature.

A copy gets special treatment at the partner: its lease is checked, and it is stopped for good
when the origin stops renewing it. The label `estuary.dev/origin-cluster` alone cannot earn that,
since any tenant can write it. An AIJob is a copy only when

  1. it is in one of the configured burst namespaces (`ESTUARY_BURST_NAMESPACES`), where only the
     origins' identities may create AIJobs, and
  2. it carries a signature (`estuary.dev/origin-signature`) that only a holder of the origin
     cluster's key can make: HMAC-SHA256 over the copy's namespace and name and the origin's
     cluster, namespace, name, uid and attempt. The partner keeps one key per origin cluster in
     a Secret of its own namespace; the origin keeps the same key in a Secret its
     FederationLink names (`spec.signingKeySecretRef`). The key never travels.

Why not the creator's identity: Kubernetes records no creator on an object, and the `manager` of
`metadata.managedFields` is whatever name the client chose, so anyone can claim any manager. A
signature binds the copy to a key; the namespace rule keeps tenants' namespaces out entirely.

Anything else that carries the label is an ordinary job, and says so in a `FederationCopy`
condition.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from estuary.federation import naming

SIGNATURE = "estuary.dev/origin-signature"
SCHEME = "v1"
MIN_KEY_BYTES = 16
COPY_CONDITION = "FederationCopy"
IGNORED = "OriginLabelIgnored"


class Verdict(StrEnum):
    COPY = "Copy"  # a federation copy: the lease rules apply
    ORDINARY = "Ordinary"  # no origin label: nothing to say
    IGNORED = "Ignored"  # labelled, but not a copy: an ordinary job, told so
    UNKNOWN = "Unknown"  # labelled in a burst namespace, but the keys are not read yet


@dataclass(frozen=True)
class CopyRule:
    """The partner's configuration: burst namespaces, and each origin cluster's key (None: the
    keys were not read yet)."""

    namespaces: frozenset[str]
    keys: Mapping[str, bytes] | None = None


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    why: str = ""  # for IGNORED: why the label is ignored


def _message(namespace: str, name: str, origin: str, notes: Mapping[str, str]) -> bytes:
    fields = (
        SCHEME,
        namespace,
        name,
        origin,
        notes.get(naming.ORIGIN_NAMESPACE, ""),
        notes.get(naming.ORIGIN_NAME, ""),
        notes.get(naming.ORIGIN_UID, ""),
        notes.get(naming.ORIGIN_ATTEMPT, ""),
    )
    return "\0".join(fields).encode()


def signature(key: bytes, namespace: str, name: str, origin: str, notes: Mapping[str, str]) -> str:
    """The signature of a copy named `namespace/name`, sent by `origin`, with these annotations."""
    digest = hmac.new(key, _message(namespace, name, origin, notes), hashlib.sha256).hexdigest()
    return f"{SCHEME}:{digest}"


def sign(manifest: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The copy's manifest with its signature annotation."""
    meta = manifest["metadata"]
    notes = dict(meta.get("annotations") or {})
    origin = notes.get(naming.ORIGIN_CLUSTER, "")
    notes[SIGNATURE] = signature(key, meta["namespace"], meta["name"], origin, notes)
    return {**manifest, "metadata": {**meta, "annotations": notes}}


def judge(obj: Mapping[str, Any], rule: CopyRule) -> Judgement:
    """Whether an AIJob of this cluster is a federation copy, and if not, why its label is ignored."""
    meta = obj.get("metadata") or {}
    if naming.ORIGIN_CLUSTER not in (meta.get("labels") or {}):
        return Judgement(Verdict.ORDINARY)
    namespace = str(meta.get("namespace") or "")
    if namespace not in rule.namespaces:
        allowed = ", ".join(sorted(rule.namespaces)) or "none configured"
        return Judgement(
            Verdict.IGNORED,
            f"namespace {namespace} is not a burst namespace (ESTUARY_BURST_NAMESPACES: {allowed})",
        )
    if rule.keys is None:
        return Judgement(Verdict.UNKNOWN)
    notes: Mapping[str, str] = meta.get("annotations") or {}
    origin = notes.get(naming.ORIGIN_CLUSTER, "")
    key = rule.keys.get(origin)
    if key is None:
        return Judgement(Verdict.IGNORED, f"no signing key is configured here for origin cluster {origin!r}")
    expected = signature(key, namespace, str(meta.get("name") or ""), origin, notes)
    if not hmac.compare_digest(expected, str(notes.get(SIGNATURE) or "")):
        return Judgement(Verdict.IGNORED, f"its signature does not match origin cluster {origin!r}'s key")
    return Judgement(Verdict.COPY)


def is_copy(obj: Mapping[str, Any], rule: CopyRule) -> bool:
    return judge(obj, rule).verdict == Verdict.COPY


def keys_from_secret(data: Mapping[str, bytes]) -> dict[str, bytes]:
    """Origin cluster -> key, from a Secret's decoded data; keys shorter than 16 bytes are left out
    (too weak to sign with), and so are empty entries."""
    return {origin: key.strip() for origin, key in data.items() if len(key.strip()) >= MIN_KEY_BYTES}
