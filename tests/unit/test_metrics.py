"""Operator metrics as a Prometheus server scrapes them: names, labels, values, vanished series."""

from __future__ import annotations

import platform
import urllib.request

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from estuary import health, metrics
from estuary.metrics import OperatorMetrics, PoolUsage

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(m: OperatorMetrics) -> Samples:
    return parse(generate_latest(m.registry).decode())


def get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def m() -> OperatorMetrics:
    return OperatorMetrics()


def test_admission_counts_and_records_the_wait(m: OperatorMetrics) -> None:
    m.record_admission("physics", "h800", 42.0)
    m.record_admission("physics", "h800", 900.0)
    m.record_admission("medicine", "ascend", -1.0)  # clock skew never yields a negative wait

    s = scrape(m)
    assert get(s, "estuary_admissions_total", tenant="physics", pool="h800") == 2
    assert get(s, "estuary_queue_wait_seconds_count", tenant="physics", pool="h800") == 2
    assert get(s, "estuary_queue_wait_seconds_sum", tenant="physics", pool="h800") == 942.0
    assert get(s, "estuary_queue_wait_seconds_bucket", tenant="physics", pool="h800", le="60.0") == 1
    assert get(s, "estuary_queue_wait_seconds_bucket", tenant="medicine", pool="ascend", le="1.0") == 1


def test_events_are_counted_with_their_labels(m: OperatorMetrics) -> None:
    m.record_running("physics", "h800", 35.0)
    m.record_preemption("physics", "h800", "Priority")
    m.record_preemption("physics", "h800", "Priority")
    m.record_burst("medicine", "gz-campus")
    m.record_reconcile_error("AIJob")
    m.record_cycle(0.02)

    s = scrape(m)
    assert get(s, "estuary_job_start_seconds_count", tenant="physics", pool="h800") == 1
    assert get(s, "estuary_preemptions_total", tenant="physics", pool="h800", reason="Priority") == 2
    assert get(s, "estuary_bursts_total", tenant="medicine", link="gz-campus") == 1
    assert get(s, "estuary_reconcile_errors_total", kind="AIJob") == 1
    assert get(s, "estuary_scheduling_cycle_seconds_bucket", le="0.025") == 1
    assert get(s, "estuary_scheduling_cycle_seconds_bucket", le="0.01") == 0


def test_queue_length_drops_tenants_whose_queue_emptied(m: OperatorMetrics) -> None:
    m.set_queue({("physics", "nvidia/H800"): 3, ("medicine", "huawei/Ascend910B"): 1})
    m.set_queue({("physics", "nvidia/H800"): 2})

    s = scrape(m)
    assert get(s, "estuary_queue_length", tenant="physics", accelerator="nvidia/H800") == 2
    assert get(s, "estuary_queue_length", tenant="medicine", accelerator="huawei/Ascend910B") is None


def test_pool_usage_exports_every_state_and_tenant_and_forgets_removed_ones(m: OperatorMetrics) -> None:
    m.set_pool_usage(
        {
            "h800": PoolUsage(capacity=24, healthy=23, allocated=16, by_tenant={"physics": 12, "finance": 4}),
            "ascend": PoolUsage(capacity=24, healthy=24, allocated=0),
        }
    )
    s = scrape(m)
    h800 = {
        state: get(s, "estuary_pool_accelerators", pool="h800", state=state) for state in metrics.POOL_STATES
    }
    assert h800 == {"capacity": 24, "healthy": 23, "allocated": 16, "free": 7}
    assert get(s, "estuary_tenant_accelerators_used", pool="h800", tenant="finance") == 4

    m.set_pool_usage({"h800": PoolUsage(capacity=24, healthy=24, allocated=12, by_tenant={"physics": 12})})
    s = scrape(m)
    assert get(s, "estuary_pool_accelerators", pool="ascend", state="capacity") is None
    assert get(s, "estuary_tenant_accelerators_used", pool="h800", tenant="finance") is None
    assert get(s, "estuary_pool_accelerators", pool="h800", state="free") == 12


def test_free_never_goes_negative_when_unhealthy_cards_are_still_allocated() -> None:
    assert PoolUsage(capacity=8, healthy=6, allocated=8).free == 0


def test_every_job_phase_is_exported_even_when_zero(m: OperatorMetrics) -> None:
    m.set_jobs_by_phase({"Running": 5, "Queued": 2})
    s = scrape(m)
    assert {p: get(s, "estuary_jobs", phase=p) for p in metrics.JOB_PHASES} == {
        "Queued": 2,
        "Admitted": 0,
        "Running": 5,
        "Succeeded": 0,
        "Failed": 0,
        "Suspended": 0,
    }


def test_module_functions_update_the_operator_registry_served_over_http() -> None:
    before = (
        metrics.REGISTRY.get_sample_value("estuary_bursts_total", {"tenant": "t-http", "link": "hk"}) or 0
    )
    metrics.record_burst("t-http", "hk")
    metrics.set_queue({("t-http", "nvidia/H800"): 4})

    server, _ = health.serve(0, "127.0.0.1", health=health.Health())
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5) as resp:
            s = parse(resp.read().decode())
    finally:
        server.shutdown()
        server.server_close()
    assert get(s, "estuary_bursts_total", tenant="t-http", link="hk") == before + 1
    assert get(s, "estuary_queue_length", tenant="t-http", accelerator="nvidia/H800") == 4
    assert (get(s, "process_resident_memory_bytes") or 0) > 0 and any(n == "python_info" for n, _ in s)
    assert get(s, "estuary_build_info", version="0.1.0", python=platform.python_version()) == 1


def test_a_replica_that_stops_leading_serves_no_cluster_state(m: OperatorMetrics) -> None:
    m.set_leader(True)
    m.set_queue({("physics", "nvidia/H800"): 3})
    m.set_pool_usage({"h800": PoolUsage(capacity=16, healthy=16, allocated=8, by_tenant={"physics": 8})})
    m.set_jobs_by_phase({"Running": 1})
    m.set_leader(False)
    m.clear_state()
    s = scrape(m)
    assert get(s, "estuary_leader") == 0
    gone = (
        "estuary_queue_length",
        "estuary_pool_accelerators",
        "estuary_tenant_accelerators_used",
        "estuary_jobs",
    )
    assert not [name for name, _ in s if name in gone]
