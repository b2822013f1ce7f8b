"""The CRDs install on a real API server, explain themselves, and refuse bad objects by field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from devcluster.clusters import Cluster
from tests.e2e.kube_helpers import GROUP, VERSION

GOOD_JOB: dict[str, Any] = {
    "workers": 2,
    "acceleratorsPerWorker": 8,
    "accelerators": [{"vendor": "nvidia", "model": "H800", "image": "img:1"}],
}
GOOD_POOL = {"vendor": "nvidia", "model": "H800", "nodeSelector": {"estuary.dev/model": "H800"}}
GOOD_LINK = {
    "kubeconfigSecretRef": {"name": "gz-kubeconfig"},
    "signingKeySecretRef": {"name": "gz-kubeconfig"},
    "jurisdiction": "mainland",
}
GZ_DATA = {"name": "scans", "cluster": "gz", "jurisdiction": "mainland", "size": "2Ti"}


def _obj(kind: str, name: str, spec: dict[str, Any], namespace: str | None) -> str:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return yaml.safe_dump({"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": meta, "spec": spec})


def _job(**changes: object) -> dict[str, Any]:
    return {**GOOD_JOB, **changes}


# (kind, object name, spec, text the API server's refusal must contain: the offending field)
INVALID = [
    ("AIJob", "no-types", _job(accelerators=[]), "spec.accelerators"),
    ("AIJob", "dup-types", _job(accelerators=[GOOD_JOB["accelerators"][0]] * 2), "spec.accelerators"),
    (
        "AIJob",
        "elastic-inverted",
        _job(workers=3, elastic={"minWorkers": 4, "maxWorkers": 2}),
        "spec.elastic.minWorkers",
    ),
    (
        "AIJob",
        "workers-outside-elastic",
        _job(workers=8, elastic={"minWorkers": 1, "maxWorkers": 4}),
        "spec.workers",
    ),
    ("AIJob", "bad-residency", _job(residency="mars"), "spec.residency"),
    ("AIJob", "zero-workers", _job(workers=0), "spec.workers"),
    ("AIJob", "bad-framework", _job(framework="caffe"), "spec.framework"),
    ("AIJob", "custom-no-command", _job(framework="custom"), "spec.command"),
    ("AIJob", "no-image", _job(accelerators=[{"vendor": "nvidia"}]), "spec.accelerators[0].image"),
    ("AIJob", "negative-restarts", _job(restartPolicy={"maxRestarts": -1}), "spec.restartPolicy.maxRestarts"),
    (
        "AIJob",
        "zero-throughput",
        _job(accelerators=[{"vendor": "nvidia", "image": "i", "relativeThroughput": 0}]),
        "spec.accelerators[0].relativeThroughput",
    ),
    ("AIJob", "x" * 51, GOOD_JOB, "metadata.name"),
    ("ComputePool", "no-selector", {**GOOD_POOL, "nodeSelector": {}}, "spec.nodeSelector"),
    ("ComputePool", "neg-throughput", {**GOOD_POOL, "relativeThroughput": -1}, "spec.relativeThroughput"),
    (
        "ComputePool",
        "lend-over-nominal",
        {**GOOD_POOL, "quotas": [{"tenant": "physics", "nominal": 8, "lendingLimit": 16}]},
        "spec.quotas[0].lendingLimit",
    ),
    (
        "ComputePool",
        "dup-tenant",
        {**GOOD_POOL, "quotas": [{"tenant": "a", "nominal": 1}, {"tenant": "a", "nominal": 2}]},
        "spec.quotas[1]",
    ),
    ("ComputePool", "no-vendor", {k: v for k, v in GOOD_POOL.items() if k != "vendor"}, "spec.vendor"),
    ("AIJob", "cpu-not-quantity", _job(resources={"cpu": "lots"}), "spec.resources.cpu"),
    ("AIJob", "negative-memory", _job(resources={"memory": "-1Gi"}), "spec.resources.memory"),
    ("AIJob", "negative-cpu-int", _job(resources={"cpu": -2}), "spec.resources.cpu"),
    (
        "AIJob",
        "dup-types-case",
        _job(
            accelerators=[
                {"vendor": "nvidia", "model": "H800", "image": "a"},
                {"vendor": "nvidia", "model": "h800", "image": "b"},
            ]
        ),
        "spec.accelerators",
    ),
    (
        "AIJob",
        "blank-image",
        _job(accelerators=[{"vendor": "nvidia", "image": "   "}]),
        "spec.accelerators[0].image",
    ),
    (
        "AIJob",
        "exists-with-value",
        _job(tolerations=[{"key": "k", "operator": "Exists", "value": "v"}]),
        "spec.tolerations[0].value",
    ),
    (
        "ComputePool",
        "p" * 64,
        GOOD_POOL,
        "metadata.name",
    ),
    (
        "ComputePool",
        "bad-toleration-key",
        {**GOOD_POOL, "tolerations": [{"key": "not a key!", "operator": "Exists"}]},
        "spec.tolerations[0].key",
    ),
    (
        "ComputePool",
        "equal-without-key",
        {**GOOD_POOL, "tolerations": [{"operator": "Equal", "value": "x"}]},
        "spec.tolerations[0].operator",
    ),
    ("FederationLink", "bad-jurisdiction", {**GOOD_LINK, "jurisdiction": "moon"}, "spec.jurisdiction"),
    (
        "FederationLink",
        "residency-elsewhere",
        {**GOOD_LINK, "allowedResidency": ["hk"]},
        "spec.allowedResidency",
    ),
    ("FederationLink", "no-secret", {"jurisdiction": "hk"}, "spec.kubeconfigSecretRef"),
    ("FederationLink", "short-lease", {**GOOD_LINK, "leaseSeconds": 1}, "spec.leaseSeconds"),
    (
        "FederationLink",
        "unsigned",
        {k: v for k, v in GOOD_LINK.items() if k != "signingKeySecretRef"},
        "spec.signingKeySecretRef",
    ),
    ("FederationLink", "agentless-no-provider", {**GOOD_LINK, "mode": "Agentless"}, "spec.provider"),
    ("FederationLink", "bad-mode", {**GOOD_LINK, "mode": "Karmada"}, "spec.mode"),
    (
        "AIJob",
        "data-residency-elsewhere",
        _job(datasets=[{**GZ_DATA, "residency": "hk"}]),
        "spec.datasets[0].residency",
    ),
    ("AIJob", "data-no-size", _job(datasets=[{k: v for k, v in GZ_DATA.items() if k != "size"}]), "size"),
]


@pytest.mark.parametrize("kind,name,spec,field", INVALID, ids=[f"{i[0]}-{i[1][:20]}" for i in INVALID])
def test_invalid_object_is_refused_naming_the_field(
    cluster: Cluster,
    namespace: str,
    kind: str,
    name: str,
    spec: dict[str, Any],
    field: str,
) -> None:
    ns = None if kind == "ComputePool" else namespace
    proc = cluster.kubectl("apply", "-f", "-", input=_obj(kind, name, spec, ns), check=False)
    assert proc.returncode != 0, f"{kind} {name} was accepted"
    assert field in proc.stderr, proc.stderr


def test_valid_objects_are_accepted_with_defaults_filled_in(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=_obj("AIJob", "fine", GOOD_JOB, namespace))
    cluster.kubectl("apply", "-f", "-", input=_obj("FederationLink", "gz", GOOD_LINK, namespace))
    agentless = {**GOOD_LINK, "mode": "Agentless", "provider": {"kueueQueue": "team-a"}}
    del agentless["signingKeySecretRef"]
    cluster.kubectl("apply", "-f", "-", input=_obj("FederationLink", "cloud", agentless, namespace))
    with_data = _job(datasets=[GZ_DATA])
    cluster.kubectl("apply", "-f", "-", input=_obj("AIJob", "with-data", with_data, namespace))
    job = yaml.safe_load(cluster.kubectl("get", "aij", "fine", "-n", namespace, "-o", "yaml").stdout)
    assert job["spec"]["framework"] == "pytorch" and job["spec"]["residency"] == "any"
    assert job["spec"]["restartPolicy"] == {"maxRestarts": 3, "backoffSeconds": 10}
    assert job["spec"]["resources"] == {"cpu": "4", "memory": "16Gi"}
    link = yaml.safe_load(cluster.kubectl("get", "flink", "gz", "-n", namespace, "-o", "yaml").stdout)
    assert link["spec"]["remoteNamespace"] == "estuary-burst" and link["spec"]["mode"] == "Estuary"


def test_pool_vendor_is_immutable(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=_obj("ComputePool", "immutable-test", GOOD_POOL, None))
    try:
        proc = cluster.kubectl(
            "apply",
            "-f",
            "-",
            check=False,
            input=_obj("ComputePool", "immutable-test", {**GOOD_POOL, "vendor": "huawei"}, None),
        )
        assert proc.returncode != 0 and "spec.vendor" in proc.stderr and "immutable" in proc.stderr
    finally:
        cluster.kubectl("delete", "cpool", "immutable-test", "--wait=false")


def test_kubectl_explain_shows_field_descriptions(cluster: Cluster) -> None:
    out = cluster.kubectl("explain", "aijob.spec.accelerators").stdout
    assert "Accepted accelerator types in order of preference" in out
    assert "relativeThroughput" in out
    out = cluster.kubectl("explain", "computepool.spec.quotas.borrowingLimit").stdout
    assert "above nominal" in out


def test_short_names_category_and_printer_columns(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=_obj("AIJob", "listed", GOOD_JOB, namespace))
    out = cluster.kubectl("get", "estuary", "-n", namespace).stdout
    assert "aijob.estuary.dev/listed" in out
    cluster.kubectl("apply", "-f", "-", input=_obj("ComputePool", "listed-pool", GOOD_POOL, None))
    header = cluster.kubectl("get", "cpool", "listed-pool").stdout.splitlines()[0].split()
    cluster.kubectl("delete", "cpool", "listed-pool", "--wait=false")
    assert header[:8] == ["NAME", "VENDOR", "MODEL", "NODES", "CAPACITY", "HEALTHY", "ALLOCATED", "FREE"]
    header = cluster.kubectl("get", "flink", "-A").stdout.splitlines()
    assert not header or "JURISDICTION" in header[0] or "No resources" in header[0]
    wide = cluster.kubectl("get", "aij", "-n", namespace, "-o", "wide").stdout.splitlines()[0].split()
    assert {"POSITION", "RESTARTS", "MESSAGE"} <= set(wide)
