"""Fixtures for the simulator tests: the shared data folder, and builders for tiny clusters."""

from __future__ import annotations

from pathlib import Path

import pytest

from estuary.sim.cli import default_data_dir
from estuary.sim.throughputs import ThroughputTable, load_default


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = default_data_dir()
    if not (d / "gavel" / "simulation_throughputs.json").is_file():
        pytest.skip(f"shared data not found at {d} (set ESTUARY_DATA)")
    return d


@pytest.fixture(scope="session")
def table(data_dir: Path) -> ThroughputTable:
    return load_default(data_dir)
