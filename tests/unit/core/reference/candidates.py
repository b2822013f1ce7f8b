"""Which pools a job may run on, and in which order a policy tries them.

Why it exists: a job names accelerator types (vendor, optional model, optional speed hint) in its
order of preference; pools offer one type each. Matching the two, estimating the relative runtime on
each pool and ordering the pools per `Policy.type_choice` is one small decision used by the cycle,
by fair sharing (is the job within its nominal quota somewhere?) and by `explain`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from estuary.model import AcceptedType, JobRequest, PoolSpec

from .policy import Policy


@dataclass(frozen=True, slots=True)
class Candidate:
    """One pool a job may run on, through the first accepted type that matches it."""

    pool: PoolSpec
    accepted: AcceptedType
    preference: int  # index of `accepted` in the job's list (0 = most preferred)
    factor: float  # estimated relative runtime on this pool (lower is sooner)


def runtime_factor(accepted: AcceptedType, pool: PoolSpec) -> float:
    """1 / throughput, with the job's own hint taking precedence over the pool's figure."""
    throughput = accepted.throughput if accepted.throughput is not None else pool.throughput
    return 1.0 / throughput if throughput > 0 else math.inf


def candidates(job: JobRequest, pools: Mapping[str, PoolSpec]) -> tuple[Candidate, ...]:
    """Every pool matching an accepted type, in the user's order, pools of one type by name."""
    found: dict[str, Candidate] = {}
    for index, accepted in enumerate(job.accepted):
        for name in sorted(pools):
            pool = pools[name]
            if name not in found and accepted.matches(pool.vendor, pool.model):
                found[name] = Candidate(pool, accepted, index, runtime_factor(accepted, pool))
    return tuple(sorted(found.values(), key=lambda c: (c.preference, c.pool.name)))


def _fastest_key(c: Candidate) -> tuple[float, int, float, str]:
    return (c.factor, c.preference, c.pool.cost_per_hour, c.pool.name)


def in_policy_order(
    cands: Sequence[Candidate], policy: Policy, free_of: Callable[[str], int]
) -> list[Candidate]:
    """The pools a policy allows, in the order it tries them (the first that fits wins).

    Trying in this order and stopping at the first fit is the same as "among those that fit, pick
    the best" for every policy, because each ordering key does not depend on fit.
    """
    if policy.type_choice == "preference":
        return sorted(cands, key=lambda c: (c.preference, c.factor, c.pool.cost_per_hour, c.pool.name))
    if policy.type_choice == "any_free":
        return sorted(cands, key=lambda c: (-free_of(c.pool.name), c.pool.name))
    ordered = sorted(cands, key=_fastest_key)
    if policy.type_choice == "wait_fastest" and ordered:
        best = ordered[0].factor
        ordered = [c for c in ordered if math.isclose(c.factor, best, rel_tol=1e-9)]
    return ordered
