"""The Kubernetes PodSpec schema, inlined for the AIJob CRD's `spec.template.spec`.

The definitions come from a real kube-apiserver's `/openapi/v3/api/v1` (`schemas/pod_spec.json`,
written by hack/pod_schema.py with its version and date). A CRD schema may hold no `$ref` and must
be structural, so this module inlines every reference and translates the few constructs a CRD
expresses differently, without changing what is valid:
- Quantity and IntOrString (`oneOf` string/number) become `x-kubernetes-int-or-string`;
- free-form objects (FieldsV1) become `x-kubernetes-preserve-unknown-fields`;
- `default`s are dropped (the API server would write them into every AIJob), except those of
  list-map keys that are not required (a CRD needs one of the two), e.g. a port's protocol TCP;
- lists that Estuary's CEL rules iterate get `maxItems` (CEL cost estimation needs bounds), and
  the ownership rules (`ownership.py`) are attached where they apply.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from estuary.api import ownership

_INT_OR_STRING = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
}
_KEEP = {
    "description",
    "type",
    "format",
    "enum",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
}
# Bounds on lists and maps that CEL rules iterate (directly or as an enclosing list). Generous:
# a pod with more than 16 containers or 256 variables in one container is not a training worker.
MAX_ITEMS = {
    "containers": 16,
    "initContainers": 16,
    "ephemeralContainers": 16,
    "env": 256,
    "volumes": 256,
    "volumeMounts": 256,
}


@cache
def source() -> dict[str, Any]:
    """The committed data file: provenance, root definition and the definitions."""
    text = resources.files("estuary.api").joinpath("schemas/pod_spec.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def _inline(node: Any, defs: dict[str, Any], stack: tuple[str, ...]) -> Any:
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref") or (node["allOf"][0].get("$ref") if node.get("allOf") else None)
    if ref:
        name = ref.rsplit("/", 1)[1]
        if name in stack:
            raise ValueError(f"recursive definition {name}: a CRD schema cannot express it")
        siblings = {k: v for k, v in node.items() if k not in ("$ref", "allOf")}
        if name in _INT_OR_STRING:
            description = siblings.get("description") or defs[name].get("description")
            return {"x-kubernetes-int-or-string": True, "description": description}
        target = _inline(defs[name], defs, (*stack, name))
        if "description" in siblings:
            target["description"] = siblings["description"]
        return target
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _KEEP}
    if "properties" in node:
        out["properties"] = {k: _inline(v, defs, stack) for k, v in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _inline(node["additionalProperties"], defs, stack)
    if "items" in node:
        out["items"] = _inline(node["items"], defs, stack)
        _restore_key_defaults(out, node["items"], defs)
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _restore_key_defaults(out: dict[str, Any], raw_items: dict[str, Any], defs: dict[str, Any]) -> None:
    """A list-map key that is not required keeps its upstream default (a CRD needs one or the other)."""
    keys = out.get("x-kubernetes-list-map-keys") or []
    items = out["items"]
    ref = raw_items.get("$ref") or raw_items["allOf"][0]["$ref"] if keys else ""
    raw = defs[ref.rsplit("/", 1)[1]] if ref else {}
    for key in keys:
        if key not in items.get("required", ()):
            default = raw["properties"][key].get("default")
            if default is None:
                raise ValueError(f"list-map key {key} is neither required nor defaulted upstream")
            items["properties"][key]["default"] = default


def _walk(node: dict[str, Any], visit: Any, name: str = "") -> None:
    visit(name, node)
    for key, child in (node.get("properties") or {}).items():
        _walk(child, visit, key)
    if "items" in node:
        _walk(node["items"], visit, f"{name}[]")


def _attach(node: dict[str, Any], rules: list[dict[str, Any]]) -> None:
    node.setdefault("x-kubernetes-validations", []).extend(copy.deepcopy(rules))


def _bound_and_rule(name: str, node: dict[str, Any]) -> None:
    if name in MAX_ITEMS and node.get("type") == "array":
        node["maxItems"] = MAX_ITEMS[name]
    if name == "env[]":
        _attach(node, ownership.env_var_rules())
    elif name == "resources" and "limits" in (node.get("properties") or {}):
        _attach(node, ownership.resource_rules())
    elif name == "volumes[]":
        _attach(node, ownership.volume_rules())


@cache
def _pod_spec() -> dict[str, Any]:
    data = source()
    defs = data["definitions"]
    schema: dict[str, Any] = _inline(defs[data["root"]], defs, (data["root"],))
    _walk(schema, _bound_and_rule)
    props = schema["properties"]
    _attach(props["containers"]["items"], ownership.container_rules())
    _attach(props["initContainers"]["items"], ownership.init_container_rules())
    _attach(schema, ownership.pod_rules())
    # The worker container comes from Estuary; the template lists only what it adds or changes.
    schema["required"] = [r for r in schema.get("required", []) if r != "containers"]
    if not schema["required"]:
        del schema["required"]
    return schema


def pod_spec_schema(description: str) -> dict[str, Any]:
    """A fresh copy of the inlined PodSpec schema, with the given description at its top."""
    schema = copy.deepcopy(_pod_spec())
    schema["description"] = description
    return schema


def provenance() -> str:
    src = source()["source"]
    return f"{src['server']} {src['path']} (fetched {src['fetched']} by {src['tool']})"
