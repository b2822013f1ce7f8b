"""`estuary sim` end to end on tiny inputs, cluster files, and the bench scripts' smoke modes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from estuary.sim.cli import main
from estuary.sim.cluster import ClusterError, load_cluster, parse_cluster

REPO = Path(__file__).resolve().parents[3]


def test_gavel_smoke_writes_json_csv_and_plots(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sim"
    rc = main(
        [
            "gavel",
            "--rate",
            "3.2",
            "--jobs",
            "40",
            "--measure",
            "20:40",
            "--finite",
            "--data",
            str(data_dir),
            "--out",
            str(out),
            "--quiet",
            "--policies",
            "estuary,fifo-agnostic",
        ]
    )
    assert rc == 0
    payload = json.loads((out / "results.json").read_text())
    assert [s["policy"] for s in payload["summaries"]] == ["estuary", "fifo-agnostic"]
    assert payload["summaries"][0]["measured"] == 20
    assert payload["lower_bound"]["avg_jct_h"] <= payload["summaries"][0]["avg_jct_h"] + 1e-9
    assert payload["avg_jct_ratio_to_estuary"]["estuary"] == 1.0
    for name in ("jct_cdf.png", "utilization.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "jobs.csv").read_text().count("\n") == 1 + 2 * 40
    printed = capsys.readouterr().out
    assert "avg JCT h" in printed and "lower-bound" in printed


def test_trace_smoke_reports_what_it_dropped(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = data_dir / "gavel" / "traces" / "msr" / "seed=0" / "23dbec.trace"
    rc = main(
        [
            "trace",
            "--trace",
            str(trace),
            "--data",
            str(data_dir),
            "--out",
            str(tmp_path),
            "--quiet",
            "--no-plots",
            "--policies",
            "estuary",
        ]
    )
    assert rc == 0
    assert "23dbec.trace: read 9" in capsys.readouterr().out
    assert not (tmp_path / "jct_cdf.png").exists()


def test_bad_arguments_return_an_error_code(tmp_path: Path) -> None:
    assert main(["gavel", "--policies", "nope"]) == 2
    bad = tmp_path / "c.yaml"
    bad.write_text("pools: [{name: a, type: v100, nodes: 0, acceleratorsPerNode: 4}]\n")
    assert main(["philly", "--cluster", str(bad), "--out", str(tmp_path), "--quiet"]) == 1


def test_cluster_files_parse_with_quotas_and_name_the_bad_field(tmp_path: Path) -> None:
    c = load_cluster(REPO / "bench" / "clusters" / "philly-1000.yaml")
    assert c.node_count == 1000 and c.accelerators == 4800
    ascend = c.pool("ascend")
    assert (ascend.vendor, ascend.model, ascend.resource) == ("huawei", "Ascend910", "huawei.com/Ascend910")
    assert ascend.quotas["6214e9"].nominal == 800 and ascend.quotas["*"].nominal == 0
    with pytest.raises(ClusterError, match=r"pools\[0\]\.acceleratorsPerNode: is required"):
        parse_cluster({"pools": [{"name": "a", "type": "v100", "nodes": 2}]})
    with pytest.raises(ClusterError, match=r"pools\[1\]\.name: duplicate"):
        parse_cluster({"pools": [{"name": "a", "type": "v100", "nodes": 1, "acceleratorsPerNode": 1}] * 2})


@pytest.mark.parametrize("script", ["core_cycle.py", "gavel_compare.py", "burst_data.py"])
def test_bench_smoke_modes_run(script: str, tmp_path: Path, data_dir: Path) -> None:
    args = [sys.executable, str(REPO / "bench" / script), "--smoke", "--data", str(data_dir)]
    if script in ("gavel_compare.py", "burst_data.py"):
        args += ["--out", str(tmp_path / "out.json")]
    if script == "gavel_compare.py":
        args += ["--quiet"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    expected = {"core_cycle.py": "CPU ms", "gavel_compare.py": "lower bound", "burst_data.py": "vs home"}
    assert expected[script] in done.stdout


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "estuary.sim", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "gavel" in done.stdout
