"""The Helm chart's sources are kept in step with the rest of the repository: its CRDs are the
generated ones, its configuration reference documents every value, and the image it runs is the
one the Dockerfile builds. No binary needed; rendering with the real `helm` is in
tests/e2e/test_chart_render.py."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

import chart_docs

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "estuary"


# -- sources kept in step --------------------------------------------------------------------


def test_chart_crds_are_byte_identical_to_crds_dir() -> None:
    ours = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*")}
    theirs = {p.name: p.read_bytes() for p in (REPO_ROOT / "crds").glob("*.yaml")}
    assert ours.keys() == theirs.keys(), "run python hack/chart_docs.py"
    for name in theirs:
        assert ours[name] == theirs[name], (
            f"charts/estuary/crds/{name} differs from crds/: run python hack/chart_docs.py"
        )


def test_configuration_reference_and_argocd_cm_are_current() -> None:
    stale = [str(p.relative_to(REPO_ROOT)) for p in chart_docs.stale()]
    assert not stale, f"stale: {stale}; run python hack/chart_docs.py"


def test_configuration_reference_documents_every_value() -> None:
    text = (CHART / "values.yaml").read_text()
    documented = {row.key for row in chart_docs.rows(text)}
    assert {
        "image.repository",
        "jurisdiction",
        "operator.replicas",
        "agent.tolerations",
        "serviceMonitor.enabled",
        "vendorProfiles.files",
    } <= documented


def test_an_undocumented_value_is_refused() -> None:
    text = "# -- Documented.\nfoo: 1\nbar:\n  baz: 2\n"
    with pytest.raises(chart_docs.DocError, match=r"bar\.baz has no"):
        chart_docs.rows(text)


def test_image_user_matches_the_chart_and_dockerfile_builds_the_entrypoint() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    user = re.findall(r"^USER (\d+):(\d+)$", dockerfile, flags=re.M)
    assert user == [("10001", "10001")]
    for component in ("operator", "agent"):
        assert values[component]["podSecurityContext"]["runAsUser"] == 10001
    assert re.search(r'^ENTRYPOINT \["estuary"\]$', dockerfile, flags=re.M)
    assert re.findall(r"^FROM (\S+)", dockerfile, flags=re.M) == ["python:3.11-slim", "python:3.11-slim"]
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["estuary"] == "estuary.cli:main"
    # Everything `pip install .` reads is in the build context.
    ignore = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    allowed = [line for line in ignore if line.startswith("!")]
    assert {"!pyproject.toml", f"!{project['readme']}", "!operator/"} <= set(allowed)
