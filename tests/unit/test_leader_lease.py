"""Leader election measures lease expiry on the observer's own clock (kube/lease.py), as client-go
does: a holder whose clock is far behind (its renewTime looks stale) keeps the lease while it
renews; one that stops renewing loses it `leaseDurationSeconds` after a standby saw its last
renewal. The Lease API is faked at its lowest boundary (the CoordinationV1Api calls);
tests/e2e/test_operate.py runs two real replicas against a real API server."""

from __future__ import annotations

import copy
from typing import Any
from unittest import mock

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from estuary.kube.lease import LeaderElector


class FakeCoordination:
    def __init__(self) -> None:
        self.api_client = client.ApiClient()
        self.lease: dict[str, Any] | None = None
        self.version = 0

    def read_namespaced_lease(self, name: str, namespace: str, **_: Any) -> dict[str, Any]:
        if self.lease is None:
            raise ApiException(status=404, reason="NotFound")
        return copy.deepcopy(self.lease)

    def create_namespaced_lease(self, namespace: str, body: dict[str, Any], **_: Any) -> None:
        self.version += 1
        self.lease = {
            **copy.deepcopy(body),
            "metadata": {**body["metadata"], "resourceVersion": str(self.version)},
        }

    def replace_namespaced_lease(self, name: str, namespace: str, body: dict[str, Any], **_: Any) -> None:
        assert self.lease is not None
        if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        self.create_namespaced_lease(namespace, body)

    def renew_as(self, holder: str, renew_time: str) -> None:
        """Another replica renews (with its own, possibly wrong, wall clock)."""
        assert self.lease is not None
        self.lease["spec"] = {**self.lease["spec"], "holderIdentity": holder, "renewTime": renew_time}
        self.version += 1
        self.lease["metadata"]["resourceVersion"] = str(self.version)


def _elector(fake: FakeCoordination, identity: str) -> LeaderElector:
    elector = LeaderElector(client.ApiClient(), "estuary-system", identity)
    elector.coordination = fake
    return elector


def test_a_holder_with_a_slow_clock_keeps_the_lease_while_it_renews() -> None:
    fake, now = FakeCoordination(), [1000.0]
    with mock.patch("estuary.kube.lease.time.monotonic", lambda: now[0]):
        holder = _elector(fake, "a")
        assert holder.try_acquire_or_renew()
        standby = _elector(fake, "b")
        for second in range(0, 60, 5):  # the holder's renewTime is a year behind, but it changes
            fake.renew_as("a", f"2025-01-01T00:00:{second:02d}.000000Z")
            now[0] += 5
            assert not standby.try_acquire_or_renew()
        assert not standby.is_leader()


def test_a_standby_takes_over_a_lease_its_holder_stopped_renewing_after_the_duration() -> None:
    fake, now = FakeCoordination(), [1000.0]
    with mock.patch("estuary.kube.lease.time.monotonic", lambda: now[0]):
        assert _elector(fake, "a").try_acquire_or_renew()
        standby = _elector(fake, "b")
        assert not standby.try_acquire_or_renew()  # first seen now: counted from here
        now[0] += 15
        assert not standby.try_acquire_or_renew()
        now[0] += 1
        assert standby.try_acquire_or_renew() and standby.is_leader()
        assert fake.lease is not None and fake.lease["spec"]["holderIdentity"] == "b"
        assert fake.lease["spec"]["leaseTransitions"] == 1
