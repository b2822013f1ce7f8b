"""The agent's Prometheus metrics, read as Prometheus reads them: text exposition, also over HTTP."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from estuary.agent.exporter import AgentCollector, build_registry, serve
from estuary.agent.report import DeviceReport, NodeReport

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
GIB = 1024**3


def gpu(index: int, **changes: Any) -> DeviceReport:
    base = DeviceReport(
        index=index,
        uuid=f"GPU-{index}",
        model="NVIDIA H800",
        healthy=True,
        memory_total_bytes=80 * GIB,
        memory_used_bytes=20 * GIB,
        utilization_percent=87.0,
        temperature_celsius=61.0,
        power_watts=512.5,
        ecc_corrected=4,
        ecc_uncorrected=0,
    )
    return replace(base, **changes)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    want = dict(labels)
    for (n, lv), v in samples(registry).items():
        if n == name and all(dict(lv).get(k) == x for k, x in want.items()):
            return v
    return None


@pytest.fixture
def agent() -> Iterator[tuple[CollectorRegistry, AgentCollector]]:
    yield build_registry("gpu-node-3", "nvidia")


def test_device_readings_are_exported_in_base_units_with_identity_labels(
    agent: tuple[CollectorRegistry, AgentCollector],
) -> None:
    registry, collector = agent
    collector.update(NodeReport("nvidia", (gpu(0), gpu(1, utilization_percent=12.0))), T0)

    labels = {"node": "gpu-node-3", "vendor": "nvidia", "model": "NVIDIA H800", "index": "0", "uuid": "GPU-0"}
    assert value(registry, "estuary_accelerator_utilization_ratio", **labels) == 0.87
    assert value(registry, "estuary_accelerator_utilization_ratio", index="1") == 0.12
    assert value(registry, "estuary_accelerator_memory_used_bytes", **labels) == 20 * GIB
    assert value(registry, "estuary_accelerator_memory_total_bytes", **labels) == 80 * GIB
    assert value(registry, "estuary_accelerator_temperature_celsius", **labels) == 61.0
    assert value(registry, "estuary_accelerator_power_watts", **labels) == 512.5
    assert value(registry, "estuary_accelerator_healthy", **labels) == 1.0
    assert value(registry, "estuary_accelerator_ecc_errors_total", type="corrected", index="0") == 4.0
    assert value(registry, "estuary_agent_backend_up") == 1.0
    assert value(registry, "estuary_agent_last_poll_timestamp_seconds") == T0.timestamp()


def test_counters_are_typed_as_counters_with_total_suffix(
    agent: tuple[CollectorRegistry, AgentCollector],
) -> None:
    registry, collector = agent
    collector.update(NodeReport("nvidia", (gpu(0, xid_totals={79: 2}),)), T0)

    text = generate_latest(registry).decode()
    assert "# TYPE estuary_accelerator_ecc_errors_total counter" in text
    assert "# TYPE estuary_accelerator_xid_events_total counter" in text
    assert value(registry, "estuary_accelerator_xid_events_total", xid="79") == 2.0


def test_unhealthy_and_vanished_devices_show_in_the_next_scrape(
    agent: tuple[CollectorRegistry, AgentCollector],
) -> None:
    registry, collector = agent
    collector.update(NodeReport("nvidia", (gpu(0), gpu(1))), T0)
    lost = DeviceReport(index=1, uuid="GPU-1", model="NVIDIA H800", healthy=False, reasons=("GPU is lost",))
    collector.update(NodeReport("nvidia", (lost,), errors=("GPU 0 power: Unknown Error",)), T0)

    assert value(registry, "estuary_accelerator_healthy", index="1") == 0.0
    assert value(registry, "estuary_accelerator_healthy", index="0") is None  # gone, not stale
    assert value(registry, "estuary_accelerator_temperature_celsius", index="1") is None  # unknown
    assert value(registry, "estuary_agent_backend_up") == 0.0
    assert value(registry, "estuary_agent_backend_errors_total") == 1.0


def test_metrics_are_served_over_http(agent: tuple[CollectorRegistry, AgentCollector]) -> None:
    registry, collector = agent
    collector.update(NodeReport("nvidia", (gpu(0),)), T0)
    server, _ = serve(registry, 0, "127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'estuary_accelerator_healthy{index="0",model="NVIDIA H800",node="gpu-node-3"' in body
    assert "estuary_accelerator_power_watts" in body
