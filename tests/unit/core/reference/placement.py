"""Gang placement inside one pool: which node each worker of a job goes to, or none at all.

Why it exists: all-or-nothing starts are the product's promise. A gang is placed only when every
worker fits on a concrete node at once (accelerators, CPU and memory), never partly. Among the ways
to place it, this module prefers:
  1. one topology domain: a single rack (label estuary.dev/rack) if any can hold the gang, else a
     single zone (topology.kubernetes.io/zone), else the whole pool; within the level, the domain
     giving the fewest nodes, then the least leftover (fragmentation), then the domain's name;
  2. within a domain, the fewest nodes: nodes that hold the most workers first;
  3. best fit: among nodes holding equally many workers, the most used first, and for the last
     node the one that holds the remaining workers with the least left over, so that empty nodes
     stay empty for large gangs.
The choice is greedy (exact when accelerators are the binding resource) and deterministic.
Single-worker jobs ignore topology (one node is always in one rack).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from estuary.model import Resources

from .capacity import Domain, PoolState, slots

Eligible = frozenset[str] | None  # None: every node of the pool is eligible


@dataclass(frozen=True, slots=True)
class Placement:
    nodes: tuple[str, ...]  # one node name per worker; index = rank, ranks on one node adjacent
    node_count: int
    leftover: int  # free accelerators left on the chosen nodes after placing
    domain: str  # "rack r1", "zone z1" or "the whole pool"


@dataclass(frozen=True, slots=True)
class _Attempt:
    placement: Placement | None
    room: int  # workers that fit in the domain (capped at the gang size)


def _level_range(k: int, per_accel: int, workers: int, max_level: int) -> range:
    """Free-accelerator levels at which a node holds exactly k workers by accelerators alone."""
    low = k * per_accel
    high = max_level if k == workers else min(max_level, low + per_accel - 1)
    return range(low, high + 1)


def _stream(
    pool: PoolState, domain: Domain, per_worker: Resources, workers: int, eligible: Eligible
) -> Iterator[tuple[int, int, str]]:
    """(workers it holds, free accelerators, node) in placement order: most workers first, then
    most used, then name. A node that CPU or memory limits below its accelerator level is deferred
    to its true level; its free accelerators are higher than any native there, so it comes last."""
    per_accel = per_worker.accelerators
    deferred: dict[int, list[tuple[int, str]]] = {}
    for k_level in range(min(workers, pool.max_level // per_accel), 0, -1):
        for level in _level_range(k_level, per_accel, workers, pool.max_level):
            for node in domain.buckets.get(level, ()):
                if eligible is not None and node not in eligible:
                    continue
                k = slots(pool.free[node], per_worker, workers)
                if k == k_level:
                    yield k, level, node
                elif k > 0:
                    deferred.setdefault(k, []).append((level, node))
        for level, node in sorted(deferred.pop(k_level, ())):
            yield k_level, level, node


def _best_fit(
    pool: PoolState,
    domain: Domain,
    per_worker: Resources,
    workers: int,
    eligible: Eligible,
    remainder: int,
    head: tuple[int, int, str],
    taken: set[str],
) -> tuple[int, int, str]:
    """The node that holds `remainder` more workers with the least left over (else `head`)."""
    for k_level in range(remainder, head[0]):
        for level in _level_range(k_level, per_worker.accelerators, workers, pool.max_level):
            for node in domain.buckets.get(level, ()):
                if node in taken or (eligible is not None and node not in eligible):
                    continue
                if slots(pool.free[node], per_worker, workers) >= remainder:
                    return k_level, level, node
    return head


def _linear(
    pool: PoolState, domain: Domain, per_worker: Resources, workers: int, eligible: Eligible
) -> Iterator[tuple[int, int, str]]:
    """Placement order for workers that ask for no accelerators (rare; a plain sort)."""
    rows = []
    for node in domain.nodes():
        if eligible is None or node in eligible:
            k = slots(pool.free[node], per_worker, workers)
            if k > 0:
                rows.append((-k, pool.level(node), node))
    for neg_k, level, node in sorted(rows):
        yield -neg_k, level, node


def _attempt(
    pool: PoolState, domain: Domain, per_worker: Resources, workers: int, eligible: Eligible
) -> _Attempt:
    per_accel = per_worker.accelerators
    stream = (
        _stream(pool, domain, per_worker, workers, eligible)
        if per_accel > 0
        else _linear(pool, domain, per_worker, workers, eligible)
    )
    chosen: list[tuple[int, int, str]] = []
    total = 0
    head: tuple[int, int, str] | None = None
    for item in stream:
        if total + item[0] >= workers:
            head = item
            break
        chosen.append(item)
        total += item[0]
    if head is None:
        return _Attempt(None, total)
    remainder = workers - total
    last = head
    if per_accel > 0:
        taken = {node for _, _, node in chosen}
        last = _best_fit(pool, domain, per_worker, workers, eligible, remainder, head, taken)
    ranks: list[str] = []
    leftover = 0
    for k, level, node in chosen:
        ranks.extend([node] * k)
        leftover += level - k * per_accel
    ranks.extend([last[2]] * remainder)
    leftover += last[1] - remainder * per_accel
    return _Attempt(Placement(tuple(ranks), len(chosen) + 1, leftover, domain.label), workers)


def place(pool: PoolState, per_worker: Resources, workers: int, eligible: Eligible) -> Placement | None:
    """Where a gang of `workers` goes in this pool right now, or None if it does not fit whole."""
    need = workers * per_worker.accelerators
    if workers <= 0 or pool.whole.free_total < need:
        return None
    if workers > 1:
        per_node = pool.max_level // per_worker.accelerators if per_worker.accelerators > 0 else workers
        best_possible = -(-workers // max(1, per_node))  # a lower bound on the node count
        for level in (pool.racks, pool.zones):
            best: Placement | None = None
            for name in sorted(level):
                domain = level[name]
                if domain.free_total < need:
                    continue
                found = _attempt(pool, domain, per_worker, workers, eligible).placement
                if found is not None and (
                    best is None or (found.node_count, found.leftover) < (best.node_count, best.leftover)
                ):
                    best = found
                    if (best.node_count, best.leftover) == (best_possible, 0):
                        break  # no later domain can do better; ties go to the earlier name
            if best is not None:
                return best
    return _attempt(pool, pool.whole, per_worker, workers, eligible).placement


def room(pool: PoolState, per_worker: Resources, cap: int, eligible: Eligible) -> int:
    """How many workers (at most `cap`) fit in the pool right now, ignoring topology."""
    return _attempt(pool, pool.whole, per_worker, cap, eligible).room
