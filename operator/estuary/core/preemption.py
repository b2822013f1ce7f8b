"""Gang-aware preemption: which whole running jobs to stop so that a waiting job can start.

Why it exists: quota that a tenant lent must come back when it needs it, and urgent work of a
tenant must be able to displace its own less urgent work. Two rules, and only these two, so a
victim can never evict its evictor back (no flapping):
  Reclaim:  a job whose tenant stays within its nominal quota in a pool may evict jobs of tenants
            that borrow there (use more than their nominal), only while they still borrow.
  Priority: a job may evict strictly lower-priority jobs of its own tenant.
A policy with time-sharing adds a third, whose victims it names (`Extra`, core/attained.py):
  Service:  a job may evict a job of the same priority that has had more service and ran its
            minimum slice (it cannot evict back: its level only grows while it runs).
A victim is always a whole job; non-preemptible and terminating jobs are never victims.

How: first, if jobs already terminating would make room once gone, wait for them and pick no new
victims. Otherwise, per pool in the policy's order, find a victim set with a greedy what-if:
release candidates one by one from the working map (`Workspace.release`, like Kueue's
SimulateWorkloadRemoval) until the gang fits at node level and within quota, then put back each
victim but the last, latest first, keeping out only those needed. The greedy runs twice, once
least valuable first (lowest priority, then most recently started, then key) and once largest
first (most accelerators, then least valuable), and the better set wins: the lower highest
victim priority, then fewer victims, then the less valuable ones. Everything is restored before
returning.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from estuary.core.candidates import Candidate
from estuary.core.evaluate import evaluate, gang_bounds
from estuary.core.placement import Placement
from estuary.core.quota import job_accelerators
from estuary.core.workspace import Workspace
from estuary.model import JobRequest, RunningJob

RECLAIM = "Reclaim"
PRIORITY = "Priority"

Rank = Callable[[RunningJob], tuple[object, ...]]


class ExtraRule(Protocol):
    """More victims a policy allows (core/attained.py), and the order it gives them up in."""

    def extra(self, pool: str) -> list[tuple[RunningJob, str]]: ...

    def rank(self, running: RunningJob) -> tuple[object, ...]: ...


@dataclass(frozen=True, slots=True)
class Plan:
    candidate: Candidate
    placement: Placement  # where the job would go once the victims (or terminating jobs) are gone
    victims: tuple[tuple[RunningJob, str], ...]  # (job, RECLAIM | PRIORITY); empty when waiting
    waiting_on: tuple[RunningJob, ...]  # terminating jobs whose release makes room


def _fit(ws: Workspace, job: JobRequest, cand: Candidate) -> Placement | None:
    return evaluate(ws, job, cand, cache=None).placement


def _await_terminating(
    ws: Workspace, job: JobRequest, cand: Candidate, claimed: Collection[str]
) -> Plan | None:
    leaving = [r for r in ws.terminating_in(cand.pool.name) if r.job.key not in claimed]
    if not leaving:
        return None
    with ws.without(leaving):
        placement = _fit(ws, job, cand)
    if placement is None:
        return None
    used = set(placement.nodes)
    relevant = tuple(
        r for r in leaving if used.intersection(r.assignment.nodes) or r.job.tenant == job.tenant
    )
    return Plan(cand, placement, (), relevant or tuple(leaving))


def _candidates(
    ws: Workspace, job: JobRequest, pool: str, claimed: Collection[str], extra: ExtraRule | None = None
) -> list[tuple[RunningJob, str]]:
    _, smallest = gang_bounds(job)
    within = ws.quota.enforced(pool) and ws.quota.within_nominal(
        pool, job.tenant, smallest * job.per_worker.accelerators
    )

    def open_to(running: RunningJob) -> bool:
        other = running.job
        return (
            not running.terminating
            and other.preemptible
            and other.key not in claimed
            and other.key != job.key
        )

    # In no particular order: `_choose_victims` sorts them by a total order.
    found = [
        (running, PRIORITY)
        for running in ws.running_below(pool, job.tenant, job.priority)
        if open_to(running)
    ]
    if within:
        for tenant in ws.quota.tenants(pool):
            if tenant != job.tenant and ws.quota.borrowing(pool, tenant):
                found.extend(
                    (running, RECLAIM) for running in ws.running_of(pool, tenant) if open_to(running)
                )
    if extra is not None:
        seen = {running.job.key for running, _ in found}
        found.extend(o for o in extra.extra(pool) if o[0].job.key not in seen and open_to(o[0]))
    return found


def _value(running: RunningJob) -> tuple[int, float, str]:
    """Least valuable first: lowest priority, then most recently started, then key."""
    return (running.job.priority, -running.started, running.job.key)


def _greedy(
    ws: Workspace, job: JobRequest, cand: Candidate, options: Sequence[tuple[RunningJob, str]]
) -> tuple[tuple[RunningJob, str], ...] | None:
    """Release options in order until the job fits, then drop the ones not needed."""
    pool = cand.pool.name
    _, smallest = gang_bounds(job)
    need = smallest * job.per_worker.accelerators
    state = ws.pools[pool]
    removed: list[tuple[RunningJob, str]] = []
    try:
        fits = False
        for running, why in options:
            if why == RECLAIM and not ws.quota.borrowing(pool, running.job.tenant):
                continue  # that tenant no longer borrows: it keeps the rest
            ws.release([running])
            removed.append((running, why))
            if state.free_accelerators() >= need and _fit(ws, job, cand) is not None:
                fits = True
                break
        if not fits:
            return None
        for item in reversed(removed[:-1]):
            ws.restore([item[0]])
            if _fit(ws, job, cand) is not None:
                removed.remove(item)
            else:
                ws.release([item[0]])
        return tuple(removed)
    finally:
        ws.restore([running for running, _ in removed])


def _choose_victims(
    ws: Workspace,
    job: JobRequest,
    cand: Candidate,
    claimed: Collection[str],
    extra: ExtraRule | None = None,
) -> Plan | None:
    options = _candidates(ws, job, cand.pool.name, claimed, extra)
    if not options:
        return None
    value: Rank = extra.rank if extra is not None else _value
    by_value = sorted(options, key=lambda o: value(o[0]))
    by_size = sorted(options, key=lambda o: (-job_accelerators(o[0]), value(o[0])))
    sets = [found for order in (by_value, by_size) if (found := _greedy(ws, job, cand, order)) is not None]
    if not sets:
        return None
    best = min(
        sets, key=lambda vs: (max(r.job.priority for r, _ in vs), len(vs), sorted(value(r) for r, _ in vs))
    )
    with ws.without([r for r, _ in best]):
        placement = _fit(ws, job, cand)
    assert placement is not None  # this very set made room a moment ago
    return Plan(cand, placement, best, ())


def plan(
    ws: Workspace,
    job: JobRequest,
    cands: Sequence[Candidate],
    claimed: Collection[str],
    extra: ExtraRule | None = None,
) -> Plan | None:
    """A way to make room for `job`, or None. `claimed`: keys already victims or awaited this
    cycle; `extra`: more victims a policy allows, and their order (None: the two rules)."""
    for cand in cands:
        waiting = _await_terminating(ws, job, cand, claimed)
        if waiting is not None:
            return waiting
    for cand in cands:
        chosen = _choose_victims(ws, job, cand, claimed, extra)
        if chosen is not None:
            return chosen
    return None


def message(ws: Workspace, job: JobRequest, victim: JobRequest, why: str, pool: str) -> str:
    """What the victim's status says: which rule evicts it, for whom, and the numbers behind it."""
    if why == RECLAIM:
        quota = ws.quota
        return (
            f"tenant {job.tenant} reclaims its nominal quota in pool {pool} for {job.key}; "
            f"tenant {victim.tenant} borrows {quota.borrowed(pool, victim.tenant)} above its nominal "
            f"{quota.entry(pool, victim.tenant).nominal}"
        )
    return (
        f"{job.key} (priority {job.priority}) of tenant {job.tenant} needs room in pool {pool}; "
        f"this job has lower priority {victim.priority}"
    )
