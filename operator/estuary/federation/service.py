"""Federation as the controller sees it: the two hooks it calls on every step.

Origin side (`after_cycle`): burst waiting jobs to the best FederationLink (`choose.py`), follow
the copies of burst jobs (mirror their phase and placement, give them up when their partner is
lost for longer than the lease allows, requeue them locally), account spend, and write each
link's status. Partner side (`before_lifecycles`): stop, for good, every copy whose origin stopped
renewing its lease. All I/O with partners happens in per-link worker threads (`worker.py`); the
hooks only read their latest results and post plans, so a step never waits on a partner.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from estuary.api.aijob import RemoteCopy
from estuary.api.federationlink import FederationLink
from estuary.control.conditions import set_condition
from estuary.federation import lease, naming, remote, spend
from estuary.federation.choose import Decision, JobDemand, LinkOffer, TypeOffer, Why, choose
from estuary.federation.home import HomeApi, RealHomeApi
from estuary.federation.observer import LeaseObserver
from estuary.federation.worker import (
    LinkRuntime,
    LinkWorker,
    PartnerFactory,
    PlanEntry,
    default_partner_factory,
)
from estuary.model import AcceptedType, Reason, Waiting
from estuary.state import codec
from estuary.state.cache import ClusterCache

if TYPE_CHECKING:
    from kubernetes import client

    from estuary.control.controller import Controller, ParsedJob

log = logging.getLogger("estuary.federation")
FINISHED = ("Succeeded", "Failed")
NEVER_HERE = (Reason.NEVER_FITS.value, Reason.NO_POOL.value, Reason.RESIDENCY.value)
BURST_CONDITION = "Burst"


@dataclass(frozen=True)
class FederationConfig:
    namespace: str = "estuary-system"  # where FederationLinks and their Secrets live
    cluster_name: str = "local"  # this cluster's id, marked on the copies it sends
    check_seconds: float = 2.0  # partner side: how often copies are read for renewals
    refusal_backoff_seconds: float = 300.0  # a link that refused a job is not tried again this long
    timing: lease.Timing = field(default_factory=lease.Timing)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FederationConfig:
        env = os.environ if env is None else env
        return cls(
            namespace=env.get("ESTUARY_NAMESPACE") or env.get("POD_NAMESPACE") or "estuary-system",
            cluster_name=env.get("ESTUARY_CLUSTER_NAME") or "local",
            check_seconds=float(env.get("ESTUARY_FEDERATION_CHECK_SECONDS") or 2.0),
        )


def _need(job: ParsedJob) -> tuple[int, int]:
    """(accelerators of all workers, accelerators to start) of a job."""
    spec = job.obj.spec
    workers = spec.elastic.max_workers if spec.elastic else spec.workers
    least = spec.elastic.min_workers if spec.elastic else spec.workers
    return workers * spec.accelerators_per_worker, least * spec.accelerators_per_worker


def _remote_of(job: ParsedJob) -> RemoteCopy | None:
    status = job.obj.status
    return status.remote if status is not None else None


class Federation:
    """Implements the controller's `Federation` hooks (see control/controller.py)."""

    def __init__(
        self,
        home: HomeApi,
        cache: ClusterCache,
        config: FederationConfig | None = None,
        partner_factory: PartnerFactory = default_partner_factory,
        mono: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        threads: bool = True,
    ) -> None:
        self.home, self.cache = home, cache
        self.config = config or FederationConfig()
        self.partner_factory, self.mono, self.wall, self.threads = partner_factory, mono, wall, threads
        self.runtimes: dict[str, LinkRuntime] = {}
        self.workers: dict[str, LinkWorker] = {}
        self.observer = LeaseObserver(home, wall, self.config.check_seconds)
        self._observer_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._nonce = uuid.uuid4().hex[:8]
        self._fresh: dict[str, dict[str, Any]] = {}  # copies burst by this process, not seen yet
        self._notes: dict[str, str] = {}  # job key -> why it may not burst
        self._excluded: dict[str, dict[str, float]] = {}  # job key -> link -> until (wall)
        # job key -> link -> (its previous copy there, heartbeats when it was given up): the job
        # goes back to that link only once a later listing shows the copy (and so its pods) gone
        self._cleanup: dict[str, dict[str, tuple[str, int]]] = {}
        self._posted: dict[str, frozenset[str]] = {}
        self._bad_links: set[str] = set()

    @classmethod
    def from_env(cls, api: client.ApiClient, cache: ClusterCache) -> Federation:
        return cls(RealHomeApi(api), cache, FederationConfig.from_env())

    def close(self) -> None:
        self._stop.set()
        for runtime in self.runtimes.values():
            runtime.wake.set()

    # ---- hooks -------------------------------------------------------------------------------
    def before_lifecycles(self, controller: Controller, jobs: Mapping[str, ParsedJob], now: float) -> None:
        """Partner side: stop every copy whose lease ran out (before anything else acts on it)."""
        copies = [j for j in jobs.values() if remote.is_copy(j.raw)]
        if copies:  # a cluster nobody sends jobs to does not poll for renewals
            self._start_observer()
        for job in copies:
            if job.phase not in FINISHED:
                try:
                    self._check_lease(controller, job, now)
                except Exception as exc:
                    log.error(
                        "federation: lease check of %s failed (%s); retrying next step",
                        job.key,
                        type(exc).__name__,
                    )

    def after_cycle(
        self,
        controller: Controller,
        jobs: Mapping[str, ParsedJob],
        waiting: Mapping[str, Waiting],
        now: float,
    ) -> None:
        links = self._sync_links()
        self._post_plans(jobs)
        for job in list(jobs.values()):
            ref = _remote_of(job)
            if ref is None or remote.is_copy(job.raw):
                continue
            try:
                self._follow(controller, job, ref, links, now)
            except Exception as exc:
                log.error(
                    "federation: following %s at %s failed (%s); retrying next step",
                    job.key,
                    ref.link,
                    type(exc).__name__,
                )
        self._burst(controller, jobs, waiting, links, now)
        self._post_plans(jobs)
        self._write_links(links, jobs, now)
        for memo in (self._excluded, self._cleanup):
            for key in [k for k in memo if k not in jobs]:
                del memo[key]

    def explain(self, job: ParsedJob, waiting: Waiting) -> Waiting:
        """The waiting reason with why the job may not burst, when it may not."""
        note = self._notes.get(job.key)
        if not note or note in waiting.message:
            return waiting
        return dataclasses.replace(waiting, message=f"{waiting.message}; {note}")

    # ---- partner side ------------------------------------------------------------------------
    def _start_observer(self) -> None:
        if not self.threads or (self._observer_thread is not None and self._observer_thread.is_alive()):
            return
        self._observer_thread = threading.Thread(
            target=self.observer.run, args=(self._stop,), name="estuary-lease-observer", daemon=True
        )
        self._observer_thread.start()

    def _check_lease(self, controller: Controller, job: ParsedJob, now: float) -> None:
        meta = job.raw["metadata"]
        notes = meta.get("annotations") or {}
        try:
            lease_seconds = min(3600, max(1, int(notes.get(naming.LEASE_SECONDS) or 120)))
        except ValueError:
            lease_seconds = 120
        persisted = job.obj.status.lease if job.obj.status else None
        token = persisted.token if persisted else None
        base = codec.timestamp(persisted.observed_at if persisted else None)
        seen = self.observer.get(str(meta.get("uid") or ""))
        if (
            seen is not None
            and seen.credited_at is not None
            and seen.token != token
            and (base is None or seen.credited_at > base)
        ):
            credited = float(math.floor(seen.credited_at))  # whole seconds, rounded down: earlier
            controller.patch_status(
                job, {"lease": {"token": seen.token, "observedAt": codec.rfc3339(credited)}}
            )
            base = credited
        if base is None:  # never credited: count from its creation (this cluster's API server)
            base = codec.timestamp(meta.get("creationTimestamp")) or now
        if not lease.partner_expired(base, lease_seconds, now):
            return
        origin = notes.get(naming.ORIGIN_CLUSTER, "?")
        message = (
            f"cluster {origin} did not renew this copy's lease for {lease_seconds}s (last "
            f"renewal credited at {codec.rfc3339(base)}); stopped for good: the origin runs "
            "the job again elsewhere"
        )
        controller.release(
            job,
            "Failed",
            remote.LEASE_EXPIRED,
            message,
            now,
            grace=job.obj.spec.preemption.grace_period_seconds,
            warning=True,
        )
        controller.patch_status(
            job,
            {
                "completionTime": codec.rfc3339(now),
                "conditions": set_condition(
                    job.status.get("conditions") or [],
                    "Finished",
                    True,
                    remote.LEASE_EXPIRED,
                    message,
                    codec.rfc3339(now),
                ),
            },
        )

    # ---- links -------------------------------------------------------------------------------
    def _sync_links(self) -> dict[str, tuple[dict[str, Any], FederationLink]]:
        out: dict[str, tuple[dict[str, Any], FederationLink]] = {}
        for raw in self.cache.items("federationlinks").values():
            meta = raw.get("metadata") or {}
            if meta.get("namespace") != self.config.namespace or meta.get("deletionTimestamp"):
                continue
            name = str(meta["name"])
            try:
                link = FederationLink.model_validate(raw)
            except ValidationError:
                if name not in self._bad_links:
                    log.error("FederationLink %s/%s does not parse; ignored", self.config.namespace, name)
                    self._bad_links.add(name)
                continue
            self._bad_links.discard(name)
            out[name] = (raw, link)
            runtime = self._runtime(name)
            runtime.configure(link.spec, str(meta.get("uid") or ""))
            worker = self.workers.get(name)
            if self.threads and (worker is None or not worker.is_alive()):
                self.workers[name] = LinkWorker(runtime, self._stop)
                self.workers[name].start()
        for name, runtime in self.runtimes.items():
            if name not in out and not runtime.deleted:
                runtime.mark_deleted()
        return out

    def _runtime(self, name: str) -> LinkRuntime:
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
            )
            self.runtimes[name] = runtime
        return runtime

    def _placed(self, jobs: Mapping[str, ParsedJob]) -> dict[str, list[tuple[ParsedJob, RemoteCopy]]]:
        out: dict[str, list[tuple[ParsedJob, RemoteCopy]]] = {}
        for job in jobs.values():
            ref = _remote_of(job)
            if ref is not None and not remote.is_copy(job.raw):
                out.setdefault(ref.link, []).append((job, ref))
        return out

    def _post_plans(self, jobs: Mapping[str, ParsedJob]) -> None:
        placed = self._placed(jobs)
        for name in placed:
            if name not in self.runtimes:  # a link this process never saw: it can only be given up
                self._runtime(name).mark_deleted()
        for name, runtime in self.runtimes.items():
            entries = {}
            for job, ref in placed.get(name, []):
                status = job.obj.status
                entries[ref.name] = PlanEntry(
                    ref.name,
                    job.key,
                    str(job.raw["metadata"].get("uid")),
                    status.attempt if status else 0,
                    ref.lease_seconds,
                    job.obj.spec.preemption.grace_period_seconds,
                    finished=job.phase in FINISHED,
                    suspend=job.obj.spec.suspend,
                    manifest=self._fresh.get(ref.name),
                )
            runtime.post_plan(entries, lambda n: n in self._fresh)
            names = frozenset(entries)
            if self._posted.get(name) != names:
                self._posted[name] = names
                runtime.wake.set()

    # ---- origin side: following burst jobs ----------------------------------------------------
    def _follow(
        self,
        controller: Controller,
        job: ParsedJob,
        ref: RemoteCopy,
        links: dict[str, tuple[dict[str, Any], FederationLink]],
        now: float,
    ) -> None:
        if job.phase in FINISHED:
            return
        runtime = self.runtimes[ref.link]
        snap = runtime.snapshot()
        copy = snap.copies.get(ref.name)
        if copy is not None:
            self._fresh.pop(ref.name, None)
        grace = job.obj.spec.preemption.grace_period_seconds
        refusal = runtime.refusal(ref.name)
        if refusal is not None and runtime.try_give_up(ref.name, ref.lease_seconds, grace):
            self._excluded.setdefault(job.key, {})[ref.link] = now + self.config.refusal_backoff_seconds
            self._forget(
                controller,
                job,
                ref,
                "BurstRefused",
                f"partner {ref.link} refused the job ({refusal}); back in the local queue",
                now,
            )
            return
        if copy is not None and copy.phase == "Failed" and copy.reason == remote.LEASE_EXPIRED:
            if runtime.give_up_now(ref.name):
                self._charge(job, ref, copy, links)
                self._forget(
                    controller,
                    job,
                    ref,
                    remote.LEASE_EXPIRED,
                    f"partner {ref.link} stopped its copy because this cluster did not "
                    f"renew the lease within {ref.lease_seconds}s; running the job again "
                    "as a new attempt",
                    now,
                    retry_after=now + grace + self.config.timing.kill_s,
                )
            return
        if copy is not None and copy.finished:
            self._charge(job, ref, copy, links)
            self._mirror(controller, job, ref, copy, now)
            return
        if runtime.try_give_up(ref.name, ref.lease_seconds, grace):
            self._charge(job, ref, None, links)
            margin = lease.margin(ref.lease_seconds, grace, self.config.timing)
            why = (
                f"{snap.health.reason}: {snap.health.message}"
                if not snap.health.ready
                else "its copy is gone"
            )
            self._forget(
                controller,
                job,
                ref,
                "PartnerLost",
                f"lost partner {ref.link} ({why}); no lease renewal reached it for "
                f"{ref.lease_seconds}s + {margin:g}s margin, so its copy has stopped; "
                "back in the local queue as a new attempt",
                now,
            )
            return
        if copy is not None:
            self._mirror(controller, job, ref, copy, now)

    def _mirror(
        self, controller: Controller, job: ParsedJob, ref: RemoteCopy, copy: remote.CopyView, now: float
    ) -> None:
        if job.obj.spec.suspend or copy.phase not in (
            None,
            "Queued",
            "Admitted",
            "Running",
            "Succeeded",
            "Failed",
        ):
            return
        status = job.status
        link = ref.link
        changes: dict[str, Any] = {}
        if ref.uid != copy.uid:
            changes["remote"] = {**ref.to_wire(), "uid": copy.uid}
        if copy.placement:
            current = dict(status.get("placement") or {})
            placement = {
                **current,
                "cluster": link,
                "link": link,
                **{
                    k: copy.placement[k]
                    for k in ("pool", "vendor", "model", "resource", "nodes", "workers")
                    if k in copy.placement
                },
            }
            if placement != current:
                changes["placement"] = placement
        if copy.accelerator and copy.accelerator != status.get("accelerator"):
            changes["accelerator"] = copy.accelerator
        phase = str(status.get("phase") or "")
        reason, message = str(status.get("reason") or ""), str(status.get("message") or "")
        event: tuple[str, str, bool] | None = None
        if copy.phase in (None, "Queued"):
            phase, reason = "Admitted", copy.reason or "Queued"
            message = f"queued at partner {link}: {copy.message or 'waiting for its scheduler'}"
        elif copy.phase == "Admitted":
            phase, reason = "Admitted", "Admitted"
            message = f"admitted at partner {link}: {copy.message or ''}".rstrip(": ")
        elif copy.phase == "Running":
            if status.get("phase") != "Running":
                event = ("Started", f"all workers Running at partner {link}", False)
            phase, reason = "Running", "Running"
            message = f"running at partner {link}: {copy.message or ''}".rstrip(": ")
            if not status.get("startTime"):
                changes["startTime"] = copy.start_time or codec.rfc3339(now)
        elif copy.phase == "Succeeded":
            phase, reason, message = "Succeeded", "Succeeded", f"succeeded at partner {link}"
            event = ("Succeeded", message, False)
        elif copy.phase == "Failed":
            phase, reason = "Failed", copy.reason or "Failed"
            message = f"failed at partner {link}: {copy.message or reason}"
            event = ("Failed", message, True)
        if (phase, reason, message) != (status.get("phase"), status.get("reason"), status.get("message")):
            changes.update(phase=phase, reason=reason, message=message)
            if phase != status.get("phase"):
                stamp = codec.rfc3339(now)
                if phase in FINISHED:
                    changes["completionTime"] = copy.completion_time or stamp
                    changes["conditions"] = set_condition(
                        status.get("conditions") or [], "Finished", True, reason, message, stamp
                    )
                elif phase == "Running":
                    changes["conditions"] = set_condition(
                        status.get("conditions") or [], "Running", True, "AllWorkersRunning", message, stamp
                    )
        if changes:
            controller.patch_status(job, changes)
        if event is not None and "phase" in changes:
            controller.record_event(job, *event)

    def _forget(
        self,
        controller: Controller,
        job: ParsedJob,
        ref: RemoteCopy,
        reason: str,
        message: str,
        now: float,
        retry_after: float | None = None,
    ) -> None:
        """Back to the local queue, forgetting the copy (a later burst is a new attempt, with a
        new copy; the old one is deleted as an orphan when its partner answers again)."""
        stamp = codec.rfc3339(now)
        conditions = set_condition(
            job.status.get("conditions") or [], "Running", False, reason, message, stamp
        )
        changes: dict[str, Any] = {
            "phase": "Queued",
            "reason": reason,
            "message": message,
            "queuedAt": stamp,
            "placement": None,
            "accelerator": None,
            "remote": None,
            "queuePosition": None,
            "conditions": set_condition(conditions, BURST_CONDITION, False, reason, message, stamp),
        }
        if retry_after is not None:
            changes["retryAfter"] = codec.rfc3339(retry_after)
        controller.patch_status(job, changes)
        self._fresh.pop(ref.name, None)
        self._cleanup.setdefault(job.key, {})[ref.link] = (
            ref.name,
            self.runtimes[ref.link].snapshot().heartbeats,
        )
        controller.record_event(job, reason, message, warning=True)

    # ---- spend -------------------------------------------------------------------------------
    def _charge(
        self,
        job: ParsedJob,
        ref: RemoteCopy,
        copy: remote.CopyView | None,
        links: dict[str, tuple[dict[str, Any], FederationLink]],
    ) -> None:
        """Count the accelerator-hours this attempt used at the partner, once."""
        held = links.get(ref.link)
        if held is None:
            return
        raw, link = held
        status = job.obj.status
        placement = status.placement if status else None
        per_worker = job.obj.spec.accelerators_per_worker
        vendor, model = (placement.vendor, placement.model) if placement else ("", "")
        workers = placement.workers if placement and placement.workers else job.obj.spec.workers
        start = codec.timestamp(copy.start_time) if copy else None
        end = codec.timestamp(copy.completion_time) if copy else None
        if copy is not None and copy.placement:
            vendor = str(copy.placement.get("vendor") or vendor)
            model = str(copy.placement.get("model") or model)
            workers = int(copy.placement.get("workers") or workers)
        if start is not None and end is not None:
            hours = spend.accelerator_hours(start, end, workers * per_worker)
        else:
            hours = self.runtimes[ref.link].running_hours(ref.name) * workers * per_worker
        price = spend.cost_of(
            ((c.vendor, c.model, c.cost_per_accelerator_hour) for c in link.spec.costs), vendor, model
        )
        meta = job.raw["metadata"]
        current = raw.get("status") or {}
        result = spend.charge(
            current.get("spend") or [],
            current.get("charged") or [],
            naming.attempt_id(
                meta["namespace"], meta["name"], str(meta.get("uid")), status.attempt if status else 0
            ),
            job.tenant,
            hours,
            price,
        )
        if result is None:
            return
        updated = self.home.patch_link_status(
            self.config.namespace, ref.link, {"spend": result[0], "charged": result[1]}
        )
        self.cache.apply("federationlinks", "MODIFIED", updated)
        links[ref.link] = (updated, link)

    # ---- origin side: bursting ---------------------------------------------------------------
    def _burst(
        self,
        controller: Controller,
        jobs: Mapping[str, ParsedJob],
        waiting: Mapping[str, Waiting],
        links: Mapping[str, tuple[dict[str, Any], FederationLink]],
        now: float,
    ) -> None:
        placed = self._placed(jobs)
        offers = {
            name: self._offer(name, raw, link, placed.get(name, [])) for name, (raw, link) in links.items()
        }
        notes: dict[str, str] = {}
        for key, wait in sorted(waiting.items(), key=lambda kv: kv[1].position):
            job = jobs.get(key)
            if job is None or remote.is_copy(job.raw) or not job.obj.spec.burst.enabled:
                continue
            status = job.obj.status
            if job.phase != "Queued" or (status is not None and status.placement is not None):
                continue
            demand = self._demand(job, wait, now)
            decision = choose(demand, list(offers.values()))
            try:
                if decision.link is not None:
                    _, link = links[decision.link]
                    self._send(controller, job, decision, link, now)
                    offers[decision.link] = self._taken(offers[decision.link], decision, demand)
                    continue
                if decision.message:
                    notes[key] = decision.message
                self._burst_condition(controller, job, decision, now)
            except Exception as exc:
                log.error("federation: bursting %s failed (%s)", key, type(exc).__name__)
        self._notes = notes

    def _demand(self, job: ParsedJob, wait: Waiting, now: float) -> JobDemand:
        spec, status = job.obj.spec, job.obj.status
        total, least = _need(job)
        queued = (
            codec.timestamp(status.queued_at if status else None)
            or codec.timestamp(job.raw["metadata"].get("creationTimestamp"))
            or now
        )
        excluded = {
            link: "refused this job recently"
            for link, until in self._excluded.get(job.key, {}).items()
            if until > now
        }
        cleanup = self._cleanup.get(job.key, {})
        for link, (old, beats) in list(cleanup.items()):
            runtime = self.runtimes.get(link)
            snap = runtime.snapshot() if runtime is not None else None
            if snap is not None and (snap.heartbeats <= beats or old in snap.listed):
                excluded.setdefault(link, "still holds this job's previous copy (being removed)")
            else:
                del cleanup[link]
        if not cleanup:
            self._cleanup.pop(job.key, None)
        return JobDemand(
            key=job.key,
            tenant=job.tenant,
            residency=spec.residency,
            accepted=tuple(AcceptedType(a.vendor, a.model, a.relative_throughput) for a in spec.accelerators),
            accelerators=total,
            min_accelerators=least,
            waited=max(0.0, now - queued),
            enabled=spec.burst.enabled,
            after_seconds=spec.burst.after_seconds,
            never_fits=wait.reason.value in NEVER_HERE,
            excluded=excluded,
        )

    def _offer(
        self, name: str, raw: dict[str, Any], link: FederationLink, placed: list[tuple[ParsedJob, RemoteCopy]]
    ) -> LinkOffer:
        runtime = self.runtimes[name]
        snap = runtime.snapshot()
        spec = link.spec
        costs = tuple((c.vendor, c.model, c.cost_per_accelerator_hour) for c in spec.costs)
        free = {(t.vendor, t.model): t.free for t in snap.capacity}
        spent: dict[str, float] = {}
        for entry in (raw.get("status") or {}).get("spend") or []:
            spent[str(entry.get("tenant"))] = spent.get(str(entry.get("tenant")), 0.0) + float(
                entry.get("spend") or 0.0
            )
        jobs = accelerators = 0
        for job, ref in placed:
            if job.phase in FINISHED:
                continue
            total, _ = _need(job)
            jobs += 1
            accelerators += total
            copy = snap.copies.get(ref.name)
            placement = job.obj.status.placement if job.obj.status else None
            if placement is None:
                continue
            kind = (placement.vendor, placement.model)
            if (copy is None or copy.phase in (None, "Queued")) and kind in free:
                free[kind] -= total  # sent, not yet counted in the partner's pools
            running = runtime.running_for(ref.name)
            if running > 0:
                price = spend.cost_of(costs, placement.vendor, placement.model)
                spent[job.tenant] = spent.get(job.tenant, 0.0) + running / 3600 * total * price
        types = tuple(
            TypeOffer(t.vendor, t.model, t.capacity, max(0, free[(t.vendor, t.model)]), t.throughput)
            for t in snap.capacity
        )
        health = snap.health
        return LinkOffer(
            name=name,
            jurisdiction=spec.jurisdiction,
            allowed_residency=frozenset(spec.allowed_residency),
            allowed_tenants=frozenset(spec.allowed_tenants),
            after_seconds=spec.burst.after_seconds,
            when_never_fits=spec.burst.when_never_fits,
            ready=health.ready and not runtime.deleted,
            not_ready=f"{health.reason}: {health.message}",
            types=types,
            costs=costs,
            budgets={b.tenant: b.budget for b in spec.budgets},
            spent=spent,
            jobs=jobs,
            accelerators=accelerators,
            max_jobs=spec.limits.max_jobs,
            max_accelerators=spec.limits.max_accelerators,
        )

    @staticmethod
    def _taken(offer: LinkOffer, decision: Decision, demand: JobDemand) -> LinkOffer:
        types = tuple(
            dataclasses.replace(t, free=max(0, t.free - demand.accelerators))
            if (t.vendor, t.model) == (decision.vendor, decision.model)
            else t
            for t in offer.types
        )
        return dataclasses.replace(
            offer, types=types, jobs=offer.jobs + 1, accelerators=offer.accelerators + demand.accelerators
        )

    def _send(
        self, controller: Controller, job: ParsedJob, decision: Decision, link: FederationLink, now: float
    ) -> None:
        """Status first (the job now points at its copy), then the worker creates the copy: a
        crash in between leaves a job whose copy is missing, given up after the lease."""
        assert decision.link is not None and decision.vendor is not None and decision.model is not None
        meta, spec, status = job.raw["metadata"], job.obj.spec, job.obj.status
        attempt = (status.attempt if status else 0) + 1
        name = naming.remote_name(
            self.config.cluster_name, meta["namespace"], meta["name"], str(meta.get("uid")), attempt
        )
        manifest = remote.manifest(
            job.obj,
            origin=self.config.cluster_name,
            link=decision.link,
            link_uid=str(link.metadata.get("uid") or ""),
            jurisdiction=link.spec.jurisdiction,
            allowed_residency=list(link.spec.allowed_residency),
            namespace=link.spec.remote_namespace,
            name=name,
            attempt=attempt,
            lease_seconds=link.spec.lease_seconds,
            token=f"{self._nonce}.0",
        )
        workers = spec.elastic.max_workers if spec.elastic else spec.workers
        stamp = codec.rfc3339(now)
        message = decision.message
        conditions = set_condition(
            job.status.get("conditions") or [], "Admitted", True, "Burst", message, stamp
        )
        self._fresh[name] = manifest
        controller.patch_status(
            job,
            {
                "phase": "Admitted",
                "reason": "Burst",
                "message": message,
                "attempt": attempt,
                "placement": {
                    "cluster": decision.link,
                    "link": decision.link,
                    "pool": "",
                    "vendor": decision.vendor,
                    "model": decision.model,
                    "resource": "",
                    "nodes": [],
                    "workers": workers,
                },
                "accelerator": f"{decision.vendor}/{decision.model}",
                "queuePosition": None,
                "admittedAt": stamp,
                "retryAfter": None,
                "remote": {
                    "link": decision.link,
                    "namespace": link.spec.remote_namespace,
                    "name": name,
                    "leaseSeconds": link.spec.lease_seconds,
                },
                "conditions": set_condition(conditions, BURST_CONDITION, True, "Burst", message, stamp),
            },
        )
        controller.record_event(job, "Burst", message)

    def _burst_condition(
        self, controller: Controller, job: ParsedJob, decision: Decision, now: float
    ) -> None:
        conditions = job.status.get("conditions") or []
        current = next((c for c in conditions if c.get("type") == BURST_CONDITION), None)
        if decision.message:
            if current is not None and (
                current.get("status"),
                current.get("reason"),
                current.get("message"),
            ) == ("False", decision.why.value, decision.message):
                return
            controller.patch_status(
                job,
                {
                    "conditions": set_condition(
                        conditions,
                        BURST_CONDITION,
                        False,
                        decision.why.value,
                        decision.message,
                        codec.rfc3339(now),
                    )
                },
            )
        elif (
            current is not None
            and current.get("status") == "False"
            and decision.why in (Why.NOT_YET, Why.DISABLED, Why.NO_LINKS)
        ):
            controller.patch_status(
                job, {"conditions": [c for c in conditions if c.get("type") != BURST_CONDITION]}
            )

    # ---- link status -------------------------------------------------------------------------
    def _write_links(
        self,
        links: Mapping[str, tuple[dict[str, Any], FederationLink]],
        jobs: Mapping[str, ParsedJob],
        now: float,
    ) -> None:
        placed = self._placed(jobs)
        for name, (raw, _link) in links.items():
            snap = self.runtimes[name].snapshot()
            current = raw.get("status") or {}
            health = snap.health
            ready_msg = health.message
            conditions = set_condition(
                current.get("conditions") or [],
                "Ready",
                health.ready,
                health.reason,
                ready_msg,
                codec.rfc3339(now),
            )
            accepting, refusal = snap.accepting
            if not accepting or any(c.get("type") == "Accepting" for c in conditions):
                conditions = set_condition(
                    conditions,
                    "Accepting",
                    accepting,
                    "Accepting" if accepting else "Refused",
                    refusal or "the partner accepted the last job sent",
                    codec.rfc3339(now),
                )
            desired: dict[str, Any] = {
                "reachable": health.ready,
                "capacity": [
                    {
                        "vendor": t.vendor,
                        "model": t.model,
                        "capacity": t.capacity,
                        "free": t.free,
                        "relativeThroughput": t.throughput,
                    }
                    for t in snap.capacity
                ],
                "jobs": sorted(j.key for j, _ in placed.get(name, []) if j.phase not in FINISHED),
                "conditions": conditions,
            }
            if health.last_ok is not None:
                desired["lastHeartbeat"] = codec.rfc3339(health.last_ok)
            changes = {k: v for k, v in desired.items() if current.get(k) != v}
            if not changes:
                continue
            try:
                updated = self.home.patch_link_status(self.config.namespace, name, changes)
            except Exception as exc:
                log.warning("federation: writing status of link %s failed (%s)", name, type(exc).__name__)
                continue
            self.cache.apply("federationlinks", "MODIFIED", updated)
