"""The framework tier: every launcher proven by the real framework, as local processes.

Tests here are marked `framework` and run the framework packages from a venv that
hack/frameworks.sh builds once (hack/test.sh calls it; its path comes in ESTUARY_FRAMEWORK_VENV).
A missing venv or a machine that cannot run pods (no root) fails the tier with the reason: CI has
both, so nothing here is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.framework import pods

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.framework)


@pytest.fixture(scope="session")
def image_bin() -> Path:
    """bin/ of the framework venv: it plays the job's image (torchrun, msrun, python3 are there)."""
    venv = os.environ.get("ESTUARY_FRAMEWORK_VENV")
    if not venv:
        pytest.fail(
            "ESTUARY_FRAMEWORK_VENV is not set: run the tier through hack/test.sh, or "
            "export ESTUARY_FRAMEWORK_VENV=$(bash hack/frameworks.sh)",
            pytrace=False,
        )
    if not (Path(venv) / ".installed").is_file():
        pytest.fail(f"{venv} is not a complete framework venv: run bash hack/frameworks.sh", pytrace=False)
    why = pods.can_run()
    if why:
        pytest.fail(why, pytrace=False)
    return Path(venv) / "bin"
