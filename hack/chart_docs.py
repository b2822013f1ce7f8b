#!/usr/bin/env python3
"""Keep the files derived from the chart in step with their sources.

    python hack/chart_docs.py           # rewrite what is stale
    python hack/chart_docs.py --check   # exit 1 and name what is stale (tests run this)

What it derives:
  docs/configuration.md          the configuration reference, from the "# --" comments of
                                 charts/estuary/values.yaml (a comment block starting with "# --"
                                 right above a key documents that key, and its whole subtree unless
                                 keys below it have comments of their own; every value must be
                                 documented, itself or through a parent)
  deploy/argocd/argocd-cm.yaml   the argocd-cm ConfigMap patch, from deploy/argocd/health/*.lua and
                                 deploy/argocd/actions/<group>_<Kind>/*.lua (discovery.lua plus one
                                 script per action)
  charts/estuary/crds/*.yaml     byte-identical copies of crds/*.yaml (the CRDs are generated from
                                 the API models into crds/ by `estuary crds`)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART_DIR = REPO_ROOT / "charts" / "estuary"
VALUES = CHART_DIR / "values.yaml"
CONFIGURATION_MD = REPO_ROOT / "docs" / "configuration.md"
CRD_DIR = REPO_ROOT / "crds"
CHART_CRD_DIR = CHART_DIR / "crds"
HEALTH_DIR = REPO_ROOT / "deploy" / "argocd" / "health"
ACTIONS_DIR = REPO_ROOT / "deploy" / "argocd" / "actions"
ARGOCD_CM = REPO_ROOT / "deploy" / "argocd" / "argocd-cm.yaml"

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_][A-Za-z0-9_.\-/]*)\s*:(\s|$)")
_MISSING = object()


class DocError(ValueError):
    """values.yaml and its comments disagree: an undocumented value, or a comment on no value."""


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    description: str


def documented_keys(text: str) -> dict[tuple[str, ...], str]:
    """Dotted key paths of values.yaml mapped to the "# --" comment right above them."""
    docs: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if pending is not None:
                pending.append(stripped[1:].strip())
            continue
        match = _KEY.match(line)
        if not stripped or match is None:
            pending = None
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        if pending is not None:
            docs[tuple(key for _, key in stack)] = " ".join(part for part in pending if part)
            pending = None
    return docs


def _lookup(values: Any, path: tuple[str, ...]) -> Any:
    node = values
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(node, dict) and node:
        for key, child in node.items():
            yield from _leaves(child, (*path, str(key)))
    else:
        yield path


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rows(text: str) -> list[Row]:
    """One row per documented key, in file order; raises DocError for any gap."""
    values = yaml.safe_load(text) or {}
    docs = documented_keys(text)
    errors = [
        f"a '# --' comment above {'.'.join(path)}, which is no value"
        for path in docs
        if _lookup(values, path) is _MISSING
    ]
    errors += [
        f"{'.'.join(path)} has no '# --' comment (on itself or a parent)"
        for path in _leaves(values)
        if not any(path[:i] in docs for i in range(1, len(path) + 1))
    ]
    if errors:
        raise DocError(f"{VALUES.relative_to(REPO_ROOT)}: " + "; ".join(errors))
    out = []
    for path, description in docs.items():
        value = _lookup(values, path)
        default = json.dumps(value, separators=(", ", ": "), ensure_ascii=False)
        out.append(Row(".".join(path), _type(value), f"`{_cell(default)}`", _cell(description)))
    return out


def render_configuration(text: str) -> str:
    """docs/configuration.md from the text of values.yaml."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by hack/chart_docs.py from charts/estuary/values.yaml: edit the comments there "
        "and run `python hack/chart_docs.py`. -->",
        "",
        "Every value of the `charts/estuary` chart, with its default. Set them with `--set key=value`",
        "or `-f my-values.yaml`; `values.schema.json` refuses unknown keys and wrong types, naming the",
        "key. Installing, upgrading and Argo CD: [install.md](install.md).",
    ]
    groups: dict[str, list[Row]] = {}
    for row in rows(text):
        top = row.key.split(".")[0] if "." in row.key else ""
        groups.setdefault(top, []).append(row)
    for top, group in groups.items():
        lines += [
            "",
            f"## `{top}`" if top else "## General",
            "",
            "| Key | Type | Default | Description |",
            "|---|---|---|---|",
        ]
        lines += [f"| `{r.key}` | {r.type} | {r.default} | {r.description} |" for r in group]
    return "\n".join(lines) + "\n"


def _indented(text: str, indent: str) -> list[str]:
    return [f"{indent}{line}" if line else "" for line in text.rstrip("\n").splitlines()]


def render_argocd_cm(health_dir: Path = HEALTH_DIR, actions_dir: Path = ACTIONS_DIR) -> str:
    """The argocd-cm patch that registers every health script of health_dir (<group>_<Kind>.lua)
    and every action set of actions_dir (<group>_<Kind>/discovery.lua and <action>.lua)."""
    lines = [
        "# Generated by hack/chart_docs.py from deploy/argocd/health/*.lua and",
        "# deploy/argocd/actions/*/*.lua; do not edit here.",
        "# Argo CD health checks and actions for Estuary's custom resources. Merge into argocd-cm:",
        "#   kubectl -n argocd patch configmap argocd-cm --type merge \\",
        "#     --patch-file deploy/argocd/argocd-cm.yaml",
        "# (with the argo-cd Helm chart, put the same keys under configs.cm). See docs/install.md.",
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata:",
        "  name: argocd-cm",
        "  namespace: argocd",
        "  labels:",
        "    app.kubernetes.io/name: argocd-cm",
        "    app.kubernetes.io/part-of: argocd",
        "data:",
    ]
    for script in sorted(health_dir.glob("*.lua")):
        lines.append(f"  resource.customizations.health.{script.stem}: |")
        lines += _indented(script.read_text(), "    ")
    for kind in sorted(d for d in actions_dir.glob("*") if d.is_dir()):
        lines.append(f"  resource.customizations.actions.{kind.name}: |")
        lines.append("    discovery.lua: |")
        lines += _indented((kind / "discovery.lua").read_text(), "      ")
        lines.append("    definitions:")
        for action in sorted(a for a in kind.glob("*.lua") if a.name != "discovery.lua"):
            lines.append(f"    - name: {action.stem}")
            lines.append("      action.lua: |")
            lines += _indented(action.read_text(), "        ")
    return "\n".join(lines) + "\n"


def expected() -> dict[Path, str]:
    """Every derived text file and the content it should have."""
    out = {
        CONFIGURATION_MD: render_configuration(VALUES.read_text()),
        ARGOCD_CM: render_argocd_cm(),
    }
    for crd in sorted(CRD_DIR.glob("*.yaml")):
        out[CHART_CRD_DIR / crd.name] = crd.read_text()
    return out


def _extra_chart_crds() -> list[Path]:
    """Files in the chart's crds/ that crds/ no longer has."""
    return [p for p in sorted(CHART_CRD_DIR.glob("*")) if not (CRD_DIR / p.name).is_file()]


def stale() -> list[Path]:
    """Derived files whose content differs from what their sources give (or that should go)."""
    out = [
        path for path, text in expected().items() if not path.is_file() or path.read_bytes() != text.encode()
    ]
    return out + _extra_chart_crds()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is stale")
    args = parser.parse_args(argv)
    try:
        todo = stale()
    except DocError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.check:
        for path in todo:
            print(f"stale: {path.relative_to(REPO_ROOT)} (run python hack/chart_docs.py)", file=sys.stderr)
        return 1 if todo else 0
    texts = expected()
    for path in todo:
        if path in texts:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(texts[path].encode())
            print(f"wrote {path.relative_to(REPO_ROOT)}")
        else:
            path.unlink()
            print(f"removed {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
