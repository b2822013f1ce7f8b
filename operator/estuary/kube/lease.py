"""Leader election on a coordination.k8s.io Lease: of several operator replicas, one acts.

Kopf's peering pauses handlers but is not leader election, so Estuary holds a Lease of its own.
Every replica keeps its cache fed by watches; only the holder runs the controller step. A holder
renews every `renew_s`; another replica takes the lease only after it expired: `duration_s` on
the OBSERVER's own monotonic clock since it last saw the lease record change, as client-go's
leader election measures it. The holder's `renewTime` is never compared with the local clock, so
clocks that disagree between nodes cannot make two replicas act at once (as long as one step
takes less than `duration_s - renew_s`). Every request has a timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from estuary.health import HEALTH
from estuary.kube.client import TIMEOUT

log = logging.getLogger("estuary.lease")


def _now() -> datetime:
    return datetime.now(UTC)


def _fmt(moment: datetime) -> str:
    # The client re-serializes a parsed MicroTime with isoformat(), which drops ".000000" and so
    # makes a time the API server refuses; a whole second is never sent as one.
    return moment.replace(microsecond=moment.microsecond or 1).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        self._observed: tuple[Any, ...] | None = None  # the lease record as last seen
        self._observed_at = 0.0  # monotonic time it was first seen as it is

    def is_leader(self) -> bool:
        return time.monotonic() < self._leader_until

    def _expired(self, spec: dict[str, Any], now_mono: float) -> bool:
        """Whether the holder let the lease lapse, on this replica's clock: the record has not
        changed for its duration since this replica first saw it as it is."""
        record = tuple(
            spec.get(k) for k in ("holderIdentity", "renewTime", "acquireTime", "leaseTransitions")
        )
        if record != self._observed:
            self._observed, self._observed_at = record, now_mono
        duration = float(spec.get("leaseDurationSeconds") or self.duration_s)
        return now_mono - self._observed_at > duration

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.try_acquire_or_renew()
            except Exception as err:  # an API hiccup: we are not leader once our deadline passes
                log.warning("lease %s/%s: could not acquire or renew (%s)", self.namespace, self.name, err)
            stop.wait(self.renew_s)
        self.release()

    def try_acquire_or_renew(self) -> bool:
        started = time.monotonic()
        now = _now()
        try:
            lease = self.coordination.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=TIMEOUT
            )
        except ApiException as err:
            HEALTH.api_answered()
            if err.status != 404:
                raise
            body = {
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, transitions=0, acquired=now),
            }
            try:
                self.coordination.create_namespaced_lease(self.namespace, body, _request_timeout=TIMEOUT)
            except ApiException as create_err:
                if create_err.status == 409:
                    return False
                raise
            return self._became(started, "acquired a new")
        HEALTH.api_answered()
        spec = self._as_dict(lease)["spec"]
        holder = spec.get("holderIdentity")
        if holder not in (self.identity, None, "") and not self._expired(spec, started):
            if self.is_leader():
                log.warning("lease %s/%s is held by %s: stepping down", self.namespace, self.name, holder)
            self._step_down()
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (holder != self.identity)
        acquired = _parse(spec.get("acquireTime")) if holder == self.identity else now
        body = self._as_dict(lease)
        body["spec"] = self._spec(now, transitions, acquired or now)
        try:  # resourceVersion in the body makes this a compare-and-swap
            self.coordination.replace_namespaced_lease(
                self.name, self.namespace, body, _request_timeout=TIMEOUT
            )
        except ApiException as err:
            if err.status == 409:
                self._step_down()
                return False
            raise
        return self._became(started, "renewed the" if holder == self.identity else "took over the")

    def _became(self, started: float, verb: str) -> bool:
        if not self.is_leader():
            log.info("%s lease %s/%s as %s: now acting", verb, self.namespace, self.name, self.identity)
        # Count from before the request, so our deadline never outlives the lease others see.
        self._leader_until = started + self.duration_s - self.renew_s
        return True

    def _step_down(self) -> None:
        self._leader_until = 0.0

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
        self._step_down()
        try:
            read = self.coordination.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=TIMEOUT
            )
            lease = self._as_dict(read)
            if lease["spec"].get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = None
                self.coordination.replace_namespaced_lease(
                    self.name, self.namespace, lease, _request_timeout=TIMEOUT
                )
        except ApiException as err:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, err.reason)
