"""Whether a queued job bursts to a partner cluster, and to which: plain data in, a decision out.

No Kubernetes, no clock: the caller says how long the job has waited and what each link offers.

Rules, per link, in this order (the first that fails is the link's verdict):
  1. residency, a hard rule: a job whose data must stay in a jurisdiction goes only to a link of
     that jurisdiction that lists it in allowedResidency; a job of residency "any" only to a link
     that lists "any";
  2. the job's tenant is in the link's allowedTenants;
  3. the tenant has a budget at the link and has not spent it;
  4. the partner offers an accepted accelerator type large enough for the job;
  5. the trigger: queued at least the job's (else the link's) afterSeconds, or no local pool can
     ever fit the job and the link bursts such jobs (whenNeverFits);
  6. the link is ready (last heartbeat succeeded), did not just refuse this job, and no longer
     holds a previous copy of it;
  7. the link's limits (jobs, accelerators at the partner) leave room.
A job that names its datasets also needs each of them allowed in the link's jurisdiction (rule 1),
the cost of moving them within its budget (rule 3), and the time within the link's
burst.maxDataSeconds when it sets one; see datamove.py.
Among the links that pass, the earliest expected start wins: one where an accepted type has free
capacity for the job's need can start now; then the sooner the data is there (and, with the job's
runtime estimate, the sooner it finishes), then the fastest type, then the lowest cost (moving
the data included), then the name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from estuary.federation import datamove
from estuary.federation.spend import cost_of
from estuary.model import AcceptedType


class Why(StrEnum):
    BURST = "Burst"
    DISABLED = "BurstDisabled"
    NO_LINKS = "NoFederationLinks"
    NOT_YET = "NotYet"
    RESIDENCY = "ResidencyForbids"
    TENANT = "TenantNotAllowed"
    NO_BUDGET = "NoBudget"
    BUDGET = "BudgetExhausted"
    NO_TYPE = "NoAcceptedType"
    NOT_READY = "LinkNotReady"
    REFUSED = "RefusedRecently"
    FULL = "LinkFull"
    DATA_TOO_SLOW = "DataTooSlow"
    NONE_ELIGIBLE = "NoEligibleLink"


# Verdicts that hold whatever the job waits for: shown at once, before any trigger.
POLICY = (Why.RESIDENCY, Why.TENANT, Why.NO_BUDGET, Why.BUDGET, Why.NO_TYPE, Why.DATA_TOO_SLOW)


@dataclass(frozen=True, slots=True)
class TypeOffer:
    """One accelerator type at the partner (summed over its pools)."""

    vendor: str
    model: str
    capacity: int  # accelerators of this type there
    free: int  # free there now, less what this cluster sent that the partner has not counted yet
    throughput: float = 1.0


@dataclass(frozen=True, slots=True)
class LinkOffer:
    name: str
    jurisdiction: str
    allowed_residency: frozenset[str]
    allowed_tenants: frozenset[str]
    after_seconds: float
    when_never_fits: bool
    ready: bool
    not_ready: str = ""  # why not, for the message (e.g. "Unreachable: connection refused")
    types: tuple[TypeOffer, ...] = ()
    costs: tuple[tuple[str, str | None, float], ...] = ()  # (vendor, model or None, per hour)
    budgets: Mapping[str, float] = field(default_factory=dict)
    spent: Mapping[str, float] = field(default_factory=dict)  # by tenant, incl. what runs now
    jobs: int = 0  # this cluster's jobs active there
    accelerators: int = 0  # and their accelerators
    max_jobs: int | None = None
    max_accelerators: int | None = None
    path: datamove.Path | None = None  # the network path there (None: the link's name, unmeasured)
    max_data_seconds: float | None = None  # refuse jobs whose data would take longer to move

    @property
    def route(self) -> datamove.Path:
        return self.path or datamove.Path(self.name)


@dataclass(frozen=True, slots=True)
class JobDemand:
    key: str
    tenant: str
    residency: str
    accepted: tuple[AcceptedType, ...]
    accelerators: int  # all workers
    min_accelerators: int  # to start (elastic minimum)
    waited: float  # seconds queued at home
    enabled: bool = True
    after_seconds: float | None = None  # the job's own threshold (else the link's)
    never_fits: bool = False  # no local pool can ever run it (NeverFits, NoMatchingPool, residency)
    excluded: Mapping[str, str] = field(default_factory=dict)  # link -> why not now (it refused
    # this job recently, or still removes this job's previous copy)
    datasets: tuple[datamove.Dataset, ...] = ()
    estimated_seconds: float | None = None  # runtime on a throughput-1.0 type, when the job says


@dataclass(frozen=True, slots=True)
class Verdict:
    link: str
    why: Why
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    link: str | None
    why: Why
    message: str  # for the job's status; empty when there is nothing to say
    vendor: str | None = None  # the type expected at the partner (the partner decides)
    model: str | None = None
    start_now: bool = False
    verdicts: tuple[Verdict, ...] = ()


def residency_refusal(residency: str, link: LinkOffer) -> str | None:
    """Why the job's data may not go to this link, or None when it may. The one residency rule."""
    if residency == "any":
        if "any" in link.allowed_residency:
            return None
        return (
            f"link {link.name} takes only jobs whose data must stay in {link.jurisdiction} "
            "(allowedResidency has no 'any')"
        )
    if link.jurisdiction != residency:
        return f"link {link.name} is {link.jurisdiction}"
    if residency not in link.allowed_residency:
        return f"link {link.name} is {link.jurisdiction} but does not list {residency} in allowedResidency"
    return None


def residency_allows(residency: str, jurisdiction: str, allowed: Sequence[str] | frozenset[str]) -> bool:
    """The residency rule on plain values (for the last check before a copy is created)."""
    if residency == "any":
        return "any" in allowed
    return jurisdiction == residency and residency in allowed


@dataclass(frozen=True, slots=True)
class _Fit:
    offer: TypeOffer
    throughput: float
    cost: float  # per accelerator-hour
    preference: int
    start_now: bool
    move: datamove.Move = field(default_factory=datamove.Move)
    expected: float = 0.0  # seconds until the data is there (and, with an estimate, the job done)

    @property
    def key(self) -> tuple[bool, float, float, float, int]:
        return (not self.start_now, self.expected, -self.throughput, self.move.cost, self.preference)


def _fits(job: JobDemand, link: LinkOffer, move: datamove.Move) -> list[_Fit]:
    out = []
    for offer in link.types:
        for i, accepted in enumerate(job.accepted):
            if accepted.matches(offer.vendor, offer.model) and offer.capacity >= job.min_accelerators:
                speed = accepted.throughput or offer.throughput
                run = job.estimated_seconds / speed if job.estimated_seconds else 0.0
                out.append(
                    _Fit(
                        offer,
                        speed,
                        cost_of(link.costs, offer.vendor, offer.model),
                        i,
                        offer.free >= job.min_accelerators,
                        move,
                        move.seconds + run,
                    )
                )
                break
    return out


def _best(fits: list[_Fit]) -> _Fit:
    return min(fits, key=lambda f: (*f.key, f.cost))


def _money(job: JobDemand, link: LinkOffer, move: datamove.Move) -> Verdict | datamove.Move:
    """Rule 3 (budget, moving the data included) and the link's limit on moving data."""
    name = link.name
    budget = link.budgets.get(job.tenant)
    if budget is None:
        return Verdict(name, Why.NO_BUDGET, f"link {name} has no budget for tenant {job.tenant}")
    spent = link.spent.get(job.tenant, 0.0)
    if spent >= budget:
        return Verdict(
            name,
            Why.BUDGET,
            f"tenant {job.tenant} has spent {spent:.2f} of its {budget:.2f} budget at link {name}",
        )
    if move.cost > 0 and spent + move.cost > budget:
        return Verdict(
            name,
            Why.BUDGET,
            f"moving its data to link {name} would cost {move.cost:.2f}, more than the "
            f"{budget - spent:.2f} left of tenant {job.tenant}'s budget there",
        )
    if link.max_data_seconds is not None and move.seconds > link.max_data_seconds:
        return Verdict(
            name,
            Why.DATA_TOO_SLOW,
            f"moving its data to link {name} would take ~{datamove.hours(move.seconds)}, more than the "
            f"link allows ({datamove.hours(link.max_data_seconds)}): {move.summary()}",
        )
    return move


def verdict(
    job: JobDemand, link: LinkOffer, paths: Mapping[str, datamove.Path] | None = None, home: str = "local"
) -> Verdict | _Fit:
    """The link's verdict on the job, or the type it would run on when the link may take it."""
    name = link.name
    refusal = residency_refusal(job.residency, link) or datamove.residency_refusal(
        job.datasets, name, link.jurisdiction
    )
    if refusal is not None:
        return Verdict(name, Why.RESIDENCY, refusal)
    if job.tenant not in link.allowed_tenants:
        return Verdict(name, Why.TENANT, f"tenant {job.tenant} may not use link {name}")
    money = _money(job, link, datamove.plan(job.datasets, link.route, paths or {}, home))
    if isinstance(money, Verdict):
        return money
    move = money
    fits = _fits(job, link, move)
    if not fits and (link.types or link.ready):  # what the partner offers is known
        offered = ", ".join(f"{t.vendor}/{t.model} ({t.capacity})" for t in link.types) or "nothing"
        return Verdict(
            name,
            Why.NO_TYPE,
            f"link {name} offers no accepted type with "
            f"{job.min_accelerators} accelerators (offers {offered})",
        )
    threshold = job.after_seconds if job.after_seconds is not None else link.after_seconds
    if job.waited < threshold and not (job.never_fits and link.when_never_fits):
        return Verdict(name, Why.NOT_YET, f"link {name} after {threshold:g}s queued")
    if not link.ready or not fits:
        return Verdict(
            name, Why.NOT_READY, f"link {name} is not ready ({link.not_ready or 'no heartbeat yet'})"
        )
    if name in job.excluded:
        return Verdict(name, Why.REFUSED, f"link {name} {job.excluded[name]}")
    if link.max_jobs is not None and link.jobs + 1 > link.max_jobs:
        return Verdict(name, Why.FULL, f"link {name} already has {link.jobs} jobs (limit {link.max_jobs})")
    if link.max_accelerators is not None and link.accelerators + job.accelerators > link.max_accelerators:
        return Verdict(
            name,
            Why.FULL,
            f"link {name} would hold {link.accelerators + job.accelerators} "
            f"accelerators (limit {link.max_accelerators})",
        )
    return _best(fits)


def _others(chosen: _Fit, candidates: list[tuple[LinkOffer, _Fit]]) -> str:
    """How the links not chosen compare, when the data decided it."""
    out = []
    for link, fit in candidates:
        if fit is not chosen and fit.move.gigabytes > chosen.move.gigabytes:
            later = datamove.hours(max(0.0, fit.move.seconds - chosen.move.seconds))
            out.append(f"{link.name}: data there ~{later} later, {fit.move.cost:.2f} to move it")
    return f"; not {', '.join(out)}" if out else ""


def choose(job: JobDemand, links: Sequence[LinkOffer], home: str = "local") -> Decision:
    if not job.enabled:
        return Decision(None, Why.DISABLED, "")
    if not links:
        return Decision(None, Why.NO_LINKS, "")
    paths = {lk.route.cluster: lk.route for lk in links}
    verdicts: list[Verdict] = []
    candidates: list[tuple[LinkOffer, _Fit]] = []
    for link in sorted(links, key=lambda lk: lk.name):
        v = verdict(job, link, paths, home)
        if isinstance(v, Verdict):
            verdicts.append(v)
        else:
            candidates.append((link, v))
    if candidates:
        link, fit = min(candidates, key=lambda c: (*c[1].key, c[1].cost, c[0].name))
        start = "can start now" if fit.start_now else "queues there"
        data = f"; {fit.move.summary()}" if job.datasets else ""
        return Decision(
            link.name,
            Why.BURST,
            f"sent to partner {link.name} ({link.jurisdiction}): "
            f"{fit.offer.vendor}/{fit.offer.model} {start}{data}{_others(fit, candidates)}",
            fit.offer.vendor,
            fit.offer.model,
            fit.start_now,
            tuple(verdicts),
        )
    if any(v.why == Why.NOT_YET for v in verdicts):
        return Decision(None, Why.NOT_YET, "", verdicts=tuple(verdicts))
    whys = {v.why for v in verdicts}
    why = whys.pop() if len(whys) == 1 else Why.NONE_ELIGIBLE
    parts = [v.message for v in verdicts]
    if any(v.why == Why.RESIDENCY for v in verdicts) and job.residency != "any":
        parts.insert(0, f"data must stay in {job.residency}")
    return Decision(None, why, "may not burst: " + "; ".join(parts), verdicts=tuple(verdicts))
