"""hack/pod_schema.py keeps exactly the PodSpec closure and drops only what a CRD may not carry."""

from __future__ import annotations

import pod_schema


def _ref(name: str) -> dict[str, object]:
    return {"allOf": [{"$ref": f"#/components/schemas/{name}"}], "default": {}}


def test_closure_keeps_what_pod_spec_reaches_and_strips_patch_hints() -> None:
    schemas = {
        "io.k8s.api.core.v1.PodSpec": {
            "properties": {
                "containers": {
                    "type": "array",
                    "items": _ref("Container"),
                    "x-kubernetes-list-map-keys": ["name"],
                    "x-kubernetes-patch-merge-key": "name",
                    "x-kubernetes-patch-strategy": "merge",
                }
            }
        },
        "Container": {"properties": {"ports": {"type": "array", "items": _ref("Port")}}},
        "Port": {"properties": {"protocol": {"type": "string", "default": "TCP"}}},
        "Unrelated": {"properties": {}},
    }
    kept = pod_schema.closure(schemas, "io.k8s.api.core.v1.PodSpec")
    assert sorted(kept) == ["Container", "Port", "io.k8s.api.core.v1.PodSpec"]
    containers = kept["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    assert not [k for k in containers if k.startswith("x-kubernetes-patch")]
    assert kept["Port"]["properties"]["protocol"]["default"] == "TCP"
