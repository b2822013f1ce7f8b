"""What the portal's pages say about a job, a pool or a tenant, from API objects alone."""

from __future__ import annotations

from typing import Any

from estuary.portal import present


def aijob(name: str = "train", status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "estuary.dev/v1alpha1",
        "kind": "AIJob",
        "metadata": {"name": name, "namespace": "physics", "creationTimestamp": "2026-11-30T10:00:00Z"},
        "spec": {
            "workers": 2,
            "acceleratorsPerWorker": 8,
            "accelerators": [{"vendor": "nvidia", "model": "H800", "image": "train:cuda"}],
            **spec,
        },
        **({"status": status} if status is not None else {}),
    }


def test_a_quota_bound_job_says_so_in_plain_words_with_the_operators_numbers() -> None:
    row = present.job_row(
        aijob(
            status={
                "phase": "Queued",
                "reason": "QuotaExceeded",
                "message": "tenant physics in pool h800: used 8 of nominal 8; needs 16",
                "queuePosition": 3,
            }
        )
    )
    assert row.headline == "Waiting: your tenant's quota in the pool is in use"
    assert row.message == "tenant physics in pool h800: used 8 of nominal 8; needs 16"
    assert row.queue_position == 3
    assert (row.workers, row.accelerators_per_worker, row.valid) == (2, 8, True)


def test_every_scheduling_reason_has_plain_words() -> None:
    from estuary.model.decisions import Reason

    for reason in Reason:
        assert present.headline("Queued", reason.value) != "Queued", reason


def test_a_job_without_status_is_new_and_a_running_one_shows_where() -> None:
    assert present.job_row(aijob()).headline.startswith("Submitted")
    placement = {"cluster": "local", "pool": "h800", "vendor": "nvidia", "model": "H800", "resource": "x"}
    row = present.job_row(
        aijob(status={"phase": "Running", "reason": "Running", "placement": placement, "queuePosition": 2})
    )
    assert (row.headline, row.where, row.queue_position) == ("Running", "pool h800, cluster local", None)


def test_someone_elses_invalid_object_becomes_an_invalid_row_not_an_exception() -> None:
    broken = aijob(workers="many", status={"phase": "Failed", "reason": "InvalidSpec", "message": "fix it"})
    broken["spec"]["unknownField"] = 1
    row = present.job_row(broken)
    assert not row.valid
    assert any("spec.workers" in p for p in row.problems)
    assert any("unknownField" in p for p in row.problems)
    assert row.headline.startswith("Cannot run as written")
    assert present.job_row({"metadata": {"name": "x"}, "status": "garbage"}).problems


def test_queue_order_follows_positions_and_puts_unpositioned_jobs_last() -> None:
    rows = [
        present.job_row(aijob("c", status={"phase": "Queued", "queuePosition": 5})),
        present.job_row(aijob("r", status={"phase": "Running"})),
        present.job_row(aijob("n", status={"phase": "Queued"})),
        present.job_row(aijob("a", status={"phase": "Queued", "queuePosition": 1})),
    ]
    assert [r.name for r in present.queue_order(rows)] == ["a", "c", "n"]


def pool(name: str, tenants: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"vendor": "nvidia", "model": "H800", "nodeSelector": {"pool": name}},
        "status": {"nodes": 3, "capacity": 24, "healthy": 24, "allocated": 8, "free": 16, "tenants": tenants},
    }


def test_tenant_quotas_sum_over_pools_and_keep_each_pool() -> None:
    usage = {"tenant": "physics", "lent": 0}
    rows = [
        present.pool_row(pool("a", [{**usage, "used": 8, "nominal": 8, "borrowed": 0}])),
        present.pool_row(pool("b", [{**usage, "used": 4, "nominal": 0, "borrowed": 4}])),
    ]
    (physics,) = present.tenant_quotas(rows)
    assert (physics.used, physics.nominal, physics.borrowed) == (12, 8, 4)
    assert [p["pool"] for p in physics.pools] == ["a", "b"]
    assert rows[0].free == 16 and rows[0].accelerator == "nvidia/H800"


def test_an_invalid_pool_or_link_is_shown_as_invalid() -> None:
    assert present.pool_row({"metadata": {"name": "p"}, "spec": {}}).problems
    assert present.link_row({"metadata": {"name": "l"}, "spec": {"jurisdiction": "moon"}}).problems
