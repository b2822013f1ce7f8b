"""Declarative topology of local clusters: which clusters, and which simulated accelerator nodes.

A topology file says what a developer or a test needs (a Hong Kong cluster with H800 and Ascend
racks, a mainland partner, a small CI cluster) without saying how kwok simulates it. This module
only reads, checks and renders it: every mistake is reported with the path of the bad field, and
the Node objects it renders are deterministic, so tests and docs can name nodes (``h800-0``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Labels and annotations every simulated node carries.
POOL_LABEL = "estuary.dev/node-pool"
VENDOR_LABEL = "estuary.dev/vendor"
MODEL_LABEL = "estuary.dev/model"
HOSTNAME_LABEL = "kubernetes.io/hostname"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
RESERVED_LABELS = (POOL_LABEL, VENDOR_LABEL, MODEL_LABEL, HOSTNAME_LABEL, "type")

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
MAX_CLUSTER_NAME = 20  # kwokctl names the cluster estuary-<name>; its paths and ports stay short

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_QUANTITY = re.compile(r"^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[mkMGTPE])?$")


class TopologyError(ValueError):
    """A topology file is malformed; the message names the file and the bad field."""


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str = ""

    def manifest(self) -> dict[str, str]:
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


@dataclass(frozen=True)
class NodePool:
    """A homogeneous set of simulated nodes: same accelerator, size, labels and taints."""

    name: str
    count: int
    vendor: str
    model: str
    resource: str
    accelerators_per_node: int
    cpu: str
    memory: str
    pods: str = "110"
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()

    def node_names(self) -> list[str]:
        return [f"{self.name}-{i}" for i in range(self.count)]

    def capacity(self) -> dict[str, str]:
        out = {"cpu": self.cpu, "memory": self.memory, "pods": self.pods}
        if self.resource and self.accelerators_per_node:
            out[self.resource] = str(self.accelerators_per_node)
        return out


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    jurisdiction: str
    node_pools: tuple[NodePool, ...]

    def nodes(self) -> list[dict[str, Any]]:
        """The Node objects of this cluster, in pool order then index order."""
        return [render_node(pool, name) for pool in self.node_pools for name in pool.node_names()]


@dataclass(frozen=True)
class Topology:
    clusters: tuple[ClusterSpec, ...]
    source: str = "<topology>"

    def cluster(self, name: str) -> ClusterSpec:
        for c in self.clusters:
            if c.name == name:
                return c
        known = ", ".join(c.name for c in self.clusters)
        raise KeyError(f"no cluster {name!r} in {self.source} (clusters: {known})")


def render_node(pool: NodePool, name: str) -> dict[str, Any]:
    """One kwok-managed Node with its capacity set in status (kwok keeps what it finds there)."""
    labels = dict(pool.labels)
    labels.update(
        {
            POOL_LABEL: pool.name,
            HOSTNAME_LABEL: name,
            "kubernetes.io/os": labels.get("kubernetes.io/os", "linux"),
            "kubernetes.io/arch": labels.get("kubernetes.io/arch", "amd64"),
            "type": "kwok",
        }
    )
    if pool.vendor:
        labels[VENDOR_LABEL] = pool.vendor
    if pool.model:
        labels[MODEL_LABEL] = pool.model
    capacity = pool.capacity()
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": dict(sorted(labels.items())),
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"taints": [t.manifest() for t in pool.taints]},
        "status": {"capacity": dict(capacity), "allocatable": dict(capacity)},
    }


# ---------------------------------------------------------------------------------------------
# Parsing. Each helper takes the path of the value it checks, so errors read like
# "campus.yaml: clusters[0].nodePools[1].count: must be an integer >= 1, got 'four'".


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> TopologyError:
        return TopologyError(f"{self.source}: {path}: {problem}")

    def mapping(
        self, value: object, path: str, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"must be a mapping, got {_show(value)}")
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            raise self.fail(f"{path}.{unknown[0]}", f"unknown field (allowed: {', '.join(allowed)})")
        missing = [k for k in required if k not in value]
        if missing:
            raise self.fail(f"{path}.{missing[0]}", "is required")
        return value

    def string(
        self,
        value: object,
        path: str,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
        max_len: int = 63,
    ) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.fail(path, f"must be a string, got {_show(value)}")
        text = str(value)
        if not text:
            raise self.fail(path, "must not be empty")
        if len(text) > max_len:
            raise self.fail(path, f"must be at most {max_len} characters, got {len(text)}")
        if pattern is not None and not pattern.match(text):
            raise self.fail(path, f"must be {what}, got {text!r}")
        return text

    def integer(self, value: object, path: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(path, f"must be an integer >= {minimum}, got {_show(value)}")
        return value

    def quantity(self, value: object, path: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.fail(path, f'must be a quantity such as "64" or "512Gi", got {_show(value)}')
        text = str(value)
        if not _QUANTITY.match(text):
            raise self.fail(path, f'must be a quantity such as "64" or "512Gi", got {text!r}')
        return text

    def qualified_name(self, value: object, path: str, prefix_required: bool) -> str:
        text = self.string(value, path, max_len=317)
        prefix, _, name = text.rpartition("/")
        if prefix_required and not prefix:
            raise self.fail(path, f"must be a domain-prefixed name such as nvidia.com/gpu, got {text!r}")
        if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
            raise self.fail(path, f"has an invalid prefix {prefix!r} (a DNS subdomain is needed)")
        if len(name) > 63 or not _LABEL_NAME.match(name):
            raise self.fail(path, f"has an invalid name part {name!r} (alphanumerics, '-', '_', '.')")
        return text

    def label_value(self, value: object, path: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.fail(path, f"must be a string (quote it), got {_show(value)}")
        text = str(value)
        if text and (len(text) > 63 or not _LABEL_NAME.match(text)):
            raise self.fail(path, f"is not a valid label value: {text!r}")
        return text


def _show(value: object) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


_POOL_FIELDS = (
    "name",
    "count",
    "vendor",
    "model",
    "resource",
    "acceleratorsPerNode",
    "cpu",
    "memory",
    "pods",
    "labels",
    "taints",
)


def _pool(r: _Reader, raw: object, path: str) -> NodePool:
    m = r.mapping(raw, path, _POOL_FIELDS, ("name", "count", "cpu", "memory"))
    per_node = r.integer(m.get("acceleratorsPerNode", 0), f"{path}.acceleratorsPerNode", 0)
    accel: dict[str, str] = {}
    for key in ("vendor", "model", "resource"):
        if key in m:
            accel[key] = r.string(m[key], f"{path}.{key}", max_len=317)
        elif per_node:
            raise r.fail(f"{path}.{key}", "is required when acceleratorsPerNode > 0")
    if "vendor" in accel:
        r.string(accel["vendor"], f"{path}.vendor", _DNS_LABEL, "a lowercase DNS label such as nvidia")
    if "model" in accel:
        r.label_value(accel["model"], f"{path}.model")
    if "resource" in accel:
        r.qualified_name(accel["resource"], f"{path}.resource", prefix_required=True)
    labels: dict[str, str] = {}
    raw_labels = m.get("labels") or {}
    if not isinstance(raw_labels, Mapping):
        raise r.fail(f"{path}.labels", f"must be a mapping of label to value, got {_show(raw_labels)}")
    for key, value in raw_labels.items():
        r.qualified_name(key, f"{path}.labels.{key}", prefix_required=False)
        if key in RESERVED_LABELS:
            raise r.fail(f"{path}.labels.{key}", "is set by the tool itself; remove it")
        labels[str(key)] = r.label_value(value, f"{path}.labels.{key}")
    taints: list[Taint] = []
    raw_taints = m.get("taints") or []
    if not isinstance(raw_taints, list):
        raise r.fail(f"{path}.taints", f"must be a list, got {_show(raw_taints)}")
    for i, t in enumerate(raw_taints):
        tpath = f"{path}.taints[{i}]"
        tm = r.mapping(t, tpath, ("key", "value", "effect"), ("key", "effect"))
        effect = r.string(tm["effect"], f"{tpath}.effect")
        if effect not in TAINT_EFFECTS:
            raise r.fail(f"{tpath}.effect", f"must be one of {', '.join(TAINT_EFFECTS)}, got {effect!r}")
        taints.append(
            Taint(
                key=r.qualified_name(tm["key"], f"{tpath}.key", prefix_required=False),
                value=r.label_value(tm.get("value", ""), f"{tpath}.value"),
                effect=effect,
            )
        )
    return NodePool(
        name=r.string(
            m["name"], f"{path}.name", _DNS_LABEL, "a lowercase DNS label such as h800", max_len=50
        ),
        count=r.integer(m["count"], f"{path}.count", 1),
        vendor=accel.get("vendor", ""),
        model=accel.get("model", ""),
        resource=accel.get("resource", ""),
        accelerators_per_node=per_node,
        cpu=r.quantity(m["cpu"], f"{path}.cpu"),
        memory=r.quantity(m["memory"], f"{path}.memory"),
        pods=r.quantity(m.get("pods", "110"), f"{path}.pods"),
        labels=labels,
        taints=tuple(taints),
    )


def _cluster(r: _Reader, raw: object, path: str) -> ClusterSpec:
    m = r.mapping(raw, path, ("name", "jurisdiction", "nodePools"), ("name", "jurisdiction", "nodePools"))
    name = r.string(
        m["name"], f"{path}.name", _DNS_LABEL, "a lowercase DNS label such as hk", max_len=MAX_CLUSTER_NAME
    )
    jurisdiction = r.string(
        m["jurisdiction"], f"{path}.jurisdiction", _DNS_LABEL, "a lowercase DNS label such as hk or mainland"
    )
    raw_pools = m["nodePools"]
    if not isinstance(raw_pools, list) or not raw_pools:
        raise r.fail(f"{path}.nodePools", f"must be a non-empty list, got {_show(raw_pools)}")
    pools = [_pool(r, p, f"{path}.nodePools[{i}]") for i, p in enumerate(raw_pools)]
    seen: set[str] = set()
    for i, pool in enumerate(pools):
        if pool.name in seen:
            raise r.fail(f"{path}.nodePools[{i}].name", f"duplicate pool name {pool.name!r}")
        seen.add(pool.name)
    return ClusterSpec(name=name, jurisdiction=jurisdiction, node_pools=tuple(pools))


def parse(data: object, source: str = "<topology>") -> Topology:
    """Check a topology already read from YAML and return it; raises TopologyError."""
    r = _Reader(source)
    m = r.mapping(data, "(top level)", ("clusters",), ("clusters",))
    raw = m["clusters"]
    if not isinstance(raw, list) or not raw:
        raise r.fail("clusters", f"must be a non-empty list, got {_show(raw)}")
    clusters = [_cluster(r, c, f"clusters[{i}]") for i, c in enumerate(raw)]
    seen: set[str] = set()
    for i, c in enumerate(clusters):
        if c.name in seen:
            raise r.fail(f"clusters[{i}].name", f"duplicate cluster name {c.name!r}")
        seen.add(c.name)
    return Topology(clusters=tuple(clusters), source=source)


def load(path: str | Path) -> Topology:
    """Read and check a topology file; raises TopologyError naming the file and field."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise TopologyError(f"{p}: cannot read topology file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(f"{p}: not valid YAML: {exc}") from exc
    return parse(data, source=str(p))
