"""The knobs one scheduling cycle runs under.

Why it exists: the operator and the simulator run the very same core; the simulator compares
Estuary's rules with simpler baselines (strict FIFO, heterogeneity-agnostic placement, no
preemption) by changing a `Policy`, never by forking the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TypeChoice = Literal["fastest", "preference", "any_free", "wait_fastest"]


@dataclass(frozen=True, slots=True)
class Policy:
    """How a cycle chooses among accelerator types, orders the queue and protects waiting jobs.

    type_choice:
      "fastest"      among accepted types/pools where the gang fits now, the lowest estimated runtime
                     (ties: the user's preference order, then cost, then pool name);
      "preference"   the first accepted type, in the user's order, that fits now;
      "any_free"     heterogeneity-agnostic: any pool that fits, the one with most free accelerators;
      "wait_fastest" only the fastest accepted type; wait for it.
    backfill: False is strict FIFO: a job blocked for capacity or quota blocks everything behind it.
    reserve_after_s: starvation guard; a blocked job waiting this long reserves nodes (docs/scheduling.md).
    preemption: reclaim lent quota and let higher priority evict lower priority within a tenant.
    fair_sharing: order borrowers of equal priority by their tenant's weighted borrowed share.
    """

    type_choice: TypeChoice = "fastest"
    backfill: bool = True
    reserve_after_s: float = 300.0
    preemption: bool = True
    fair_sharing: bool = True
