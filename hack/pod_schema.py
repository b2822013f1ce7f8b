#!/usr/bin/env python3
"""Fetch the Kubernetes PodSpec schema from a real kube-apiserver and commit it as data.

An AIJob's `spec.template.spec` is validated with the very schema the API server uses for pods.
CRD schemas allow no `$ref`, so `estuary crds` (operator/estuary/api/podspec.py) inlines the
definitions written here; this script only fetches and extracts them, it never edits a field.

    python hack/pod_schema.py                          # start a local control plane, fetch, stop it
    python hack/pod_schema.py --kubeconfig out/kubeconfig-hk   # fetch from a running API server

It reads `/openapi/v3/api/v1` (the core group's OpenAPI v3 document) and `/version`, keeps the
transitive closure of `io.k8s.api.core.v1.PodSpec` under `components.schemas`, drops only the
strategic-merge-patch hints (`x-kubernetes-patch-*`, `x-kubernetes-unions`, which a CRD schema
may not carry), and writes operator/estuary/api/schemas/pod_spec.json with its provenance.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from devcluster import binaries, clusters, topology

ROOT_DEFINITION = "io.k8s.api.core.v1.PodSpec"
OUT = clusters.REPO_ROOT / "operator" / "estuary" / "api" / "schemas" / "pod_spec.json"
_DROPPED = {"x-kubernetes-patch-merge-key", "x-kubernetes-patch-strategy", "x-kubernetes-unions"}


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if "$ref" in node else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in _DROPPED}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def closure(schemas: dict[str, Any], root: str) -> dict[str, Any]:
    """`root` and every definition it reaches, sorted by name."""
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_refs(schemas[name]) - seen)
    return {name: _strip(schemas[name]) for name in sorted(seen)}


def fetch(kubectl: Path, kubeconfig: Path) -> tuple[dict[str, Any], str]:
    def raw(path: str) -> Any:
        out = subprocess.run(
            [str(kubectl), "--kubeconfig", str(kubeconfig), "get", "--raw", path],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        return json.loads(out)

    return raw("/openapi/v3/api/v1"), raw("/version")["gitVersion"]


def _from_local_control_plane(tools: binaries.Toolset) -> tuple[dict[str, Any], str]:
    with tempfile.TemporaryDirectory(prefix="estuary-openapi-") as tmp:
        clusters.become_subreaper()
        manager = clusters.Manager(tools, Path(tmp))
        node = topology.NodePool("cpu", 1, "", "", "", 0, "4", "8Gi")
        spec = topology.ClusterSpec(name="openapi", jurisdiction="hk", node_pools=(node,))
        try:
            handle = manager.start(spec, Path(tmp) / "kubeconfig")
            return fetch(tools["kubectl"], handle.kubeconfig)
        finally:
            manager.stop("openapi")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, help="fetch from this cluster instead of a fresh one")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    tools = binaries.ensure()
    if args.kubeconfig:
        document, version = fetch(tools["kubectl"], args.kubeconfig)
    else:
        document, version = _from_local_control_plane(tools)
    definitions = closure(document["components"]["schemas"], ROOT_DEFINITION)
    data = {
        "source": {
            "server": f"kube-apiserver {version}",
            "path": "/openapi/v3/api/v1",
            "fetched": datetime.date.today().isoformat(),
            "tool": "hack/pod_schema.py",
        },
        "root": ROOT_DEFINITION,
        "definitions": definitions,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out}: {len(definitions)} definitions from kube-apiserver {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
