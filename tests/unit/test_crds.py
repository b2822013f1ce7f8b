"""The committed CRDs are exactly what the models generate, and carry what kubectl users rely on."""

from pathlib import Path
from typing import Any

import yaml

from estuary.api import crdgen

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


def test_committed_crds_match_the_models() -> None:
    for name, text in crdgen.render_all().items():
        committed = (CRD_DIR / name).read_text()
        assert committed == text, f"{name} is stale: run `estuary crds`"


def _crd(plural: str) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load((CRD_DIR / f"{plural}.estuary.dev.yaml").read_text())
    return crd


def test_every_schema_node_is_structural_and_described() -> None:
    def walk(node: dict[str, Any], path: str) -> None:
        assert "$ref" not in node and "anyOf" not in node and "title" not in node, path
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path
        for key, child in (node.get("properties") or {}).items():
            if path.count(".") >= 1 and key not in ("apiVersion", "kind", "metadata"):
                assert child.get("description"), f"{path}.{key} has no description"
            walk(child, f"{path}.{key}")
        if "items" in node:
            walk(node["items"], f"{path}[]")

    for plural in ("aijobs", "computepools", "federationlinks"):
        schema = _crd(plural)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        walk(schema, plural)


def test_crds_have_short_names_category_status_and_columns() -> None:
    expected = {"aijobs": "aij", "computepools": "cpool", "federationlinks": "flink"}
    for plural, short in expected.items():
        crd = _crd(plural)
        assert crd["spec"]["names"]["shortNames"] == [short]
        assert crd["spec"]["names"]["categories"] == ["estuary"]
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert any(c["name"] == "Age" for c in version["additionalPrinterColumns"])


def test_aijob_schema_has_defaults_and_cel_rules() -> None:
    spec = _crd("aijobs")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["framework"]["default"] == "pytorch"
    assert spec["properties"]["residency"]["enum"] == ["any", "hk", "mainland", "overseas"]
    assert spec["properties"]["accelerators"]["minItems"] == 1
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert any("elastic.minWorkers <= self.elastic.maxWorkers" in r for r in rules)
    assert spec["properties"]["restartPolicy"]["default"] == {}


def test_template_spec_is_the_real_pod_schema_inlined_with_bounds_and_ownership_rules() -> None:
    from estuary.api import podspec

    source = podspec.source()["source"]
    assert source["server"].startswith("kube-apiserver v") and source["path"] == "/openapi/v3/api/v1"
    spec = _crd("aijobs")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    pod = spec["properties"]["template"]["properties"]["spec"]
    containers = pod["properties"]["containers"]
    assert containers["x-kubernetes-list-type"] == "map" and containers["x-kubernetes-list-map-keys"] == [
        "name"
    ]
    assert containers["maxItems"] == 16 and "containers" not in pod.get("required", [])
    port = containers["items"]["properties"]["ports"]["items"]["properties"]["protocol"]
    assert port["default"] == "TCP"  # a list-map key that is not required keeps its default
    limits = containers["items"]["properties"]["resources"]["properties"]["limits"]
    assert limits["additionalProperties"]["x-kubernetes-int-or-string"] is True
    assert pod["properties"]["restartPolicy"]["enum"] == ["Always", "Never", "OnFailure"]
    env_rules = containers["items"]["properties"]["env"]["items"]["x-kubernetes-validations"]
    assert "MASTER_ADDR" in env_rules[0]["rule"] and env_rules[0]["fieldPath"] == ".name"
    assert {r["fieldPath"] for r in pod["x-kubernetes-validations"]} >= {
        ".nodeName",
        ".affinity",
        ".restartPolicy",
    }
    text = (CRD_DIR / "aijobs.estuary.dev.yaml").read_text()
    assert "$ref" not in text and "allOf" not in text and "x-kubernetes-patch" not in text
