"""Watch handlers feed the cache; startup primes it from a full listing and starts the loop.

Pods and AIJobs, nearly all of the events, are watched by threads of Estuary's own
(kube/watch.py: `RawWatch`), which need none of Kopf's per-event machinery; the other kinds by
Kopf. Each Kopf-watched kind also has an index handler that indexes nothing: Kopf calls no event
handler until each indexed kind has listed, so the first event that reaches `_feed` says Kopf's
watches have listed; once the own watches have listed too, handlers/resync.py reconciles the
cache with a fresh listing before the loop acts.

The handlers only record events (no decisions, no writes), so Kopf never writes to AIJobs itself:
no finalizers, no annotations, no spec changes. The loop's thread (loop.py) does all writing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import kopf
from kubernetes import client, config

from estuary import health
from estuary.api.base import GROUP, VERSION
from estuary.control import timeshare
from estuary.control.controller import SHARED_STATUS_SPACING_S, TICK_SPACING_S, JobController, Settings
from estuary.control.seal import Sealer
from estuary.control.writes import WORKERS
from estuary.core import Policy
from estuary.federation import FederationController
from estuary.handlers.loop import Loop
from estuary.handlers.resync import Resync
from estuary.health import HEALTH
from estuary.kube import listing, sealkey
from estuary.kube.client import RealKubeApi
from estuary.kube.lease import LeaderElector
from estuary.kube.watch import RawWatch
from estuary.ledger import Ledger
from estuary.state.cache import ClusterCache

log = logging.getLogger("estuary.operator")
CACHE = ClusterCache()
_STOP = threading.Event()
_KOPF_LISTED = threading.Event()  # Kopf's watches have listed (see `_feed`)
OWN_WATCHES = ("pods", "aijobs")  # the kinds with most events: kube/watch.py, not Kopf


def _api_client() -> client.ApiClient:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    configuration = client.Configuration.get_default_copy()
    # one connection per thread that talks to the API server: the background writes and creates
    # (control/writes.py), the events, the loop and the lease
    configuration.connection_pool_maxsize = 2 * WORKERS + 8
    return client.ApiClient(configuration)


class NoDiffBase(kopf.DiffBaseStorage):
    """No "last handled" essence: Estuary registers no change handlers (only the events and
    indexes below), yet Kopf would build one for every event by deep-copying the object (a sixth
    of the watching thread's time in a profile of 156 workers starting) and then diff it."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.server_timeout = 300  # the API server ends each watch after this long...
    settings.watching.client_timeout = 330  # ...and a watch that hangs past it is dropped and re-made
    settings.watching.connect_timeout = 10
    port = int(os.environ.get("ESTUARY_METRICS_PORT", "0") or 0)
    if port:  # /healthz answers from the start (the loop's heartbeat); /readyz once synced
        health.serve(port)
    api = _api_client()
    listing.load(api, CACHE)
    log.info("cache primed: %d jobs, %d nodes", len(CACHE.items("aijobs")), len(CACHE.items("nodes")))
    jurisdiction = os.environ.get("ESTUARY_JURISDICTION") or None
    kube = RealKubeApi(api)
    key = sealkey.load(api, _namespace())
    sealer = Sealer(key) if key is not None else Sealer.ephemeral()
    policy = Policy(time_sharing=timeshare.from_env())  # checked by `estuary operator` before it starts
    chosen = Settings(
        jurisdiction=jurisdiction,
        policy=policy,
        shared_status_spacing_s=SHARED_STATUS_SPACING_S,
        tick_spacing_s=TICK_SPACING_S,
    )
    jobs = JobController(CACHE, kube, chosen, sealer=sealer)
    federation = FederationController.from_env(api, CACHE, jobs.writer)
    loop = Loop(CACHE, jobs, federation, ledger=Ledger(kube, later=jobs.background.latest))
    _STOP.clear()
    fetchers = listing.fetchers(api)
    own = [RawWatch(CACHE, kind, fetchers[kind]) for kind in OWN_WATCHES]
    for watch in own:
        memo[f"{watch.kind}_watch_thread"] = _thread(watch.run, f"estuary-watch-{watch.kind}")
    relist_s = float(os.environ.get("ESTUARY_RELIST_SECONDS", "300") or 300)
    listed = (_KOPF_LISTED, *(watch.listed for watch in own))
    resync = Resync(CACHE, lambda: listing.load(api, CACHE), listed, relist_s)
    memo["resync_thread"] = _thread(resync.run, "estuary-resync")
    active = _leader_election(api, memo)
    memo["controller_thread"] = _thread(
        lambda stop: loop.run(stop, active, synced=CACHE.synced.is_set), "estuary-controller"
    )
    memo["background_writes"] = jobs.background
    log.info(
        "controller started (jurisdiction: %s; time-sharing: %s)",
        jurisdiction or "not set",
        policy.time_sharing or "off",
    )


def _namespace() -> str:
    """Estuary's own namespace: its Lease, its placement key, its FederationLinks."""
    return os.environ.get("ESTUARY_NAMESPACE") or os.environ.get("POD_NAMESPACE") or "estuary-system"


def _thread(target: Callable[[threading.Event], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, args=(_STOP,), name=name, daemon=True)
    thread.start()
    return thread


def _leader_election(api: client.ApiClient, memo: kopf.Memo) -> Callable[[], bool]:
    """With ESTUARY_LEADER_ELECTION=true (the Helm chart sets it), only the Lease holder acts."""
    if os.environ.get("ESTUARY_LEADER_ELECTION", "false").lower() != "true":
        return lambda: True
    namespace = _namespace()
    identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    elector = LeaderElector(api, namespace, identity)
    HEALTH.leader = False
    thread = threading.Thread(target=elector.run, args=(_STOP,), name="estuary-lease", daemon=True)
    thread.start()
    memo["lease_thread"] = thread
    return elector.is_leader


@kopf.on.cleanup()
def cleanup(memo: kopf.Memo, **_: Any) -> None:
    _STOP.set()
    CACHE.changed.set()
    for name in ("controller_thread", "lease_thread", "resync_thread"):
        thread = memo.get(name)
        if thread is not None:
            thread.join(timeout=10)
    writes = memo.get("background_writes")
    if writes is not None:  # else the process waits for every queued write before it exits
        writes.close()


def _feed(kind: str) -> Any:
    async def handler(event: dict[str, Any], **_: Any) -> None:
        _KOPF_LISTED.set()  # Kopf calls no event handler before every index kind has listed
        obj = event.get("object")
        if obj:
            CACHE.apply(kind, event.get("type"), dict(obj))

    return handler


# The index handlers' filter: no object carries it, so Kopf never calls them (calling one costs
# as much as feeding the event), yet holds every event handler until each kind has listed.
NEVER_INDEXED = {"estuary.dev/kopf-index": "never"}


def _listed(**_: Any) -> None:
    """Indexes nothing: its only effect is that Kopf holds every event handler until this kind
    (and every other) has listed."""
    return None


for _group, _version, _plural in (
    (GROUP, VERSION, "computepools"),
    ("", "v1", "nodes"),
    ("", "v1", "namespaces"),
    (GROUP, VERSION, "federationlinks"),
):
    kopf.index(_group, _version, _plural, id=f"listed-{_plural}", labels=NEVER_INDEXED)(_listed)
    kopf.on.event(_group, _version, _plural, id=f"feed-{_plural}")(_feed(_plural))
