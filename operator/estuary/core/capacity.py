"""Free capacity per node and per topology domain of one pool, for one scheduling cycle.

Why it exists: every fit check in a cycle asks "which nodes of this pool have room for a worker?".
This module answers from a map built once from the nodes and then kept up to date: running jobs
that start or end take or give back their room (workspace.py), so a cycle never rebuilds it from
every node. Nodes sit in buckets by free accelerators, per domain (the pool, each rack, each zone),
so a check touches only nodes that can hold a worker. The cycle updates the map in place as it
admits jobs (later jobs see earlier admissions) and undoes that afterwards; preemption's what-ifs
release and re-take running jobs on the same map instead of copying it.

Free per node = allocatable - foreign pods - Estuary's running workers (terminating ones still
hold) - unhealthy accelerators. Not-ready or unschedulable nodes are members but offer nothing.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator, Mapping

from estuary.model import NodeInfo, PoolSpec, Resources

RACK_LABEL = "estuary.dev/rack"
ZONE_LABEL = "topology.kubernetes.io/zone"
WHOLE_POOL = "the whole pool"


def node_resources(values: Mapping[str, int], resource: str) -> Resources:
    """Accelerators (of `resource`), CPU and memory out of a Kubernetes-named mapping."""
    return Resources(values.get(resource, 0), values.get("cpu", 0), values.get("memory", 0))


def slots(free: Resources, per_worker: Resources, cap: int) -> int:
    """How many workers of `per_worker` fit in `free`, at most `cap`."""
    k = cap
    if per_worker.accelerators > 0:
        k = min(k, free.accelerators // per_worker.accelerators)
    if per_worker.cpu_milli > 0:
        k = min(k, free.cpu_milli // per_worker.cpu_milli)
    if per_worker.memory > 0:
        k = min(k, free.memory // per_worker.memory)
    return max(k, 0)


class Domain:
    """A set of nodes (the pool, a rack or a zone) bucketed by free accelerators."""

    __slots__ = ("buckets", "free_total", "kind", "name")

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind  # "pool" | "rack" | "zone"
        self.name = name
        self.buckets: dict[int, list[str]] = {}  # free accelerators -> node names, sorted
        self.free_total = 0

    @property
    def label(self) -> str:
        return WHOLE_POOL if self.kind == "pool" else f"{self.kind} {self.name}"

    def insert(self, node: str, level: int) -> None:
        insort(self.buckets.setdefault(level, []), node)
        self.free_total += level

    def remove(self, node: str, level: int) -> None:
        bucket = self.buckets[level]
        del bucket[bisect_left(bucket, node)]
        self.free_total -= level

    def nodes(self) -> Iterator[str]:
        for level in sorted(self.buckets):
            yield from self.buckets[level]


class PoolState:
    """The mutable free map of one pool during one cycle."""

    def __init__(
        self,
        spec: PoolSpec,
        members: Iterable[NodeInfo],
        foreign: Mapping[str, Mapping[str, int]],
        load: Mapping[str, Resources],
    ) -> None:
        self.spec = spec
        self.members: dict[str, NodeInfo] = {n.name: n for n in members}
        self.allocatable: dict[str, Resources] = {}
        self.base: dict[str, Resources] = {}  # free once every Estuary job on the node has ended
        self.free: dict[str, Resources] = {}  # schedulable nodes only
        self.whole = Domain("pool", spec.name)
        self.racks: dict[str, Domain] = {}
        self.zones: dict[str, Domain] = {}
        self._domains: dict[str, tuple[Domain, ...]] = {}
        self.reserved: set[str] = set()
        self.reserved_for: str | None = None
        self.sick: list[str] = []  # schedulable nodes with unhealthy accelerators
        self.max_level = 0
        for name in sorted(self.members):
            node = self.members[name]
            alloc = node_resources(node.capacity, spec.resource)
            self.allocatable[name] = alloc
            if not node.ready or node.unschedulable:
                continue
            base = (
                alloc
                - node_resources(foreign.get(name, {}), spec.resource)
                - Resources(node.unhealthy_accelerators)
            )
            self.base[name] = base
            if node.unhealthy_accelerators:
                self.sick.append(name)
            self.free[name] = base - load.get(name, Resources())
            self.max_level = max(self.max_level, alloc.accelerators)
            domains = [self.whole]
            rack, zone = node.labels.get(RACK_LABEL), node.labels.get(ZONE_LABEL)
            if rack is not None:
                domains.append(self.racks.setdefault(rack, Domain("rack", rack)))
            if zone is not None:
                domains.append(self.zones.setdefault(zone, Domain("zone", zone)))
            self._domains[name] = tuple(domains)
            level = self.level(name)
            for domain in domains:
                domain.insert(name, level)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def resource(self) -> str:
        return self.spec.resource

    @property
    def schedulable(self) -> Iterable[str]:
        return self.free.keys()

    def level(self, node: str) -> int:
        return max(self.free[node].accelerators, 0)

    def adjust(self, node: str, delta: Resources) -> None:
        """Add `delta` to a node's free resources (negative: take). Free may go below zero while
        a preempting job holds room that victims still occupy; such a node simply has no room."""
        old = self.free.get(node)
        if old is None:
            return  # not schedulable: offers nothing either way
        before = self.level(node)
        self.free[node] = old + delta
        after = self.level(node)
        if before != after and node not in self.reserved:
            for domain in self._domains[node]:
                domain.remove(node, before)
                domain.insert(node, after)

    def take(self, nodes: Iterable[str], per_worker: Resources) -> None:
        """Place one worker of `per_worker` on each listed node (a node listed twice gets two)."""
        for node in nodes:
            self.adjust(node, Resources() - per_worker)

    def give(self, nodes: Iterable[str], per_worker: Resources) -> None:
        """Undo `take`."""
        for node in nodes:
            self.adjust(node, per_worker)

    def reserve(self, nodes: Iterable[str], holder: str) -> None:
        """Hide nodes from every later placement this cycle (the starvation guard)."""
        self.reserved_for = holder
        for node in nodes:
            if node in self.reserved or node not in self.free:
                continue
            level = self.level(node)
            for domain in self._domains[node]:
                domain.remove(node, level)
            self.reserved.add(node)

    def unreserve(self) -> None:
        """Undo every `reserve` of this cycle: the nodes rejoin their domains at their level now."""
        for node in sorted(self.reserved):
            level = self.level(node)
            for domain in self._domains[node]:
                domain.insert(node, level)
        self.reserved.clear()
        self.reserved_for = None

    def worth_counting(self, per_accel: int) -> Iterable[str]:
        """The schedulable nodes that can hold a worker asking `per_accel` accelerators or that
        carry unhealthy ones, plus the reserved ones: when a worker asks for accelerators, a node
        with none free, none unhealthy and not reserved counts for nothing (evaluate.py)."""
        if per_accel <= 0:
            return self.free.keys()
        found = set(self.reserved)
        found.update(self.sick)
        for level, nodes in self.whole.buckets.items():
            if level > 0:
                found.update(nodes)
        return found

    def free_accelerators(self) -> int:
        """Free accelerators on schedulable nodes that are not reserved."""
        return self.whole.free_total
