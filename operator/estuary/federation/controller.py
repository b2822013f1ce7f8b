"""The federation controller: bursting jobs to partner clusters, beside the job controller.

It never calls the job controller, and the job controller never calls it: they meet in AIJob
status, as Kueue's MultiKueue meets its scheduler in Workload status. The job controller's cycle
writes why a job waits (`reason`, `queuePosition`); this controller reads that, decides whether
the job goes to a partner, and writes the placement at the link (or a `Burst` condition saying
why not), the mirrored state of the copy, and FederationLink status. Both write through the same
`JobWriter`.

Each loop tick (handlers/loop.py):
  `check_leases()`, before the job controller's step: partner side, stop the copies whose origin
  stopped renewing their lease (expiry.py);
  `step()`, after it: origin side, follow the copies of burst jobs (following.py), burst waiting
  jobs (bursting.py), post each link's worker its plan (links.py), write link status
  (linkstatus.py).
All I/O with partners happens in per-link worker threads (worker.py); a step only reads their
latest results and posts plans, so it never waits on a partner.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client

from estuary.federation.bursting import Bursting
from estuary.federation.clients import PartnerFactory, ProviderFactory, default_partner_factory
from estuary.federation.expiry import LeaseExpiry, OriginKeys
from estuary.federation.following import Following
from estuary.federation.home import HomeApi, RealHomeApi
from estuary.federation.links import FederationConfig, Links, Sent, placed
from estuary.federation.linkstatus import LinkStatus
from estuary.federation.observer import LeaseObserver
from estuary.federation.origins import Verdict
from estuary.federation.provider import real_provider_factory
from estuary.federation.worker import LinkRuntime
from estuary.kube.status import JobWriter
from estuary.state.cache import ClusterCache
from estuary.state.snapshot import ClusterView

log = logging.getLogger("estuary.federation")


def view_pools(view: ClusterView) -> list[dict[str, Any]]:
    return [j.raw for j in view.judged_pools.values()]


class FederationController:
    def __init__(
        self,
        home: HomeApi,
        cache: ClusterCache,
        writer: JobWriter,
        config: FederationConfig | None = None,
        partner_factory: PartnerFactory = default_partner_factory,
        mono: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        threads: bool = True,
        provider_factory: ProviderFactory = real_provider_factory,
    ) -> None:
        self.config = config or FederationConfig()
        self.links = Links(home, cache, self.config, partner_factory, mono, wall, threads, provider_factory)
        self.sent = Sent()
        self.link_status = LinkStatus(home, cache, self.config.namespace, wall)
        keys = OriginKeys(
            home, self.config.namespace, self.config.origin_keys_secret, self.config.burst_namespaces
        )
        self.expiry = LeaseExpiry(home, writer, keys, wall, self.config.check_seconds, threads)
        self.following = Following(writer, self.config, self.sent, self.link_status)
        self.bursting = Bursting(
            writer, self.config, self.sent, self.links.runtimes, self.link_status.book.spent
        )

    @classmethod
    def from_env(cls, api: client.ApiClient, cache: ClusterCache, writer: JobWriter) -> FederationController:
        return cls(RealHomeApi(api), cache, writer, FederationConfig.from_env())

    @property
    def runtimes(self) -> dict[str, LinkRuntime]:
        return self.links.runtimes

    @property
    def observer(self) -> LeaseObserver:
        return self.expiry.observer

    def close(self) -> None:
        self.links.close()

    def check_leases(self, view: ClusterView, now: float) -> None:
        """Partner side: stop every copy whose lease ran out (before anything else acts on it)."""
        verdicts = self.expiry.judge(view.jobs, now)
        self.expiry.check(view.jobs, verdicts, now, self.links.stop)

    def step(self, view: ClusterView, now: float) -> None:
        """Origin side: follow burst jobs, burst waiting ones, post plans, write link status."""
        jobs = view.jobs
        links = self.links.sync()
        home_pools = frozenset(str(p["metadata"].get("uid")) for p in view_pools(view))
        for runtime in self.links.runtimes.values():
            runtime.home_pool_uids = home_pools
        self.link_status.carry_over(links, now)
        self.links.post_plans(jobs, self.sent.fresh)
        for job in list(jobs.values()):
            ref = job.status.remote
            if ref is None:  # only jobs this cluster sent have a remote copy
                continue
            try:
                self.following.follow(job, ref, self.links.runtimes[ref.link], links, now)
            except Exception as exc:
                log.error(
                    "federation: following %s at %s failed (%s); retrying next step",
                    job.key,
                    ref.link,
                    type(exc).__name__,
                )
        verdicts = self.expiry.judge(jobs, now)
        copies = frozenset(k for k, v in verdicts.items() if v.verdict in (Verdict.COPY, Verdict.UNKNOWN))
        self.bursting.burst(jobs, links, placed(jobs), now, copies)
        self.links.post_plans(jobs, self.sent.fresh)
        self.link_status.write(links, self.links.runtimes, placed(jobs), now)
        self.link_status.write_unused(links, now)
        self.sent.keep_only(jobs)
