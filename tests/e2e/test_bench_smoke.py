"""The operator benchmarks' smoke modes: each starts its own local control plane and the operator,
so a change that breaks a benchmark (the rounds, a phase's cleanup) fails here, not on the day a
figure is wanted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_operator_steady_smoke_runs_two_burst_rounds_and_the_steady_phase(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "operator_steady.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "round r0:" in done.stdout and "round r1:" in done.stdout
    assert "median of 2 rounds" in done.stdout
    assert "with Estuary's objects" in done.stdout  # the floor made of the operator's own Service and pods
    assert "API writes per job" in done.stdout
