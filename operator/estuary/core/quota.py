"""Tenant quotas per pool: nominal, borrowing and lending, and the weighted share used for fairness.

Why it exists: a tenant (a college, a team) gets a guaranteed share of each pool and may borrow what
others leave idle. Every admission must stay inside these limits, and fair sharing and reclaiming
preemption both need the same accounting; it lives here once.

Rules (all in accelerators of the pool's resource):
- A pool with no quota entries enforces nothing. Otherwise a tenant's entry is its own, else the
  "*" entry (each unlisted tenant is treated as if listed with a copy of it), else nominal 0 and
  borrowing limit 0: the tenant cannot use the pool.
- usage(t) counts t's running jobs in the pool (terminating ones still hold).
- Admission never exceeds usage(t) <= nominal(t) + borrowing_limit(t), and what t uses above its
  nominal must come from borrowable capacity:
      unassigned = max(0, healthy capacity - sum of nominal over the tenants in play)
      borrowable(t) = unassigned + sum over others o of min(lending_limit(o), unused nominal(o))
                      - sum over others o of what o already borrows
  where the tenants in play are the listed ones, the unlisted ones using the pool, and t.
- share(t) = sum over pools of borrowed(t, pool) * pool.throughput / weight(t, pool): borrowing a
  fast accelerator counts for more than borrowing a slow one (normalised by relative throughput).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from estuary.model import PoolSpec, RunningJob, TenantQuota

UNLIMITED = 1 << 62
STAR = "*"
_LOCKED_OUT = TenantQuota(nominal=0, borrowing_limit=0, lending_limit=0)


@dataclass(frozen=True, slots=True)
class QuotaCheck:
    room: int  # accelerators the tenant may still add in the pool (UNLIMITED if not enforced)
    used: int
    nominal: int
    borrowing_limit: int | None
    borrowable: int  # what the tenant may still borrow given others' lending and borrowing
    listed: bool  # the tenant has an entry (its own or "*")

    def message(self, tenant: str, pool: str, need: int) -> str:
        if not self.listed:
            return f"tenant {tenant} has no quota in pool {pool} (not listed, and no '*' entry); needs {need}"
        may_borrow = max(0, self.room - max(0, self.nominal - self.used))
        limit = (
            "no borrowing limit"
            if self.borrowing_limit is None
            else f"borrowing limit {self.borrowing_limit}"
        )
        limit_room = (
            UNLIMITED
            if self.borrowing_limit is None
            else self.nominal + self.borrowing_limit - max(self.used, self.nominal)
        )
        if self.borrowable < limit_room:
            limit += f"; {self.borrowable} left to borrow in the pool"
        return (
            f"tenant {tenant} in pool {pool}: used {self.used} of nominal {self.nominal}, "
            f"may borrow {may_borrow} more ({limit}); needs {need}"
        )


def job_accelerators(running: RunningJob) -> int:
    return running.job.per_worker.accelerators * running.assignment.workers


class QuotaBook:
    """Per-pool, per-tenant accelerator usage during one cycle, with the quota rules on top."""

    def __init__(
        self, pools: Mapping[str, PoolSpec], healthy: Mapping[str, int], running: Iterable[RunningJob]
    ) -> None:
        self._pools = pools
        self._healthy = dict(healthy)
        self._usage: dict[str, dict[str, int]] = {name: {} for name in pools}
        self._borrowable: dict[str, dict[str, int]] = {}  # cache, dropped per pool on every change
        self._held: dict[tuple[str, str], int] = {}  # held for preempting jobs: counted, not running
        # Bumped on every change of a pool's usage, so a cycle can tell that a verdict which read
        # the pool's quota is still current (cycle.py) without re-reading it.
        self.version: dict[str, int] = {name: 0 for name in pools}
        self.changes = 0  # all pools together (fair-share values)
        for job in running:
            self.add(job.assignment.pool, job.job.tenant, job_accelerators(job))

    def enforced_anywhere(self) -> bool:
        return any(spec.quotas for spec in self._pools.values())

    def enforced(self, pool: str) -> bool:
        spec = self._pools.get(pool)
        return spec is not None and bool(spec.quotas)

    def entry(self, pool: str, tenant: str) -> TenantQuota:
        quotas = self._pools[pool].quotas
        return quotas.get(tenant) or quotas.get(STAR) or _LOCKED_OUT

    def listed(self, pool: str, tenant: str) -> bool:
        quotas = self._pools[pool].quotas
        return tenant in quotas or STAR in quotas

    def used(self, pool: str, tenant: str) -> int:
        return self._usage.get(pool, {}).get(tenant, 0)

    def usage(self, pool: str) -> Mapping[str, int]:
        return self._usage.get(pool, {})

    def add(self, pool: str, tenant: str, amount: int) -> None:
        usage = self._usage.setdefault(pool, {})
        usage[tenant] = usage.get(tenant, 0) + amount
        self._borrowable.pop(pool, None)
        self.version[pool] = self.version.get(pool, 0) + 1
        self.changes += 1

    def tenants(self, pool: str, also: str | None = None) -> list[str]:
        """The tenants in play in a pool: listed ones, unlisted ones using it, and `also`."""
        names = {t for t in self._pools[pool].quotas if t != STAR}
        names.update(t for t, used in self._usage.get(pool, {}).items() if used > 0)
        if also is not None:
            names.add(also)
        return sorted(names)

    def borrowed(self, pool: str, tenant: str) -> int:
        if not self.enforced(pool):
            return 0
        return max(0, self.used(pool, tenant) - self.entry(pool, tenant).nominal)

    def hold(self, pool: str, tenant: str, amount: int) -> None:
        """Count `amount` for a job that waits for its victims: it binds limits like usage, but
        does not make the tenant a borrower that others may reclaim from before it runs."""
        self.add(pool, tenant, amount)
        self._held[pool, tenant] = self._held.get((pool, tenant), 0) + amount

    def unhold(self, pool: str, tenant: str, amount: int) -> None:
        """Undo `hold`."""
        self.add(pool, tenant, -amount)
        left = self._held[pool, tenant] - amount
        if left:
            self._held[pool, tenant] = left
        else:
            del self._held[pool, tenant]

    def borrowing(self, pool: str, tenant: str) -> bool:
        """Whether the tenant's running and admitted jobs use more than its nominal (holds excluded)."""
        if not self.enforced(pool):
            return False
        running = self.used(pool, tenant) - self._held.get((pool, tenant), 0)
        return running > self.entry(pool, tenant).nominal

    def unassigned(self, pool: str, also: str | None = None) -> int:
        nominal = sum(self.entry(pool, t).nominal for t in self.tenants(pool, also))
        return max(0, self._healthy.get(pool, 0) - nominal)

    def lendable(self, pool: str, tenant: str) -> int:
        """Idle nominal of `tenant` that others may borrow (its lending limit applies)."""
        quota = self.entry(pool, tenant)
        idle = max(0, quota.nominal - self.used(pool, tenant))
        return idle if quota.lending_limit is None else min(quota.lending_limit, idle)

    def borrowable(self, pool: str, tenant: str) -> int:
        cached = self._borrowable.setdefault(pool, {})
        if tenant not in cached:
            cached[tenant] = self._compute_borrowable(pool, tenant)
        return cached[tenant]

    def _compute_borrowable(self, pool: str, tenant: str) -> int:
        others = [t for t in self.tenants(pool, tenant) if t != tenant]
        total = self.unassigned(pool, tenant)
        total += sum(self.lendable(pool, o) for o in others)
        total -= sum(self.borrowed(pool, o) for o in others)
        return max(0, total - self.borrowed(pool, tenant))

    def check(self, pool: str, tenant: str) -> QuotaCheck:
        """How many more accelerators `tenant` may take in `pool` right now."""
        used = self.used(pool, tenant)
        if not self.enforced(pool):
            return QuotaCheck(UNLIMITED, used, 0, None, UNLIMITED, True)
        quota = self.entry(pool, tenant)
        borrowable = self.borrowable(pool, tenant)
        limit_room = (
            UNLIMITED if quota.borrowing_limit is None else quota.nominal + quota.borrowing_limit - used
        )
        nominal_room = max(0, quota.nominal - used)
        room = max(0, min(limit_room, nominal_room + borrowable))
        return QuotaCheck(
            room, used, quota.nominal, quota.borrowing_limit, borrowable, self.listed(pool, tenant)
        )

    def within_nominal(self, pool: str, tenant: str, amount: int) -> bool:
        """Whether taking `amount` more keeps the tenant within its nominal (true without quotas)."""
        if not self.enforced(pool):
            return True
        return self.used(pool, tenant) + amount <= self.entry(pool, tenant).nominal

    def share(self, tenant: str) -> float:
        """The tenant's weighted borrowed share across pools (lower goes first)."""
        total = 0.0
        for name in sorted(self._pools):
            borrowed = self.borrowed(name, tenant)
            if borrowed > 0:
                weight = self.entry(name, tenant).weight
                total += borrowed * self._pools[name].throughput / weight if weight > 0 else math.inf
        return total
