"""Leader election on a coordination.k8s.io Lease: of several operator replicas, one acts.

Kopf's peering pauses handlers but is not leader election, so Estuary holds a Lease of its own.
Every replica keeps its cache fed by watches; only the holder runs the controller step. A holder
renews every `renew_s`; another replica takes the lease only after it expired (`duration_s` since
the last renewal by the holder's own record), so two replicas never act at once as long as one
step takes less than `duration_s - renew_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("estuary.lease")


def _now() -> datetime:
    return datetime.now(UTC)


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class LeaderElector:
    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        identity: str,
        name: str = "estuary-operator",
        duration_s: int = 15,
        renew_s: float = 5.0,
    ) -> None:
        self.coordination = client.CoordinationV1Api(api)
        self.namespace, self.identity, self.name = namespace, identity, name
        self.duration_s, self.renew_s = duration_s, renew_s
        self._leader_until = 0.0  # monotonic deadline of our own lease

    def is_leader(self) -> bool:
        return time.monotonic() < self._leader_until

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.try_acquire_or_renew()
            except Exception:  # an API hiccup: we simply are not leader until the next success
                log.exception("lease %s/%s: could not acquire or renew", self.namespace, self.name)
            stop.wait(self.renew_s)
        self.release()

    def try_acquire_or_renew(self) -> bool:
        started = time.monotonic()
        now = _now()
        try:
            lease = self.coordination.read_namespaced_lease(self.name, self.namespace)
        except ApiException as err:
            if err.status != 404:
                raise
            body = {
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, transitions=0, acquired=now),
            }
            try:
                self.coordination.create_namespaced_lease(self.namespace, body)
            except ApiException as create_err:
                if create_err.status == 409:
                    return False
                raise
            return self._became(started, "acquired a new")
        spec = self._as_dict(lease)["spec"]
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime"))
        expired = renewed is None or (now - renewed).total_seconds() > spec.get(
            "leaseDurationSeconds", self.duration_s
        )
        if holder not in (self.identity, None, "") and not expired:
            if self.is_leader():
                log.warning("lease %s/%s is held by %s: stepping down", self.namespace, self.name, holder)
            self._leader_until = 0.0
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (holder != self.identity)
        acquired = _parse(spec.get("acquireTime")) if holder == self.identity else now
        body = self._as_dict(lease)
        body["spec"] = self._spec(now, transitions, acquired or now)
        try:  # resourceVersion in the body makes this a compare-and-swap
            self.coordination.replace_namespaced_lease(self.name, self.namespace, body)
        except ApiException as err:
            if err.status == 409:
                self._leader_until = 0.0
                return False
            raise
        return self._became(started, "renewed the" if holder == self.identity else "took over the")

    def _became(self, started: float, verb: str) -> bool:
        if not self.is_leader():
            log.info("%s lease %s/%s as %s: now acting", verb, self.namespace, self.name, self.identity)
        # Count from before the request, so our deadline never outlives the lease others see.
        self._leader_until = started + self.duration_s - self.renew_s
        return True

    def _spec(self, now: datetime, transitions: int, acquired: datetime) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.duration_s,
            "acquireTime": _fmt(acquired),
            "renewTime": _fmt(now),
            "leaseTransitions": transitions,
        }

    def _as_dict(self, lease: Any) -> dict[str, Any]:
        out: dict[str, Any] = self.coordination.api_client.sanitize_for_serialization(lease)
        return out

    def release(self) -> None:
        """Hand the lease back on a clean stop, so a standby takes over at once."""
        if not self.is_leader():
            return
        self._leader_until = 0.0
        try:
            lease = self._as_dict(self.coordination.read_namespaced_lease(self.name, self.namespace))
            if lease["spec"].get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = None
                self.coordination.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as err:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, err.reason)
