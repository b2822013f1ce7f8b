"""Keep the cache true to the API server when a watch missed something: a fresh listing, reconciled.

Why it exists: the operator primes its cache from a listing at start, but Kopf's watches list
again a moment later and send no DELETED event for an object deleted in between (a worker pod
deleted while the operator was down, finishing its termination just as it starts), nor for one
deleted while a watch was re-made after a gap (410 Gone). The cache would keep such a pod forever
and its job would wait for it to go. So, once every watch has listed (Kopf calls no event handler
before all its indexes are filled from their listings: handlers/operator.py) and the own pod
and AIJob watches have listed (kube/watch.py), this thread lists
every kind again and reconciles the cache with it (`ClusterCache.reconcile`), sets
`cache.synced` (the controller acts only from then on) and /readyz, then does it again every
`ESTUARY_RELIST_SECONDS` (300 by default).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from estuary.health import HEALTH, Health
from estuary.state.cache import ClusterCache

log = logging.getLogger("estuary.resync")

Relist = Callable[[], dict[str, list[str]]]
WATCHES_WAIT_S = 60.0  # if the watches say nothing by then (none could list), reconcile anyway
RETRY_S = 5.0


class Resync:
    def __init__(
        self,
        cache: ClusterCache,
        relist: Relist,
        watches_listed: Sequence[threading.Event],
        period_s: float = 300.0,
        health: Health = HEALTH,
    ) -> None:
        self.cache, self.relist, self.watches_listed = cache, relist, watches_listed
        self.period_s, self.health = period_s, health

    def run(self, stop: threading.Event) -> None:
        waited = 0.0
        while not self._listed() and waited < WATCHES_WAIT_S and not stop.is_set():
            stop.wait(0.5)
            waited += 0.5
        if not self._listed():
            log.warning("the watches have not listed after %.0fs; reconciling with a listing anyway", waited)
        while not stop.is_set() and not self.once("after the watches listed"):
            stop.wait(RETRY_S)
        if stop.is_set():
            return
        self.cache.synced.set()
        self.health.synced = True
        self.cache.changed.set()
        while not stop.wait(self.period_s):
            self.once("periodic")

    def _listed(self) -> bool:
        return all(listed.is_set() for listed in self.watches_listed)

    def once(self, why: str) -> bool:
        """One listing, reconciled; False (logged) when it failed."""
        try:
            dropped = self.relist()
        except Exception as err:  # the API server may be away; the next try lists again
            log.warning("relisting (%s) failed (%s: %s); trying again", why, type(err).__name__, err)
            return False
        stale = {kind: keys for kind, keys in dropped.items() if keys}
        if stale:
            shown = "; ".join(f"{kind}: {', '.join(keys[:5])}" for kind, keys in stale.items())
            log.info("relisting (%s) dropped objects no watch reported deleted: %s", why, shown)
        return True
