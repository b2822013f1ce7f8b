"""Watch handlers feed the cache; startup primes it from a full listing and starts the loop.

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
from estuary.control.controller import JobController, Settings
from estuary.control.writes import WORKERS
from estuary.federation import FederationController
from estuary.handlers.loop import Loop
from estuary.health import HEALTH
from estuary.kube import listing
from estuary.kube.client import RealKubeApi
from estuary.kube.lease import LeaderElector
from estuary.ledger import Ledger
from estuary.state.cache import ClusterCache

log = logging.getLogger("estuary.operator")
CACHE = ClusterCache()
_STOP = threading.Event()


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


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300  # the API server ends each watch after this long...
    settings.watching.client_timeout = 330  # ...and a watch that hangs past it is dropped and re-made
    settings.watching.connect_timeout = 10
    port = int(os.environ.get("ESTUARY_METRICS_PORT", "0") or 0)
    if port:  # /healthz answers from the start (the loop's heartbeat); /readyz once synced
        health.serve(port)
    api = _api_client()
    listing.load(api, CACHE)
    HEALTH.synced = True
    log.info("cache primed: %d jobs, %d nodes", len(CACHE.items("aijobs")), len(CACHE.items("nodes")))
    jurisdiction = os.environ.get("ESTUARY_JURISDICTION") or None
    kube = RealKubeApi(api)
    jobs = JobController(CACHE, kube, Settings(jurisdiction=jurisdiction))
    federation = FederationController.from_env(api, CACHE, jobs.writer)
    loop = Loop(CACHE, jobs, federation, ledger=Ledger(kube))
    _STOP.clear()
    active = _leader_election(api, memo)
    thread = threading.Thread(target=loop.run, args=(_STOP, active), name="estuary-controller", daemon=True)
    thread.start()
    memo["controller_thread"] = thread
    memo["background_writes"] = jobs.background
    log.info("controller started (jurisdiction: %s)", jurisdiction or "not set")


def _leader_election(api: client.ApiClient, memo: kopf.Memo) -> Callable[[], bool]:
    """With ESTUARY_LEADER_ELECTION=true (the Helm chart sets it), only the Lease holder acts."""
    if os.environ.get("ESTUARY_LEADER_ELECTION", "false").lower() != "true":
        return lambda: True
    namespace = os.environ.get("POD_NAMESPACE") or "estuary-system"
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
    for name in ("controller_thread", "lease_thread"):
        thread = memo.get(name)
        if thread is not None:
            thread.join(timeout=10)
    writes = memo.get("background_writes")
    if writes is not None:  # else the process waits for every queued write before it exits
        writes.close()


def _feed(kind: str) -> Any:
    async def handler(event: dict[str, Any], **_: Any) -> None:
        obj = event.get("object")
        if obj:
            CACHE.apply(kind, event.get("type"), dict(obj))

    return handler


kopf.on.event(GROUP, VERSION, "aijobs", id="feed-aijobs")(_feed("aijobs"))
kopf.on.event(GROUP, VERSION, "computepools", id="feed-computepools")(_feed("computepools"))
kopf.on.event("", "v1", "nodes", id="feed-nodes")(_feed("nodes"))
kopf.on.event("", "v1", "pods", id="feed-pods")(_feed("pods"))
kopf.on.event("", "v1", "namespaces", id="feed-namespaces")(_feed("namespaces"))
kopf.on.event(GROUP, VERSION, "federationlinks", id="feed-federationlinks")(_feed("federationlinks"))
