"""One thread per FederationLink does all I/O with the partner; the controller thread only posts
plans to it and reads its latest results (`LinkRuntime`), so a slow or dead partner never blocks
a controller step.

A heartbeat: read the kubeconfig Secret, build (or reuse) a client with short timeouts, read the
partner's ComputePools (capacity), make sure the namespace for copies exists, list this cluster's
copies there, renew the lease of every copy still wanted, create copies of newly burst jobs,
delete copies nobody points at any more (orphans), and publish what it saw.

Exactly once hinges on one handshake between the two threads (`Track`): the worker renews or
creates a copy only while the controller has not given it up, and the controller gives it up
only when no request to the partner is in flight for it and `lease + margin` has passed since the
last request that may have reached the partner (`lease.origin_may_give_up`). Both happen under
the runtime's lock.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from estuary.api.aijob import Phase
from estuary.api.federationlink import FederationLinkSpec
from estuary.federation import cleanup, lease, naming, origins
from estuary.federation.choose import TypeOffer
from estuary.federation.clients import Clients, PartnerFactory, ProviderFactory, default_partner_factory
from estuary.federation.home import HomeApi
from estuary.federation.network import Meter, Network
from estuary.federation.partner import (
    REFUSED,
    Partner,
    PartnerError,
)
from estuary.federation.plan import Health, PlanEntry, Snapshot, Track, capacity_of
from estuary.federation.provider import real_provider_factory
from estuary.federation.remote import CopyView, view

SELF_LINK = "PointsAtThisCluster"
log = logging.getLogger("estuary.federation")
ACTIVE = (None, Phase.QUEUED, Phase.ADMITTED)  # a copy whose workers are not all running yet


class LinkRuntime:
    """State shared by one link's worker thread and the controller thread (under `lock`)."""

    def __init__(
        self,
        name: str,
        origin: str,
        home_namespace: str,
        home: HomeApi,
        partner_factory: PartnerFactory = default_partner_factory,
        mono: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        timing: lease.Timing = lease.DEFAULT_TIMING,
        provider_factory: ProviderFactory = real_provider_factory,
        fence_image: str = "estuary",
    ) -> None:
        self.name, self.origin, self.home_namespace = name, origin, home_namespace
        self.origin_label = naming.label_value(origin)
        self.home, self.mono, self.wall = home, mono, wall
        self.timing = timing
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.spec: FederationLinkSpec | None = None
        self.link_uid = ""  # copies this link sent carry it; only those are ever collected
        self.deleted = False
        self.plan: dict[str, PlanEntry] | None = None
        self.tracks: dict[str, Track] = {}
        self.health = Health(False, "Pending", "no heartbeat yet")
        self.capacity: tuple[TypeOffer, ...] = ()
        self.copies: dict[str, CopyView] = {}
        self.listed: frozenset[str] = frozenset()
        self.accepting: tuple[bool, str] = (True, "")
        self.heartbeats = 0
        self.home_pool_uids: frozenset[str] = frozenset()  # this cluster's pools (set each step)
        self.network = Network()
        self.meter = Meter(mono, wall)
        self._nonce = uuid.uuid4().hex[:8]
        self.clients = Clients(name, home_namespace, home, partner_factory, provider_factory, fence_image)

    # ---- controller thread -----------------------------------------------------------------
    def configure(self, spec: FederationLinkSpec, uid: str = "") -> None:
        with self.lock:
            self.spec, self.deleted, self.link_uid = spec, False, uid

    def mark_deleted(self) -> None:
        with self.lock:
            self.deleted = True
            self.health = Health(
                False, "LinkDeleted", f"FederationLink {self.name} was deleted", self.health.last_ok
            )
        self.wake.set()

    def post_plan(self, entries: Mapping[str, PlanEntry], fresh: Callable[[str], bool]) -> None:
        """The copies this cluster wants at the partner now. `fresh(name)`: burst by this process
        and not created yet (nothing can exist at the partner before the worker sends it)."""
        now = self.mono()
        with self.lock:
            self.plan = dict(entries)
            for name in entries:
                if name not in self.tracks:
                    self.tracks[name] = Track(anchor=now, may_exist=not fresh(name))
            for name in [n for n in self.tracks if n not in entries]:
                del self.tracks[name]

    def try_give_up(self, name: str, lease_seconds: float, grace_seconds: float) -> bool:
        """Give the copy up, for good, if no copy can be running at the partner any more (or
        none was ever sent). Once this says True, the worker never renews or creates it again."""
        with self.lock:
            track = self.tracks.get(name)
            if track is None:
                return False
            if track.abandoned:
                return True
            if track.in_flight:
                return False
            if track.stop_at is not None and track.gone:  # removed, and a later listing shows it
                track.abandoned = True
                return True
            if not track.may_exist and (track.refused is not None or not self.health.ready or self.deleted):
                track.abandoned = True
                return True
            if lease.origin_may_give_up(track.anchor, lease_seconds, grace_seconds, self.mono(), self.timing):
                track.abandoned = True
                return True
            return False

    def give_up_now(self, name: str) -> bool:
        """Give a copy up that the partner reports stopped for good (no renewal in flight)."""
        with self.lock:
            track = self.tracks.get(name)
            if track is None or track.in_flight:
                return False
            track.abandoned = True
            return True

    def stop(self, name: str) -> None:
        """Remove the attempt at the partner: no more renewals; the worker deletes it and watches
        for a listing without it (`try_give_up` then says yes)."""
        with self.lock:
            track = self.tracks.get(name)
            if track is not None and track.stop_at is None:
                track.stop_at = self.mono()
        self.wake.set()

    def stopping(self, name: str) -> bool:
        with self.lock:
            track = self.tracks.get(name)
            return track is not None and track.stop_at is not None

    def pending_for(self, name: str) -> float:
        """Seconds this process has seen the copy with its workers not all running (0: running)."""
        with self.lock:
            track = self.tracks.get(name)
            if track is None or track.pending_since is None:
                return 0.0
            return max(0.0, self.mono() - track.pending_since)

    def refusal(self, name: str) -> str | None:
        with self.lock:
            track = self.tracks.get(name)
            return track.refused if track else None

    def running_hours(self, name: str) -> float:
        """Hours this process saw the copy Running (a lower bound, for spend when it is lost)."""
        with self.lock:
            track = self.tracks.get(name)
            if track is None or track.running_since is None or track.running_seen is None:
                return 0.0
            return max(0.0, track.running_seen - track.running_since) / 3600.0

    def running_for(self, name: str) -> float:
        """Seconds since this process first saw the copy Running (0 when it did not)."""
        with self.lock:
            track = self.tracks.get(name)
            if track is None or track.running_since is None:
                return 0.0
            return max(0.0, self.mono() - track.running_since)

    def snapshot(self) -> Snapshot:
        with self.lock:
            return Snapshot(
                self.health,
                self.capacity,
                dict(self.copies),
                self.listed,
                self.accepting,
                self.heartbeats,
                self.network,
            )

    def period(self) -> float:
        """Heartbeat period: the link's, and often enough to renew a lease three times over."""
        with self.lock:
            spec = self.spec
        if spec is None:
            return 5.0
        return float(max(1.0, min(spec.heartbeat_seconds, spec.lease_seconds / 3)))

    # ---- worker thread ---------------------------------------------------------------------
    def _fail(self, err: PartnerError) -> None:
        with self.lock:
            changed = (self.health.reason, self.health.message) != (err.kind, err.message)
            self.health = Health(False, err.kind, err.message, self.health.last_ok)
        log.log(logging.WARNING if changed else logging.DEBUG, "federation link %s: %s", self.name, err)

    def _not_home(self, pools: list[dict[str, Any]]) -> None:
        """A link whose kubeconfig points at this very cluster sees this cluster's own pools (a
        uid is unique to one object in one cluster): it is never a partner."""
        uids = {(p.get("metadata") or {}).get("uid") for p in pools}  # agentless offers carry none
        if self.home_pool_uids & {str(uid) for uid in uids if uid}:
            message = (
                "the kubeconfig points at this very cluster (its ComputePools are this cluster's "
                "own): point it at the partner's API server"
            )
            raise PartnerError(SELF_LINK, message)

    def heartbeat(self) -> None:
        with self.lock:
            spec, plan, deleted = self.spec, self.plan, self.deleted
        if spec is None or deleted:
            return
        namespace = spec.remote_namespace
        started = self.wall()
        try:
            partner = self.clients.partner(spec)
            pools = partner.list_pools()
            self._not_home(pools)
            partner.ensure_namespace(namespace)
            network = self.meter.measure(partner, spec.network)
            listed_at = self.mono()
            found = {c["metadata"]["name"]: c for c in partner.list_copies(namespace, self.origin_label)}
        except PartnerError as err:
            self._fail(err)
            return
        copies: dict[str, CopyView] = {}
        accepting: tuple[bool, str] | None = None
        for name, entry in (plan or {}).items():
            raw = found.get(name)
            if self.stopping(name):
                cleanup.remove_stopped(self, partner, namespace, name, raw, listed_at)
                if raw is not None:
                    copies[name] = view(raw)
            elif raw is not None and view(raw).origin_uid == entry.origin_uid:
                copy = view(raw)
                copies[name] = self._keep(partner, namespace, entry, copy)
            elif entry.manifest is not None and not entry.finished:
                created, accepted = self._create(partner, namespace, entry)
                if created is not None:
                    copies[name] = created
                if accepted is not None:
                    accepting = accepted
        if plan is not None:
            cleanup.collect_orphans(self, partner, namespace, found, plan)
        with self.lock:
            self.health = Health(
                True,
                "Ready",
                f"partner answered: {len(pools)} ComputePools, "
                f"{len(found)} jobs from this cluster in {namespace}",
                started,
            )
            self.capacity = capacity_of(pools)
            self.network = network
            self.copies, self.listed = copies, frozenset(found)
            if accepting is not None:
                self.accepting = accepting
            self.heartbeats += 1

    def _keep(self, partner: Partner, namespace: str, entry: PlanEntry, copy: CopyView) -> CopyView:
        """Renew the lease of a copy that is still wanted; keep its suspend in step with ours."""
        name = entry.remote_name
        with self.lock:
            track = self.tracks.get(name)
            if track is None or track.abandoned:
                return copy
            track.seen = track.may_exist = True
            now = self.mono()
            if copy.phase == Phase.RUNNING:
                track.running_since = track.running_since or now
                track.running_seen = now
            track.pending_since = (track.pending_since or now) if copy.phase in ACTIVE else None
            if entry.finished or copy.finished:
                return copy
            track.in_flight = True
            track.renewals += 1
            token = f"{self._nonce}.{track.renewals}"
        body: dict[str, Any] = {
            "metadata": {
                "annotations": {naming.LEASE_RENEW: token, naming.LEASE_SECONDS: str(entry.lease_seconds)}
            }
        }
        if copy.suspend != entry.suspend:
            body["spec"] = {"suspend": entry.suspend}
        reached = False
        try:
            updated = partner.patch_copy(namespace, name, body)
            reached = True
            copy = view(updated)
        except PartnerError as err:
            reached = err.maybe_applied
            log.warning("federation link %s: renewing %s: %s", self.name, entry.job_key, err)
        finally:
            with self.lock:
                track.in_flight = False
                if reached:
                    track.anchor = self.mono()
        return copy

    def _create(
        self, partner: Partner, namespace: str, entry: PlanEntry
    ) -> tuple[CopyView | None, tuple[bool, str] | None]:
        name = entry.remote_name
        with self.lock:
            track = self.tracks.get(name)
            if track is None or track.abandoned or track.seen or track.stop_at or entry.manifest is None:
                return None, None
            track.in_flight = True
        reached, created, accepted = False, None, None
        manifest = entry.manifest
        if self.clients.signing_key is not None:
            manifest = origins.sign(manifest, self.clients.signing_key)
        try:
            created = view(partner.create_copy(namespace, manifest))
            reached, accepted = True, (True, "")
        except PartnerError as err:
            if err.status == 409:  # an earlier create of ours got through after all
                reached = True
            elif err.kind == REFUSED or err.status in (401, 403):
                accepted = (False, f"refused {entry.job_key}: {err.message}")
                with self.lock:
                    track.refused = err.message
            reached = reached or err.maybe_applied
            log.warning("federation link %s: creating the copy of %s: %s", self.name, entry.job_key, err)
        finally:
            with self.lock:
                track.in_flight = False
                if reached:
                    track.anchor, track.may_exist = self.mono(), True
                if created is not None:
                    track.seen = True
        return created, accepted


class LinkWorker(threading.Thread):
    def __init__(self, runtime: LinkRuntime, stop: threading.Event) -> None:
        super().__init__(name=f"estuary-link-{runtime.name}", daemon=True)
        self.runtime, self.stop = runtime, stop

    def run(self) -> None:
        runtime = self.runtime
        while not self.stop.is_set() and not runtime.deleted:
            started = runtime.mono()
            try:
                runtime.heartbeat()
            except Exception as exc:  # never the text: it may quote a request or the kubeconfig
                runtime._fail(PartnerError("Unreachable", f"heartbeat failed ({type(exc).__name__})"))
            elapsed = runtime.mono() - started
            runtime.wake.wait(max(1.0, runtime.period() - elapsed))
            runtime.wake.clear()
