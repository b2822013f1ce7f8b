"""The loaders read the real public files: counts, known values, what is dropped and why."""

from __future__ import annotations

import csv
import itertools
import statistics
from pathlib import Path

import pytest

from estuary.sim.throughputs import (
    ASCEND_WORKER_TYPE,
    ThroughputTable,
    load_ascend_ratios,
    parse_gavel_key,
)
from estuary.sim.traces import GAVEL_JOB_TABLE, gavel_generated, load_msr, load_philly, msr_paths


def test_gavel_table_has_26_job_types_on_three_measured_types_and_derived_ascend(
    table: ThroughputTable,
) -> None:
    assert table.worker_types() == ("ascend910", "k80", "p100", "v100")
    assert len(table.job_types()) == 26
    assert {name for name, _ in GAVEL_JOB_TABLE} == set(table.job_types())
    assert sum(1 for w, _, _ in table.rates if w == "v100") == 83


def test_known_gavel_rates_and_a_zero_that_means_cannot_run(table: ThroughputTable) -> None:
    assert table.rate("v100", "ResNet-18 (batch size 16)", 1) == pytest.approx(32.353384328946916)
    assert table.rate("k80", "ResNet-50 (batch size 128)", 2) == 0.0  # ResNet-50 on 2-8 K80s
    assert table.rate("v100", "A3C", 4) == 0.0  # not measured at all
    assert table.scales("A3C") == (1,)
    assert table.scales("LM (batch size 10)") == (1, 2, 4, 8)


def test_every_row_of_the_flat_csv_matches_the_json(table: ThroughputTable, data_dir: Path) -> None:
    with open(data_dir / "gavel" / "isolated_throughputs_flat.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["worker_type"] in ("k80", "p100", "v100")]
    assert len(rows) == 3 * 83
    for row in rows:
        rate = table.rate(row["worker_type"], row["job_type"], int(row["scale_factor"]))
        assert rate == pytest.approx(float(row["isolated_throughput_steps_per_s"]))


def test_gavel_keys_parse() -> None:
    assert parse_gavel_key("('Transformer (batch size 64)', 8)") == ("Transformer (batch size 64)", 8)
    with pytest.raises(ValueError):
        parse_gavel_key("ResNet")


def test_ascend_ratios_are_the_modelzoo_medians(data_dir: Path) -> None:
    r = load_ascend_ratios(data_dir / "ascend_modelzoo" / "npu_vs_gpu_pairs.csv")
    assert r.over_v100 == {1: pytest.approx(1.0347), 8: pytest.approx(1.0536)}
    assert r.over_a100[8] == pytest.approx(0.87165)
    assert r.pairs_v100 == {1: 76, 8: 77}
    assert r.at(1) == r.over_v100[1] and r.at(16) == r.over_v100[8]
    assert r.over_v100[1] < r.at(2) < r.at(4) < r.over_v100[8]


def test_ascend_rate_is_v100_rate_times_ratio(table: ThroughputTable, data_dir: Path) -> None:
    r = load_ascend_ratios(data_dir / "ascend_modelzoo" / "npu_vs_gpu_pairs.csv")
    job = "Transformer (batch size 32)"
    for scale in (1, 2, 4, 8):
        expected = table.rate("v100", job, scale) * r.at(scale)
        assert table.rate(ASCEND_WORKER_TYPE, job, scale) == pytest.approx(expected)
    assert table.rate(ASCEND_WORKER_TYPE, "A3C", 2) == 0.0


def test_msr_traces_drop_oversize_and_unmeasured_jobs(table: ThroughputTable, data_dir: Path) -> None:
    paths = msr_paths(data_dir / "gavel" / "traces" / "msr" / "seed=0")
    assert len(paths) == 15
    jobs, stats = load_msr(paths, table, "drop")
    assert stats.read == 15_264
    assert stats.dropped_oversize == 359  # 12 to 64 accelerators
    assert stats.dropped_no_rate == 1189  # e.g. A3C on 4, and 2 jobs of 7 accelerators
    assert stats.kept == len(jobs) == 15_264 - 359 - 1189
    assert [j.arrival for j in jobs] == sorted(j.arrival for j in jobs)
    assert len({j.tenant for j in jobs}) == 15


def test_msr_cap_keeps_oversize_jobs_of_distributed_types(table: ThroughputTable, data_dir: Path) -> None:
    paths = msr_paths(data_dir / "gavel" / "traces" / "msr" / "seed=0")
    jobs, stats = load_msr(paths, table, "cap")
    assert stats.capped_oversize == 359
    assert max(j.accelerators for j in jobs) == 8
    assert stats.kept + stats.dropped_no_rate == stats.read


def test_philly_is_sorted_by_submission_with_tenants_from_virtual_clusters(
    table: ThroughputTable, data_dir: Path
) -> None:
    jobs, stats = load_philly(data_dir / "philly" / "philly.csv", table, limit=2000)
    assert stats.read == 82_247
    assert stats.kept == len(jobs) == 2000
    assert jobs[0].arrival == 0.0
    assert [j.arrival for j in jobs] == sorted(j.arrival for j in jobs)
    assert {j.tenant for j in jobs} <= {
        "6214e9",
        "11cb48",
        "6c71a0",
        "b436b2",
        "103959",
        "ee9e8c",
        "0e4a51",
        "ed69ec",
        "7f04ca",
        "2869ce",
        "e13805",
        "23dbec",
        "51b7ef",
        "925e2b",
        "795a4c",
    }
    for j in jobs[:200]:  # the duration is the runtime on the reference type
        assert j.steps / table.rate("p100", j.job_type, j.scale) > 0


def test_gavel_stream_is_reproducible_poisson_single_accelerator(table: ThroughputTable) -> None:
    a = list(itertools.islice(gavel_generated(table, 3.2, seed=0), 3000))
    b = list(itertools.islice(gavel_generated(table, 3.2, seed=0), 3000))
    assert a == b
    assert a[0].arrival == 0.0 and all(j.accelerators == 1 for j in a)
    gaps = [y.arrival - x.arrival for x, y in itertools.pairwise(a)]
    assert statistics.fmean(gaps) == pytest.approx(3600 / 3.2, rel=0.08)
    v100_hours = [j.steps / table.rate("v100", j.job_type, 1) / 3600 for j in a]
    assert min(v100_hours) >= 10**1.5 / 60 - 1e-9 and max(v100_hours) <= 10**4 / 60 + 1e-9
