"""The operator's seal on a placement: only a placement the operator decided starts pods.

Why it exists: `status.placement` is what the lifecycle creates worker pods from. The status
subresource is the operator's to write, but anyone granted `aijobs/status` (an administrator, a
too-broad role, another controller) could write a placement for a job that is over its quota, and
the operator would start it. So each local admission is sealed: an HMAC-SHA256, with a key only
the operator holds (a Secret in its own namespace: kube/sealkey.py), over the job's uid, the
attempt and every field of the placement (tenant, pool, nodes, ...). Before it creates a worker,
the lifecycle checks the seal; a placement that fails is released with `PlacementNotTrusted`.

A seal copied from another job fails (the uid differs); a job's own earlier placement written
back is refused while this process remembers releasing that attempt (`revoke`); after a restart
only the HMAC is checked. Placements at partner clusters (`cluster` is a link) start no local pods
and are not sealed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from estuary.api.placement import Placement

PREFIX = "v1:"


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a placement key must be at least 16 bytes")
        self._key = key
        self._revoked: dict[str, int] = {}  # job uid -> highest attempt released by this process

    @classmethod
    def ephemeral(cls) -> Sealer:
        """A key of this process only (tests; an operator that could not read or create its key:
        placements it sealed before a restart are then released and admitted again)."""
        return cls(secrets.token_bytes(32))

    def _digest(self, uid: str, attempt: int, placement: Placement) -> str:
        fields = placement.model_dump(mode="json", exclude={"seal"}, by_alias=True)
        message = json.dumps({"uid": uid, "attempt": attempt, "placement": fields}, sort_keys=True)
        return PREFIX + hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def seal(self, uid: str, attempt: int, placement: Placement) -> Placement:
        """The placement with its seal."""
        return placement.model_copy(update={"seal": self._digest(uid, attempt, placement)})

    def trusts(self, uid: str, attempt: int, placement: Placement) -> bool:
        """Whether the operator sealed this placement for this job's attempt, and has not released
        that attempt since."""
        if not uid or not placement.seal or attempt <= self._revoked.get(uid, 0):
            return False
        return hmac.compare_digest(placement.seal, self._digest(uid, attempt, placement))

    def revoke(self, uid: str, attempt: int) -> None:
        """The attempt was released: its seal starts nothing again."""
        self._revoked[uid] = max(attempt, self._revoked.get(uid, 0))
