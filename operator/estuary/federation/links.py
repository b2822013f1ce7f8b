"""The FederationLinks this cluster sends jobs through, and what it remembers about sent jobs.

`Links` keeps one `LinkRuntime` (and, with threads, one `LinkWorker`) per link, configures them
from the links in the cache, and posts each runtime the plan of copies this cluster wants at its
partner now. `Sent` is what this process remembers between steps about the jobs it sent: copies
it created and has not seen yet, links that refused a job, and copies still being removed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from estuary.api.aijob import FINISHED, RemoteCopy
from estuary.api.federationlink import FederationLink
from estuary.federation import lease
from estuary.federation.clients import PartnerFactory, ProviderFactory, default_partner_factory
from estuary.federation.home import HomeApi
from estuary.federation.plan import PlanEntry
from estuary.federation.provider import real_provider_factory
from estuary.federation.worker import LinkRuntime, LinkWorker
from estuary.state.cache import ClusterCache
from estuary.state.snapshot import ParsedJob

log = logging.getLogger("estuary.federation")
LinkObjects = dict[str, tuple[dict[str, Any], FederationLink]]  # name -> (as listed, parsed)


@dataclass(frozen=True)
class FederationConfig:
    namespace: str = "estuary-system"  # where FederationLinks and their Secrets live
    cluster_name: str = "local"  # this cluster's id, marked on the copies it sends
    check_seconds: float = 2.0  # partner side: how often copies are read for renewals
    refusal_backoff_seconds: float = 300.0  # a link that refused a job is not tried again this long
    timing: lease.Timing = field(default_factory=lease.Timing)
    # partner side: where copies may be, and the Secret with each origin cluster's signing key
    burst_namespaces: frozenset[str] = frozenset({"estuary-burst"})
    origin_keys_secret: str = "estuary-origin-keys"
    fence_image: str = "estuary"  # the image with `estuary fence` (the chart sets the operator's own)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FederationConfig:
        env = os.environ if env is None else env
        return cls(
            namespace=env.get("ESTUARY_NAMESPACE") or env.get("POD_NAMESPACE") or "estuary-system",
            cluster_name=env.get("ESTUARY_CLUSTER_NAME") or "local",
            check_seconds=float(env.get("ESTUARY_FEDERATION_CHECK_SECONDS") or 2.0),
            burst_namespaces=frozenset(
                n.strip()
                for n in (env.get("ESTUARY_BURST_NAMESPACES") or "estuary-burst").split(",")
                if n.strip()
            ),
            origin_keys_secret=env.get("ESTUARY_ORIGIN_KEYS_SECRET") or "estuary-origin-keys",
            fence_image=env.get("ESTUARY_FENCE_IMAGE") or "estuary",
        )


@dataclass
class Sent:
    """Per-process memory about jobs this cluster sent, keyed by job (forgotten with the job)."""

    fresh: dict[str, dict[str, Any]] = field(default_factory=dict)  # copy name -> manifest: burst by
    # this process and not yet seen at the partner (nothing can exist there before it is sent)
    excluded: dict[str, dict[str, float]] = field(default_factory=dict)  # job -> link -> until (wall)
    # job -> link -> (its previous copy there, heartbeats when it was given up): the job goes back
    # to that link only once a later listing shows the copy (and so its pods) gone
    cleanup: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)
    stopping: dict[str, tuple[str, str]] = field(default_factory=dict)  # copy name -> (reason, why):
    # agentless attempts being removed before their job requeues, restarts or fails

    def keep_only(self, jobs: Mapping[str, ParsedJob]) -> None:
        for memo in (self.excluded, self.cleanup):
            for key in [k for k in memo if k not in jobs]:
                del memo[key]
        copies = {job.status.remote.name for job in jobs.values() if job.status.remote is not None}
        for name in [n for n in self.stopping if n not in copies]:
            del self.stopping[name]


Placed = dict[str, list[tuple[ParsedJob, RemoteCopy]]]  # link -> local jobs placed there


def placed(jobs: Mapping[str, ParsedJob]) -> Placed:
    """The jobs of this cluster that point at a copy, by link."""
    out: Placed = {}
    for job in jobs.values():
        ref = job.status.remote
        if ref is not None:
            out.setdefault(ref.link, []).append((job, ref))
    return out


class Links:
    def __init__(
        self,
        home: HomeApi,
        cache: ClusterCache,
        config: FederationConfig,
        partner_factory: PartnerFactory = default_partner_factory,
        mono: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        threads: bool = True,
        provider_factory: ProviderFactory = real_provider_factory,
    ) -> None:
        self.home, self.cache, self.config = home, cache, config
        self.provider_factory = provider_factory
        self.partner_factory, self.mono, self.wall, self.threads = partner_factory, mono, wall, threads
        self.runtimes: dict[str, LinkRuntime] = {}
        self.workers: dict[str, LinkWorker] = {}
        self.stop = threading.Event()
        self._posted: dict[str, frozenset[str]] = {}
        self._bad: set[str] = set()

    def close(self) -> None:
        self.stop.set()
        for runtime in self.runtimes.values():
            runtime.wake.set()

    def sync(self) -> LinkObjects:
        """The links in Estuary's namespace; each gets a runtime (and a worker thread)."""
        out: LinkObjects = {}
        for raw in self.cache.items("federationlinks").values():
            meta = raw.get("metadata") or {}
            if meta.get("namespace") != self.config.namespace or meta.get("deletionTimestamp"):
                continue
            name = str(meta["name"])
            try:
                link = FederationLink.model_validate(raw)
            except ValidationError:
                if name not in self._bad:
                    log.error("FederationLink %s/%s does not parse; ignored", self.config.namespace, name)
                    self._bad.add(name)
                continue
            self._bad.discard(name)
            out[name] = (raw, link)
            self.runtime(name).configure(link.spec, str(meta.get("uid") or ""))
            worker = self.workers.get(name)
            if self.threads and (worker is None or not worker.is_alive()):
                self.workers[name] = LinkWorker(self.runtimes[name], self.stop)
                self.workers[name].start()
        for name, runtime in self.runtimes.items():
            if name not in out and not runtime.deleted:
                runtime.mark_deleted()
        return out

    def runtime(self, name: str) -> LinkRuntime:
        runtime = self.runtimes.get(name)
        if runtime is None:
            runtime = LinkRuntime(
                name,
                self.config.cluster_name,
                self.config.namespace,
                self.home,
                self.partner_factory,
                self.mono,
                self.wall,
                self.config.timing,
                self.provider_factory,
                self.config.fence_image,
            )
            self.runtimes[name] = runtime
        return runtime

    def post_plans(self, jobs: Mapping[str, ParsedJob], fresh: Mapping[str, dict[str, Any]]) -> None:
        """Tell each link's worker which copies this cluster wants at its partner now."""
        by_link = placed(jobs)
        for name in by_link:
            if name not in self.runtimes:  # a link this process never saw: it can only be given up
                self.runtime(name).mark_deleted()
        for name, runtime in self.runtimes.items():
            entries = {ref.name: _entry(job, ref, fresh) for job, ref in by_link.get(name, [])}
            runtime.post_plan(entries, lambda n: n in fresh)
            names = frozenset(entries)
            if self._posted.get(name) != names:
                self._posted[name] = names
                runtime.wake.set()


def _entry(job: ParsedJob, ref: RemoteCopy, fresh: Mapping[str, dict[str, Any]]) -> PlanEntry:
    return PlanEntry(
        ref.name,
        job.key,
        str(job.raw["metadata"].get("uid")),
        job.status.attempt,
        ref.lease_seconds,
        job.obj.spec.preemption.grace_period_seconds,
        finished=job.phase in FINISHED,
        suspend=job.obj.spec.suspend,
        manifest=fresh.get(ref.name),
    )
