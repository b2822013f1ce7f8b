"""A frozen copy of the scheduling core as it was before the incremental cycle (main at ea5606b).

Why it exists: the fast cycle in `estuary.core` must make exactly the decisions this one makes
(admissions, preemptions, waiting reasons, messages, positions). The differential tests
(tests/unit/core/test_differential.py) run both on random snapshots and queues; bench/core_cycle.py
times both in the same run. Do not change it to follow new behaviour: a change of behaviour in the
core is a change of this oracle's verdicts, made on purpose in the same commit, with a reason.

Changed on purpose since: `Snapshot.nominated` (jobs that chose victims in an earlier cycle) are
decided before every other pending job, as in `estuary.core.nomination` (issue 17: a requeued
borrower took back the room freed for the reclaimer, forever). Without nominations it decides as
before; the differential tests draw snapshots with and without them.
"""

import dataclasses

import estuary.core

from .cycle import run_cycle
from .explain import explain
from .policy import Policy, TypeChoice
from .usage import PoolUsage, TenantUsage, pool_usage


def frozen_policy(policy: estuary.core.Policy) -> Policy:
    """The live `Policy` as this copy's own type, field by field.

    A field added to the live `Policy` fails here (an unexpected keyword): the oracle must then be
    taught the new knob on purpose, never run as if it did not exist.
    """
    fields = {f.name: getattr(policy, f.name) for f in dataclasses.fields(policy)}
    # Time-sharing (core/attained.py) came after this copy: it has nothing to compare when off.
    if fields.pop("time_sharing") is not None:
        raise ValueError("the frozen core has no time-sharing: compare policies without it")
    return Policy(**fields)


__all__ = [
    "Policy",
    "PoolUsage",
    "TenantUsage",
    "TypeChoice",
    "explain",
    "frozen_policy",
    "pool_usage",
    "run_cycle",
]
