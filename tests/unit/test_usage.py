"""Usage for chargeback: run records, the ledger, PFLOPS figures, and the sums over a period."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tests.fakeapi import FakeApiServer

from estuary import ledger, runrecords, usage
from estuary.api.aijob import AIJobStatus
from estuary.kube.status import patch
from estuary.pflops import pool_status_fields
from estuary.vendors import loader

T0 = datetime(2026, 11, 30, 10, tzinfo=UTC).timestamp()
HOUR = 3600.0


def stamp(offset_s: float) -> str:
    return usage.format_time(T0 + offset_s)


def run(
    attempt: int, start_s: float, end_s: float | None, accelerators: int = 16, model: str = "H800"
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "attempt": attempt,
        "cluster": "local",
        "pool": model.lower(),
        "vendor": "nvidia" if model.startswith("H") else "huawei",
        "model": model,
        "accelerators": accelerators,
        "startTime": stamp(start_s),
    }
    if end_s is not None:
        record.update(endTime=stamp(end_s), outcome="Succeeded")
    return record


def aijob(name: str, runs: list[dict[str, Any]], namespace: str = "physics") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"{name}-0123456789"},
        "status": {"runs": runs},
    }


# ---- run records -----------------------------------------------------------------------------


def amend(status: dict[str, Any], changes: dict[str, Any], now: float) -> dict[str, Any]:
    """The merge patch StatusWriter sends when `changes` are written over `status`."""
    current, update = AIJobStatus.model_validate(status), AIJobStatus.model_validate(changes)
    return patch(runrecords.amend(current, 8, update, now))


H800 = {"cluster": "local", "pool": "h800", "vendor": "nvidia", "model": "H800", "resource": "nvidia.com/gpu"}


def test_an_admission_opens_a_run_for_every_accelerator_of_the_gang() -> None:
    changes = {
        "phase": "Admitted",
        "attempt": 1,
        "admittedAt": stamp(0),
        "placement": {**H800, "workers": 2},
    }
    out = amend({}, changes, T0)
    assert out["runs"] == [
        {
            "attempt": 1,
            "cluster": "local",
            "pool": "h800",
            "vendor": "nvidia",
            "model": "H800",
            "accelerators": 16,
            "startTime": stamp(0),
        }
    ]


@pytest.mark.parametrize(
    ("changes", "end", "outcome"),
    [
        ({"phase": "Succeeded", "reason": "Succeeded", "completionTime": stamp(600)}, 600, "Succeeded"),
        ({"phase": "Queued", "reason": "Preempted", "queuedAt": stamp(300)}, 300, "Preempted"),
        ({"phase": "Suspended", "reason": "Suspended", "queuedAt": stamp(60)}, 60, "Suspended"),
        ({"placement": None, "accelerator": None}, 900, "Running"),
    ],
)
def test_leaving_admitted_or_running_closes_the_open_run(
    changes: dict[str, Any], end: float, outcome: str
) -> None:
    status = {"phase": "Running", "runs": [run(1, 0, None)]}
    out = amend(status, changes, T0 + 900)
    assert out["runs"][0]["endTime"] == stamp(end) and out["runs"][0]["outcome"] == outcome


def test_a_status_write_that_changes_nothing_about_runs_leaves_them_out() -> None:
    status = {"phase": "Running", "runs": [run(1, 0, None)]}
    assert "runs" not in amend(status, {"message": "still running"}, T0)
    assert "runs" not in amend({"phase": "Queued"}, {"queuePosition": 3}, T0)


def test_only_the_last_twenty_runs_stay_in_status() -> None:
    status = {"phase": "Running", "runs": [run(i, i, i + 1) for i in range(1, 20)] + [run(20, 30, None)]}
    out = amend(status, {"phase": "Queued", "reason": "Restarting"}, T0 + 40)
    assert len(out["runs"]) == 20 and out["runs"][-1]["outcome"] == "Restarting"
    changes = {
        "phase": "Admitted",
        "attempt": 21,
        "admittedAt": stamp(50),
        "placement": {**H800, "nodes": ["a"]},  # workers left out: counted from the nodes
    }
    again = amend({"phase": "Queued", "runs": out["runs"]}, changes, T0 + 50)
    assert [r["attempt"] for r in again["runs"]] == list(range(2, 22))


# ---- summing over a period ---------------------------------------------------------------------


def test_hours_are_clipped_to_the_period_and_a_running_job_counts_until_now() -> None:
    runs = usage.runs_of_job(aijob("a", [run(1, -HOUR, HOUR), run(2, 2 * HOUR, None)]), "physics")
    rows = usage.summarize(runs, T0, T0 + 10 * HOUR, now=T0 + 3 * HOUR, tflops=lambda v, m: 1000.0)
    # attempt 1: 1 h inside x 16; attempt 2: 1 h so far x 16
    assert rows == [usage.UsageRow("physics", "nvidia/H800", 2, 32.0, 32.0, True)]


def test_pflops_hours_use_each_models_figure_and_flag_a_model_without_one() -> None:
    job = aijob("a", [run(1, 0, HOUR, accelerators=8), run(2, HOUR, 2 * HOUR, accelerators=8, model="Z9")])
    rows = usage.summarize(usage.runs_of_job(job, "physics"), T0, T0 + 3 * HOUR, now=T0 + 3 * HOUR)
    h800 = loader.tflops_per_accelerator("nvidia", "H800")
    assert h800 == pytest.approx(989.4)
    assert (rows[1].tenant, rows[1].accelerator, rows[1].runs, rows[1].accelerator_hours) == (
        "physics",
        "nvidia/H800",
        1,
        8.0,
    )
    assert rows[1].pflops_hours == pytest.approx(8 * 989.4 / 1000) and rows[1].pflops_known
    assert rows[0].accelerator == "huawei/Z9" and rows[0].pflops_known is False
    assert rows[0].accelerator_hours == 8.0 and rows[0].pflops_hours == 0.0


def test_consecutive_periods_add_up_to_the_whole() -> None:
    runs = usage.runs_of_job(aijob("a", [run(1, 0.5 * HOUR, 5.25 * HOUR)]), "t")
    whole = usage.summarize(runs, T0, T0 + 6 * HOUR, T0 + 6 * HOUR, by_type=False)[0].accelerator_hours
    parts = sum(
        row.accelerator_hours
        for h in range(6)
        for row in usage.summarize(runs, T0 + h * HOUR, T0 + (h + 1) * HOUR, T0 + 6 * HOUR)
    )
    assert parts == pytest.approx(whole) == pytest.approx(16 * 4.75)


def test_the_same_run_from_a_job_and_a_ledger_counts_once_and_the_closed_copy_wins() -> None:
    job = aijob("a", [run(1, 0, None)])
    closed = ledger.job_records(aijob("a", [run(1, 0, HOUR)]))
    book = {"spec": {"tenant": "physics", "period": "2026-11"}, "status": {"records": closed}}
    merged = usage.merge(usage.runs_of_job(job, "physics"), usage.runs_of_ledger(book))
    assert len(merged) == 1 and merged[0].end == T0 + HOUR


def test_csv_and_table_carry_the_figures() -> None:
    rows = [usage.UsageRow("physics", "nvidia/H800", 2, 32.0, 31.6608, True)]
    text = usage.to_csv(rows, T0, T0 + HOUR)
    assert text.splitlines() == [
        "tenant,accelerator,period_start,period_end,runs,accelerator_hours,pflops_hours",
        "physics,nvidia/H800,2026-11-30T10:00:00Z,2026-11-30T11:00:00Z,2,32.0000,31.6608",
    ]
    table = usage.to_table(rows).splitlines()
    assert table[0].split() == ["TENANT", "ACCELERATOR", "RUNS", "ACCELERATOR-HOURS", "PFLOPS-HOURS"]
    assert table[1].split() == ["physics", "nvidia/H800", "2", "32.00", "31.66"]


# ---- PFLOPS figures -------------------------------------------------------------------------


def test_every_figure_in_the_profiles_has_a_source_and_the_models_platforms_run_are_listed() -> None:
    shipped = loader.load()
    for profile in shipped.values():
        for model in profile.models:
            figures = (model.fp16_tflops, model.bf16_tflops, model.fp8_tflops, model.fp32_tflops)
            if any(f is not None for f in figures):
                assert model.source and model.source.startswith("https://"), model.name
                assert model.source_kind in ("vendor", "reported"), model.name
            assert model.note, model.name
    names = {(p.key, m.name) for p in shipped.values() for m in p.models}
    for wanted in [
        ("nvidia", "H800"),
        ("nvidia", "H100"),
        ("nvidia", "A800"),
        ("nvidia", "A100"),
        ("nvidia", "H20"),
        ("nvidia", "L40S"),
        ("nvidia", "4090"),
        ("nvidia", "V100"),
        ("nvidia", "P100"),
        ("nvidia", "K80"),
        ("huawei", "Ascend910B"),
        ("huawei", "Ascend910B3"),
        ("huawei", "Ascend910B4"),
        ("huawei", "Ascend910C"),
        ("huawei", "Ascend310P"),
        ("cambricon", "MLU370-X8"),
        ("cambricon", "MLU590"),
        ("hygon", "K100"),
        ("hygon", "Z100"),
    ]:
        assert wanted in names


def test_a_figure_without_a_source_is_refused() -> None:
    with pytest.raises(loader.ProfileError, match="every figure needs a source"):
        loader.parse(
            """
profiles:
  - key: acme
    displayName: Acme
    resourceNames: [acme.com/npu]
    visibleDevicesEnv: [ACME_VISIBLE_DEVICES]
    collective: ACCL
    torchBackend: accl
    models:
      - {name: X1, fp16Tflops: 100, sourceKind: none}
""",
            "acme.yaml",
        )


def test_pool_pflops_fields_follow_the_model_and_are_absent_without_a_figure() -> None:
    assert pool_status_fields("nvidia", "h800", capacity=24, allocated=8, free=16) == {
        "tflops_per_accelerator": 989.4,
        "capacity_pflops": 23.746,
        "allocated_pflops": 7.915,
        "free_pflops": 15.83,
    }
    assert pool_status_fields("hygon", "K100", 8, 0, 8) == {}


# ---- the ledger ------------------------------------------------------------------------------


def ledgers(server: FakeApiServer) -> dict[str, dict[str, Any]]:
    """The UsageLedgers the API server holds, by name."""
    return {o["metadata"]["name"]: o for o in server.items("usageledgers")}


def ledger_writes(server: FakeApiServer) -> int:
    return sum(1 for method, _ in server.calls if method == "patch_ledger_status")


def tenant_of(namespace: str) -> str:
    return {"physics": "physics", "bio-lab": "biology"}.get(namespace, "default")


def test_runs_land_in_their_tenants_ledger_for_each_month_they_touch() -> None:
    server = FakeApiServer()
    long_run = run(1, 0, 40 * 24 * HOUR, accelerators=8)  # 30 Nov .. 10 Jan: three months
    jobs = {"physics/a": aijob("a", [long_run]), "bio-lab/b": aijob("b", [run(1, 0, HOUR)], "bio-lab")}
    ledger.Ledger(server).sync(jobs, tenant_of, T0 + 41 * 24 * HOUR)
    assert sorted(ledgers(server)) == [
        "biology-2026-11",
        "physics-2026-11",
        "physics-2026-12",
        "physics-2027-01",
    ]
    nov = ledgers(server)["physics-2026-11"]
    assert nov["spec"] == {"tenant": "physics", "period": "2026-11"}
    assert nov["status"]["acceleratorHours"] == pytest.approx(14 * 8)  # 10:00 30 Nov .. 1 Dec
    assert ledgers(server)["physics-2026-12"]["status"]["acceleratorHours"] == pytest.approx(31 * 24 * 8)
    assert nov["status"]["pflopsHours"] == pytest.approx(14 * 8 * 989.4 / 1000)


def test_syncing_again_writes_nothing_and_a_restarted_operator_does_not_double_count() -> None:
    server = FakeApiServer()
    jobs = {"physics/a": aijob("a", [run(1, 0, HOUR), run(2, 2 * HOUR, 3 * HOUR)])}
    ledger.Ledger(server).sync(jobs, tenant_of, T0 + 4 * HOUR)
    writes = ledger_writes(server)
    ledger.Ledger(server).sync(jobs, tenant_of, T0 + 5 * HOUR)  # a new process lists and compares
    assert ledger_writes(server) == writes
    records = ledgers(server)["physics-2026-11"]["status"]["records"]
    assert [r["attempt"] for r in records] == [1, 2]


def test_a_deleted_jobs_open_run_is_closed_when_it_is_seen_gone_and_kept() -> None:
    server = FakeApiServer()
    book = ledger.Ledger(server)
    book.sync({"physics/a": aijob("a", [run(1, 0, None)])}, tenant_of, T0 + HOUR)
    assert "endTime" not in ledgers(server)["physics-2026-11"]["status"]["records"][0]
    book.sync({}, tenant_of, T0 + 2 * HOUR)  # the job was deleted while it ran
    (record,) = ledgers(server)["physics-2026-11"]["status"]["records"]
    assert record["endTime"] == stamp(2 * HOUR) and record["outcome"] == "Deleted"
    rows = usage.summarize(usage.runs_of_ledger(ledgers(server)["physics-2026-11"]), T0, T0 + 5 * HOUR, T0)
    assert rows[0].accelerator_hours == pytest.approx(32.0)


def test_a_failed_write_is_retried_from_a_fresh_listing() -> None:
    server = FakeApiServer()
    book = ledger.Ledger(server)
    server.failures["patch_ledger_status"] = RuntimeError("down")
    book.sync({"physics/a": aijob("a", [run(1, 0, HOUR)])}, tenant_of, T0 + 2 * HOUR)
    assert "records" not in (ledgers(server)["physics-2026-11"].get("status") or {})
    del server.failures["patch_ledger_status"]
    book.sync({"physics/a": aijob("a", [run(1, 0, HOUR)])}, tenant_of, T0 + 3 * HOUR)
    assert len(ledgers(server)["physics-2026-11"]["status"]["records"]) == 1


def test_a_full_ledger_continues_in_a_second_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger, "MAX_RECORDS", 2)
    server = FakeApiServer()
    jobs = {f"physics/j{i}": aijob(f"j{i}", [run(1, i, i + 10)]) for i in range(5)}
    ledger.Ledger(server).sync(jobs, tenant_of, T0 + HOUR)
    assert sorted(ledgers(server)) == ["physics-2026-11", "physics-2026-11-2", "physics-2026-11-3"]
    ids = [r["id"] for o in ledgers(server).values() for r in o["status"]["records"]]
    assert len(ids) == len(set(ids)) == 5


def test_ledger_names_are_dns_safe_and_distinct_per_tenant() -> None:
    assert ledger.ledger_name("physics", "2026-11") == "physics-2026-11"
    odd = ledger.ledger_name("Chem_Lab", "2026-11")
    assert odd.startswith("chem-lab-") and odd.endswith("-2026-11")
    assert odd != ledger.ledger_name("chem-lab", "2026-11")


def test_docs_pflops_table_lists_every_model_with_its_figure() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "usage.md").read_text()
    for profile in loader.load().values():
        for model in profile.models:
            cell = f"| {profile.key} | {model.name} |"
            row = next((line for line in text.splitlines() if cell in line), None)
            assert row is not None, f"docs/usage.md has no row for {profile.key} {model.name}"
            if model.fp16_tflops is not None:
                assert f"| {model.fp16_tflops:g} |" in row, row
