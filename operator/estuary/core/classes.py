"""Equivalence classes of pending jobs: jobs that only differ in name and arrival.

Why it exists: a queue of 10,000 jobs holds a few dozen distinct shapes. Two jobs of one class
(same tenant, priority, gang, per-worker resources, accepted types, node selector, tolerations and
residency) get the same answer from every pool at the same moment, so a cycle decides a class once
and hands the verdict on to its other jobs for as long as nothing it read has changed (cycle.py
says what that is). What a class derives from its jobs (candidate pools and their order, gang
bounds) is computed here once, not once per job and cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from estuary.core.candidates import Candidate, candidates, in_policy_order
from estuary.core.evaluate import gang_bounds
from estuary.core.policy import Policy, TypeChoice
from estuary.core.verdicts import Assembled
from estuary.model import JobRequest, PoolSpec

ClassKey = tuple[object, ...]


def class_key(job: JobRequest) -> ClassKey:
    """Every field of a job that a scheduling decision reads, except its key and arrival."""
    selector = tuple(sorted(job.node_selector.items())) if job.node_selector else ()
    return (
        job.tenant,
        job.priority,
        job.per_worker,
        job.workers,
        job.min_workers,
        job.accepted,
        selector,
        job.tolerations,
        job.residency,
        # Time-sharing: the queue level orders jobs (a class's jobs then come in arrival order,
        # which the pass over the queue relies on: sweep.py) and decides whom it may preempt.
        job.level,
        job.time_sharing,
        job.preemptible,
    )


def _no_free(pool: str) -> int:
    raise AssertionError(f"pool order by free accelerators is not static (pool {pool})")


class JobClass:
    """One equivalence class; `job` is a representative (any job of the class will do).

    `intern` numbers keys (equal keys, equal numbers), so that per-cycle tables keyed by a gang or
    a preemption key hash an int rather than a tuple of dataclasses."""

    __slots__ = (
        "_decisions",
        "_intern",
        "_orders",
        "assembled",
        "candidates",
        "gang",
        "job",
        "key",
        "need",
        "preemption_key",
        "quota_pools",
        "smallest",
        "workers",
    )

    def __init__(
        self,
        key: ClassKey,
        job: JobRequest,
        pools: Mapping[str, PoolSpec],
        intern: Callable[[tuple[object, ...]], int],
    ) -> None:
        self.key = key
        self.job = job
        self.workers, self.smallest = gang_bounds(job)
        self.need = self.smallest * job.per_worker.accelerators  # accelerators of the smallest gang
        tenant, priority, per_worker, workers, min_workers, _, selector, tolerations, _, level, sharing, _ = (
            key
        )
        # What one pool's answer depends on (evaluate.py): classes that differ only in accepted
        # types, priority or residency share it.
        self.gang = intern(("gang", tenant, per_worker, workers, min_workers, selector, tolerations))
        # What a failed search for victims depends on besides the pools tried (cycle.py).
        self.preemption_key = intern(
            (
                "preemption",
                tenant,
                priority,
                level,
                sharing,
                per_worker,
                self.workers,
                self.smallest,
                tolerations,
                selector,
            )
        )
        self.candidates = candidates(job, pools)
        # Pools whose quota can change a verdict of this class (cycle.py stamps verdicts with them).
        self.quota_pools = tuple(c.pool.name for c in self.candidates if c.pool.quotas)
        self._orders: dict[TypeChoice, list[Candidate]] = {}
        self._decisions: dict[TypeChoice, int] = {}
        self._intern = intern
        # The waiting verdict last assembled for this class, by the pool failures it was made of:
        # a pure function of the two, kept so that an unchanged cluster costs no new objects.
        self.assembled: Assembled | None = None

    @property
    def elastic(self) -> bool:
        return self.smallest < self.workers

    def decision(self, policy: Policy) -> int:
        """Classes with equal numbers get equal verdicts under `policy`, so a cycle decides them
        once: same gang and tenant, same priority, and the same pools in the same order with the
        same runtime factors (accepted types listed differently often come to that). A class that
        no pool offers, or bound to a jurisdiction, keeps its own: its message names them."""
        number = self._decisions.get(policy.type_choice)
        if number is None:
            if not self.candidates or self.job.residency != "any":
                shared: tuple[object, ...] = ("class", self.key)
            elif policy.type_choice == "any_free":  # ordered by free capacity, the same for all
                shared = ("pools", tuple(sorted((c.pool.name, c.factor) for c in self.candidates)))
            else:
                shared = ("pools", tuple((c.pool.name, c.factor) for c in self.static_order(policy)))
            number = self._decisions[policy.type_choice] = self._intern(
                ("decision", self.gang, *self.key[1:2], *self.key[9:11], *shared)
            )
        return number

    def static_order(self, policy: Policy) -> list[Candidate]:
        """The pools `policy` allows, in its order, for every type choice but "any_free" (whose
        order follows free capacity and is computed by the cycle)."""
        order = self._orders.get(policy.type_choice)
        if order is None:
            order = self._orders[policy.type_choice] = in_policy_order(self.candidates, policy, _no_free)
        return order
