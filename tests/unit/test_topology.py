"""Topology files: clear errors for bad input, deterministic Node objects for good input."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from devcluster import topology

REPO = Path(__file__).resolve().parents[2]

GOOD: dict[str, Any] = {
    "clusters": [
        {
            "name": "hk",
            "jurisdiction": "hk",
            "nodePools": [
                {
                    "name": "h800",
                    "count": 2,
                    "vendor": "nvidia",
                    "model": "H800",
                    "resource": "nvidia.com/gpu",
                    "acceleratorsPerNode": 8,
                    "cpu": "96",
                    "memory": "1024Gi",
                    "labels": {"topology.kubernetes.io/zone": "hk-a", "estuary.dev/rack": "r1"},
                    "taints": [{"key": "estuary.dev/accelerator", "value": "nvidia", "effect": "NoSchedule"}],
                },
                {
                    "name": "ascend",
                    "count": 1,
                    "vendor": "huawei",
                    "model": "Ascend910B",
                    "resource": "huawei.com/Ascend910",
                    "acceleratorsPerNode": 8,
                    "cpu": 192,
                    "memory": "1536Gi",
                },
            ],
        }
    ],
}


def with_change(path: str, value: object) -> dict[str, Any]:
    """GOOD with one field replaced (value None deletes it); path like 'clusters.0.nodePools.1.count'."""
    data = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node: Any = data
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    key: Any = int(last) if last.isdigit() else last
    if value is None:
        del node[key]
    else:
        node[key] = value
    return data


def test_good_topology_renders_deterministic_nodes() -> None:
    topo = topology.parse(GOOD)
    hk = topo.cluster("hk")
    nodes = hk.nodes()
    assert [n["metadata"]["name"] for n in nodes] == ["h800-0", "h800-1", "ascend-0"]
    assert nodes == topology.parse(copy.deepcopy(GOOD)).cluster("hk").nodes()

    h800 = nodes[0]
    labels = h800["metadata"]["labels"]
    assert labels["estuary.dev/node-pool"] == "h800"
    assert labels["estuary.dev/vendor"] == "nvidia"
    assert labels["estuary.dev/model"] == "H800"
    assert labels["kubernetes.io/hostname"] == "h800-0"
    assert labels["type"] == "kwok"
    assert labels["topology.kubernetes.io/zone"] == "hk-a"
    assert labels["estuary.dev/rack"] == "r1"
    assert h800["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert h800["spec"]["taints"] == [
        {"key": "estuary.dev/accelerator", "value": "nvidia", "effect": "NoSchedule"}
    ]
    assert h800["status"]["capacity"] == {
        "cpu": "96",
        "memory": "1024Gi",
        "pods": "110",
        "nvidia.com/gpu": "8",
    }
    assert h800["status"]["allocatable"] == h800["status"]["capacity"]

    ascend = nodes[2]
    assert ascend["status"]["allocatable"]["huawei.com/Ascend910"] == "8"
    assert ascend["status"]["allocatable"]["cpu"] == "192"  # an int in YAML becomes a quantity string
    assert ascend["spec"]["taints"] == []
    # kwok's default node taint is not added.
    assert all(t["key"] != "kwok.x-k8s.io/node" for n in nodes for t in n["spec"]["taints"])


def test_cpu_only_pool_needs_no_accelerator_fields() -> None:
    data = with_change("clusters.0.nodePools.1", {"name": "cpu", "count": 1, "cpu": "8", "memory": "32Gi"})
    node = topology.parse(data).cluster("hk").nodes()[-1]
    assert node["status"]["capacity"] == {"cpu": "8", "memory": "32Gi", "pods": "110"}
    assert "estuary.dev/vendor" not in node["metadata"]["labels"]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("clusters", [], "clusters: must be a non-empty list"),
        ("clusters.0.name", "HK_1", "clusters[0].name: must be a lowercase DNS label"),
        ("clusters.0.name", "a" * 21, "clusters[0].name: must be at most 20 characters"),
        ("clusters.0.jurisdiction", None, "clusters[0].jurisdiction: is required"),
        ("clusters.0.nodePools", [], "clusters[0].nodePools: must be a non-empty list"),
        ("clusters.0.nodePools.0.count", "four", "clusters[0].nodePools[0].count: must be an integer >= 1"),
        ("clusters.0.nodePools.0.count", 0, "clusters[0].nodePools[0].count: must be an integer >= 1"),
        ("clusters.0.nodePools.0.count", True, "clusters[0].nodePools[0].count: must be an integer >= 1"),
        (
            "clusters.0.nodePools.0.acceleratorsPerNode",
            -1,
            "clusters[0].nodePools[0].acceleratorsPerNode: must be an integer >= 0",
        ),
        (
            "clusters.0.nodePools.0.resource",
            "gpu",
            "clusters[0].nodePools[0].resource: must be a domain-prefixed name",
        ),
        (
            "clusters.0.nodePools.0.resource",
            None,
            "clusters[0].nodePools[0].resource: is required when acceleratorsPerNode > 0",
        ),
        ("clusters.0.nodePools.0.memory", "lots", "clusters[0].nodePools[0].memory: must be a quantity"),
        ("clusters.0.nodePools.0.cpu", None, "clusters[0].nodePools[0].cpu: is required"),
        ("clusters.0.nodePools.0.gpus", 8, "clusters[0].nodePools[0].gpus: unknown field"),
        ("clusters.0.nodePools.0.labels", ["a"], "clusters[0].nodePools[0].labels: must be a mapping"),
        ("clusters.0.nodePools.0.labels.estuary.dev/vendor", "x", "is set by the tool itself"),
        (
            "clusters.0.nodePools.0.labels.rack",
            "r 1",
            "clusters[0].nodePools[0].labels.rack: is not a valid label value",
        ),
        (
            "clusters.0.nodePools.0.taints",
            [{"key": "k", "effect": "Sometimes"}],
            "clusters[0].nodePools[0].taints[0].effect: must be one of NoSchedule",
        ),
        (
            "clusters.0.nodePools.0.taints",
            [{"key": "k"}],
            "clusters[0].nodePools[0].taints[0].effect: is required",
        ),
        ("clusters.0.nodePools.1.name", "h800", "clusters[0].nodePools[1].name: duplicate pool name 'h800'"),
    ],
)
def test_bad_field_is_named(path: str, value: object, message: str) -> None:
    if path.endswith("estuary.dev/vendor"):  # dots inside a label key: set it directly
        data = copy.deepcopy(GOOD)
        data["clusters"][0]["nodePools"][0]["labels"]["estuary.dev/vendor"] = value
    else:
        data = with_change(path, value)
    with pytest.raises(topology.TopologyError) as exc:
        topology.parse(data, source="t.yaml")
    assert str(exc.value).startswith("t.yaml: ")
    assert message in str(exc.value)


def test_duplicate_cluster_and_top_level_errors() -> None:
    data = copy.deepcopy(GOOD)
    data["clusters"].append(copy.deepcopy(data["clusters"][0]))
    with pytest.raises(topology.TopologyError, match=r"clusters\[1\]\.name: duplicate cluster name 'hk'"):
        topology.parse(data)
    with pytest.raises(topology.TopologyError, match=r"\(top level\): must be a mapping"):
        topology.parse(["x"])
    with pytest.raises(topology.TopologyError, match=r"\(top level\)\.extra: unknown field"):
        topology.parse({**GOOD, "extra": 1})


def test_load_reports_file_problems(tmp_path: Path) -> None:
    with pytest.raises(topology.TopologyError, match="cannot read topology file"):
        topology.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusters: [\n")
    with pytest.raises(topology.TopologyError, match=r"bad\.yaml: not valid YAML"):
        topology.load(bad)
    bad.write_text(
        "clusters:\n  - name: x\n    jurisdiction: hk\n    nodePools:\n      - {name: p, count: 1}\n"
    )
    with pytest.raises(
        topology.TopologyError, match=r"bad\.yaml: clusters\[0\]\.nodePools\[0\]\.cpu: is required"
    ):
        topology.load(bad)


def test_shipped_topologies() -> None:
    ci = topology.load(REPO / "hack" / "topologies" / "ci.yaml")
    assert [c.name for c in ci.clusters] == ["ci"]
    pools = {p.name: p for p in ci.cluster("ci").node_pools}
    assert set(pools) == {"h800", "ascend"}
    assert (pools["h800"].count, pools["h800"].resource, pools["h800"].accelerators_per_node) == (
        3,
        "nvidia.com/gpu",
        8,
    )
    assert (pools["h800"].cpu, pools["h800"].memory) == ("64", "512Gi")
    assert (pools["ascend"].count, pools["ascend"].resource, pools["ascend"].model) == (
        3,
        "huawei.com/Ascend910",
        "Ascend910B",
    )

    campus = topology.load(REPO / "hack" / "topologies" / "campus.yaml")
    assert {c.name: c.jurisdiction for c in campus.clusters} == {"hk": "hk", "gz": "mainland"}
    hk = campus.cluster("hk").nodes()
    h800 = [n for n in hk if n["metadata"]["labels"].get("estuary.dev/model") == "H800"]
    ascend = [n for n in hk if n["metadata"]["labels"].get("estuary.dev/model") == "Ascend910B"]
    assert len(h800) == 4 and len(ascend) == 4
    assert {n["metadata"]["labels"]["estuary.dev/rack"] for n in h800} == {"r1", "r2"}
    with pytest.raises(KeyError, match="no cluster 'nope'"):
        campus.cluster("nope")
