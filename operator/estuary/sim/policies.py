"""The scheduling policies the simulator compares, all run by the operator's own core.

Each name binds ``estuary.core.run_cycle`` to one ``Policy``: Estuary's default, and baselines
that switch off its heterogeneity awareness or backfilling. The simulator never reimplements a
policy; a baseline is the same core with different settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from estuary.core import CycleState, Policy, TimeSharing, run_cycle
from estuary.model import CycleResult, JobRequest, Snapshot
from estuary.sim.engine import Assumptions, Schedule


@dataclass(frozen=True)
class NamedPolicy:
    name: str
    policy: Policy
    description: str

    def schedule(self) -> Schedule:
        """A scheduler for one replay: the core under this policy, with its own `CycleState`
        carried from cycle to cycle (so a cycle costs what changed, as in the operator)."""
        policy = self.policy
        state = CycleState()

        def cycle(snapshot: Snapshot, pending: Sequence[JobRequest], now: float) -> CycleResult:
            return run_cycle(snapshot, pending, now, policy, state=state)

        return cycle

    def with_costs(self, assumptions: Assumptions) -> NamedPolicy:
        """The policy with time-sharing's move costs set to what the replay assumes, so that it
        weighs a move by the costs the replay will charge."""
        ts = self.policy.time_sharing
        if ts is None:
            return self
        costs = replace(
            ts,
            grace_s=assumptions.termination_grace_s,
            checkpoint_interval_s=assumptions.checkpoint_interval_s,
            restart_s=assumptions.restart_overhead_s,
        )
        return replace(self, policy=replace(self.policy, time_sharing=costs))

    @property
    def slice_s(self) -> float | None:
        """Time-sharing's minimum slice, after which a running job may yield or move."""
        ts = self.policy.time_sharing
        return None if ts is None else ts.min_slice_s

    @property
    def wake_after(self) -> float | None:
        """When a queued job's age starts to matter to the core (its reservation), in seconds."""
        return self.policy.reserve_after_s if self.policy.backfill else None


POLICIES: dict[str, NamedPolicy] = {
    p.name: p
    for p in (
        NamedPolicy(
            "estuary", Policy(), "Estuary's default: fastest free type for each job, backfill, reservations"
        ),
        NamedPolicy(
            "fifo-agnostic",
            Policy(type_choice="any_free", backfill=False),
            "heterogeneity-agnostic FIFO: strict arrival order, any free accepted type",
        ),
        NamedPolicy(
            "fifo-fastest",
            Policy(type_choice="wait_fastest", backfill=False),
            "FIFO that waits for each job's fastest type",
        ),
        NamedPolicy(
            "agnostic-backfill",
            Policy(type_choice="any_free", backfill=True),
            "heterogeneity-agnostic with backfill: any free type, later jobs may pass",
        ),
        NamedPolicy(
            "preemptive",
            Policy(time_sharing=TimeSharing()),
            "Estuary with time-sharing: least attained service first (3 queues), turns of at least "
            "20 min, moves to faster types that pay for themselves; remaining work not known",
        ),
    )
}

DEFAULT_POLICIES = ("estuary", "fifo-agnostic", "fifo-fastest", "agnostic-backfill")


def named(names: Sequence[str]) -> list[NamedPolicy]:
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"unknown policy {unknown[0]!r} (known: {', '.join(POLICIES)})")
    return [POLICIES[n] for n in names]
