"""A watch that feeds the cache straight from the API server's JSON: the pods, beside Kopf.

Why it exists: pods bring most of the events an operator sees (every worker is created, bound,
started, finished and deleted), and Estuary's handlers only record events in the cache. Kopf's
per-event machinery (a worker task per object, each handler's keyword arguments, its progress
bookkeeping) cost a third of the operator's CPU in the burst benchmark (bench/operator_steady.py),
on the two cores the API server needs too. So this thread lists the kind (in pages, raw JSON,
kube/listing.py), reconciles the cache with the listing, and then watches from the listing's
resourceVersion, applying each event as it arrives: one `json.loads` and one `cache.apply`.

As Kopf's watches do: each watch ends on the server after `WATCH_S` and is resumed from the last
version seen (bookmarks keep that version fresh on a quiet cluster), a hung connection is dropped
after `READ_TIMEOUT`, a failed one is retried after a growing pause, and a version the API server
no longer has (410 Gone) means listing again, reconciled so that nothing deleted meanwhile stays.
`listed` is set after the first listing: the resync (handlers/resync.py) waits for it as it waits
for Kopf's watches.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from estuary.kube import listing
from estuary.state.cache import ClusterCache

log = logging.getLogger("estuary.watch")
WATCH_S = 300  # the API server ends each watch after this long...
READ_TIMEOUT = (10.0, 330.0)  # ...and one silent past it (bookmarks included) is dropped and re-made
RETRY_MAX_S = 30.0


def _why(err: Exception) -> str:
    if isinstance(err, ApiException) and err.status == 404:
        return "the API server does not serve them: are Estuary's CRDs installed (crds/, or the Helm chart)?"
    if isinstance(err, ApiException) and err.status == 403:
        return "forbidden: grant the operator list and watch on them (the chart's ClusterRole does)"
    if isinstance(err, ApiException):
        return f"HTTP {err.status} {err.reason}"
    return f"{type(err).__name__}: {err}"


class Gone(Exception):
    """The version the watch asked from is older than the API server keeps: list again."""


class RawWatch:
    def __init__(self, cache: ClusterCache, kind: str, fetch: Callable[..., Any]) -> None:
        self.cache, self.kind, self.fetch = cache, kind, fetch  # fetch: the kind's list call
        self.listed = threading.Event()
        self.retry_s = 0.5  # the first pause after a failure; doubled after each one in a row

    def run(self, stop: threading.Event) -> None:
        version: str | None = None
        failures = 0
        while not stop.is_set():
            try:
                if version is None:
                    dropped, version = listing.reconcile(self.cache, self.kind, self.fetch)
                    if dropped and self.listed.is_set():
                        log.info(
                            "relisting %s dropped what no watch reported deleted: %s", self.kind, dropped[:5]
                        )
                    self.listed.set()
                version = self.follow(version, stop)
                failures = 0
            except Gone:
                log.info("the %s watch's version is gone from the API server; listing again", self.kind)
                version = None
            except Exception as err:  # the API server may be away: the same version is asked again
                failures += 1
                pause = min(RETRY_MAX_S, self.retry_s * 2 ** (failures - 1))
                log.warning("watching %s failed (%s); trying again in %.0fs", self.kind, _why(err), pause)
                stop.wait(pause)

    def follow(self, version: str | None, stop: threading.Event) -> str | None:
        """Apply events from `version` on until the watch ends; the last version seen."""
        try:
            answer = self.fetch(
                watch=True,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_S,
                _preload_content=False,
                _request_timeout=READ_TIMEOUT,
            )
        except ApiException as err:
            if err.status == 410:
                raise Gone() from None
            raise
        try:
            for line in iter_resp_lines(answer):
                if stop.is_set():
                    break
                version = self._apply(json.loads(line)) or version
        finally:
            answer.release_conn()
        return version

    def _apply(self, event: dict[str, Any]) -> str | None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise RuntimeError(f"the API server ended the watch: {obj.get('message') or obj}")
        if kind != "BOOKMARK":
            if log.isEnabledFor(logging.DEBUG):  # `estuary operator --verbose`
                meta = obj.get("metadata") or {}
                log.debug("%s %s %s/%s", kind, self.kind, meta.get("namespace"), meta.get("name"))
            self.cache.apply(self.kind, kind, obj)
        return (obj.get("metadata") or {}).get("resourceVersion")
