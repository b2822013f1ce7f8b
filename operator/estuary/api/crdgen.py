"""Generate the CRDs in `crds/` from the pydantic models, so the schema has one source of truth.

pydantic emits JSON Schema (draft 2020-12); Kubernetes wants a structural OpenAPI v3 schema:
every node typed, no `$ref`, no `anyOf` except int-or-string, no null defaults, and boolean
`exclusiveMinimum`. `structural()` does that translation; the table below adds what only a CRD
has (names, printer columns, subresources).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from estuary.api import podspec
from estuary.api.aijob import AIJob
from estuary.api.base import GROUP, VERSION
from estuary.api.computepool import ComputePool
from estuary.api.federationlink import FederationLink
from estuary.api.usageledger import UsageLedger

_KEEP = {
    "type",
    "description",
    "default",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "pattern",
    "format",
    "required",
}


@dataclass(frozen=True)
class KindInfo:
    model: type[BaseModel]
    plural: str
    singular: str
    short_names: tuple[str, ...]
    namespaced: bool
    columns: tuple[tuple[str, str, str, int], ...]  # name, type, jsonPath, priority


KINDS = (
    KindInfo(
        AIJob,
        "aijobs",
        "aijob",
        ("aij",),
        True,
        (
            ("Phase", "string", ".status.phase", 0),
            ("Accelerator", "string", ".status.accelerator", 0),
            ("Workers", "integer", ".spec.workers", 0),
            ("Pool", "string", ".status.placement.pool", 0),
            ("Cluster", "string", ".status.placement.cluster", 0),
            ("Reason", "string", ".status.reason", 0),
            ("Position", "integer", ".status.queuePosition", 1),
            ("Restarts", "integer", ".status.restarts", 1),
            ("Attained", "number", ".status.attainedService", 1),
            ("Message", "string", ".status.message", 1),
            ("Age", "date", ".metadata.creationTimestamp", 0),
        ),
    ),
    KindInfo(
        ComputePool,
        "computepools",
        "computepool",
        ("cpool",),
        False,
        (
            ("Vendor", "string", ".spec.vendor", 0),
            ("Model", "string", ".spec.model", 0),
            ("Nodes", "integer", ".status.nodes", 0),
            ("Capacity", "integer", ".status.capacity", 0),
            ("Healthy", "integer", ".status.healthy", 0),
            ("Allocated", "integer", ".status.allocated", 0),
            ("Free", "integer", ".status.free", 0),
            ("PFLOPS", "number", ".status.capacityPflops", 0),
            ("Free-PFLOPS", "number", ".status.freePflops", 0),
            ("Resource", "string", ".status.resourceName", 1),
            ("Age", "date", ".metadata.creationTimestamp", 0),
        ),
    ),
    KindInfo(
        FederationLink,
        "federationlinks",
        "federationlink",
        ("flink",),
        True,
        (
            ("Mode", "string", ".spec.mode", 0),
            ("Jurisdiction", "string", ".spec.jurisdiction", 0),
            ("Reachable", "boolean", ".status.reachable", 0),
            ("Heartbeat", "date", ".status.lastHeartbeat", 0),
            ("Namespace", "string", ".spec.remoteNamespace", 1),
            ("RTT-ms", "number", ".status.network.rttMilliseconds", 1),
            ("Mbps", "number", ".status.network.bandwidthMbps", 1),
            ("Age", "date", ".metadata.creationTimestamp", 0),
        ),
    ),
    KindInfo(
        UsageLedger,
        "usageledgers",
        "usageledger",
        ("uledger",),
        False,
        (
            ("Tenant", "string", ".spec.tenant", 0),
            ("Period", "string", ".spec.period", 0),
            ("Accelerator-Hours", "number", ".status.acceleratorHours", 0),
            ("PFLOPS-Hours", "number", ".status.pflopsHours", 0),
            ("Updated", "date", ".status.updated", 1),
            ("Age", "date", ".metadata.creationTimestamp", 0),
        ),
    ),
)


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Translate one pydantic JSON-Schema node into a Kubernetes structural schema node."""
    if node.get("x-estuary-pod-spec"):
        return podspec.pod_spec_schema(node.get("description", ""))
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return structural(merged, defs)
    if node.get("x-kubernetes-int-or-string"):
        out: dict[str, Any] = {"x-kubernetes-int-or-string": True}
        for key in ("description", "default", "maxLength", "x-kubernetes-validations"):
            if node.get(key) is not None:
                out[key] = node[key]
        return out
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {node}")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return structural({**options[0], **rest}, defs)
    out = {k: v for k, v in node.items() if k in _KEEP}
    if "const" in node:
        out["enum"] = [node["const"]]
    if node.get("default") is None:
        out.pop("default", None)
    if "exclusiveMinimum" in node:
        out["minimum"], out["exclusiveMinimum"] = node["exclusiveMinimum"], True
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            out[key] = value
    if "properties" in node:
        out["type"] = "object"
        out["properties"] = {k: structural(v, defs) for k, v in node["properties"].items()}
        required = set(node.get("required", ()))
        for key, child in out["properties"].items():
            # An optional sub-object whose fields all have defaults is defaulted to {}, so the API
            # server fills in those defaults and `kubectl get -o yaml` shows what is in effect.
            if (
                key not in required
                and key != "status"
                and "properties" in child
                and not child.get("required")
                and "default" not in child
                and node["properties"][key].get("default", ...) is not None
            ):
                child["default"] = {}
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = structural(node["additionalProperties"], defs)
    if "items" in node:
        out["items"] = structural(node["items"], defs)
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema = structural(raw, raw.get("$defs", {}))
    props = schema["properties"]
    props["apiVersion"] = {"type": "string", "description": props["apiVersion"]["description"]}
    props["kind"] = {"type": "string", "description": props["kind"]["description"]}
    props["metadata"] = {"type": "object"}
    schema.pop("description", None)
    schema["description"] = (model.__doc__ or "").strip().splitlines()[0]
    return schema


def crd(kind: KindInfo) -> dict[str, Any]:
    name = kind.model.model_fields["kind"].default
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        # Argo CD applies CRDs before the custom resources that need them.
        "metadata": {"name": f"{kind.plural}.{GROUP}", "annotations": {"argocd.argoproj.io/sync-wave": "-1"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced" if kind.namespaced else "Cluster",
            "names": {
                "kind": name,
                "listKind": f"{name}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": ["estuary"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": n, "type": t, "jsonPath": p, **({"priority": pr} if pr else {})}
                        for n, t, p, pr in kind.columns
                    ],
                    "schema": {"openAPIV3Schema": openapi_schema(kind.model)},
                }
            ],
        },
    }


def render_all() -> dict[str, str]:
    """File name → YAML text of every CRD."""
    header = "# Generated by `estuary crds` from operator/estuary/api; do not edit by hand.\n"
    return {
        f"{k.plural}.{GROUP}.yaml": header + yaml.safe_dump(crd(k), sort_keys=False, width=100) for k in KINDS
    }


def write(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written


def stale(out: Path) -> list[str]:
    """The CRD files in `out` that differ from what the API models generate."""
    return [n for n, t in render_all().items() if not (out / n).is_file() or (out / n).read_text() != t]
