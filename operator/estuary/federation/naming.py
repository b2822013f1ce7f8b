"""Names, labels and annotations of the copy of a burst job in a partner cluster (pure).

The copy's name is a function of the origin cluster, the job and the attempt, so creating it twice
is harmless (the second create answers AlreadyExists) and a later attempt never reuses the name of
an earlier copy that may still be waiting to be collected.
"""

from __future__ import annotations

import hashlib
import re

from estuary.fence.lease import LEASE_RENEW as LEASE_RENEW  # the token the origin changes; the fence reads it
from estuary.fence.lease import LEASE_SECONDS as LEASE_SECONDS

MAX_NAME = 50  # AIJob names: at most 50 characters (they name worker pods: {name}-worker-{rank})
HASH_LEN = 8

# On the copy (labels are for selection, annotations carry the exact values).
ORIGIN_CLUSTER = "estuary.dev/origin-cluster"  # label and annotation
ORIGIN_NAMESPACE = "estuary.dev/origin-namespace"
ORIGIN_NAME = "estuary.dev/origin-name"
ORIGIN_UID = "estuary.dev/origin-uid"
ORIGIN_ATTEMPT = "estuary.dev/origin-attempt"
ORIGIN_LINK = "estuary.dev/origin-link"
ORIGIN_LINK_UID = "estuary.dev/origin-link-uid"  # only the link that sent a copy collects it
ORIGIN_ACCELERATOR = "estuary.dev/origin-accelerator"  # vendor/model the origin chose (agentless: used)
FENCE = "estuary.dev/fence"  # "true": the partner runs the fence beside the copy's workers
MANAGED_BY = "app.kubernetes.io/managed-by"

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def remote_name(origin: str, namespace: str, name: str, uid: str, attempt: int) -> str:
    """`<ns>-<name>` (shortened, DNS-label safe, starts with a letter) + `-` + 8 hex of a hash of
    everything that identifies this attempt; at most 50 characters."""
    digest = hashlib.sha256("\0".join((origin, namespace, name, uid, str(attempt))).encode())
    suffix = digest.hexdigest()[:HASH_LEN]
    base = re.sub(r"[^a-z0-9]+", "-", f"{namespace}-{name}".lower()).strip("-")
    if not base[:1].isalpha():
        base = f"j-{base}".rstrip("-")
    base = base[: MAX_NAME - HASH_LEN - 1].rstrip("-")
    return f"{base}-{suffix}"


def label_value(value: str) -> str:
    """A valid label value for `value` (cluster ids are free text): kept when valid, else a
    sanitised form with a short hash so distinct values stay distinct."""
    if _LABEL_VALUE.match(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:HASH_LEN]
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", value).strip("-_.")[: 63 - HASH_LEN - 1].strip("-_.")
    return f"{base}-{digest}" if base else f"x-{digest}"


def attempt_id(namespace: str, name: str, uid: str, attempt: int) -> str:
    """Identifies one attempt of one job in spend accounting (`charged`)."""
    return f"{namespace}/{name}/{uid}/{attempt}"
