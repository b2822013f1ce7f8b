"""Prometheus metrics of the node agent, on a registry of its own.

A custom collector renders the latest `NodeReport` at scrape time instead of keeping one gauge per
device: a device that disappears from a report disappears from the scrape, and the counters NVML
keeps (volatile ECC counts, which reset when the driver reloads) are exposed as Prometheus counters,
which is what they are; `rate()` and `increase()` handle the resets. Utilisation is a 0..1 ratio and
power is in watts, per Prometheus base-unit conventions. See docs/telemetry.md for the list.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from estuary.agent.report import DeviceReport, NodeReport

DEVICE_LABELS = ("node", "vendor", "model", "index", "uuid")


class AgentCollector(Collector):
    """Exposes the latest report; `update()` is called by the poll loop, `collect()` by scrapes."""

    def __init__(self, node: str, vendor: str) -> None:
        self._node = node
        self._vendor = vendor
        self._lock = threading.Lock()
        self._report: NodeReport | None = None
        self._polled_at: float | None = None
        self._backend_errors = 0
        self._publish_failures = 0

    def update(self, report: NodeReport, now: datetime) -> None:
        with self._lock:
            self._report = report
            self._polled_at = now.timestamp()
            self._backend_errors += len(report.errors)

    def publish_failed(self) -> None:
        with self._lock:
            self._publish_failures += 1

    def describe(self) -> Iterable[Metric]:
        return self._families(None)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            report = self._report
        return self._families(report)

    def _labels(self, d: DeviceReport) -> list[str]:
        return [self._node, self._vendor, d.model, str(d.index), d.uuid]

    def _families(self, report: NodeReport | None) -> list[Metric]:
        families = _declare()
        if report is not None:
            self._fill(families, report)
        return list(families.values())

    def _fill(self, f: dict[str, Family], report: NodeReport) -> None:
        node_labels = [self._node, self._vendor]
        f["up"].add_metric(node_labels, 0.0 if report.errors else 1.0)
        if self._polled_at is not None:
            f["polled"].add_metric(node_labels, self._polled_at)
        f["errors"].add_metric(node_labels, float(self._backend_errors))
        f["failures"].add_metric([self._node], float(self._publish_failures))
        for d in report.devices:
            lv = self._labels(d)
            f["healthy"].add_metric(lv, 1.0 if d.healthy else 0.0)
            measured = {
                "util": None if d.utilization_percent is None else d.utilization_percent / 100.0,
                "mem_used": None if d.memory_used_bytes is None else float(d.memory_used_bytes),
                "mem_total": None if d.memory_total_bytes is None else float(d.memory_total_bytes),
                "temp": d.temperature_celsius,
                "power": d.power_watts,
            }
            for name, value in measured.items():
                if value is not None:
                    f[name].add_metric(lv, value)
            if d.ecc_corrected is not None:
                f["ecc"].add_metric([*lv, "corrected"], float(d.ecc_corrected))
            if d.ecc_uncorrected is not None:
                f["ecc"].add_metric([*lv, "uncorrected"], float(d.ecc_uncorrected))
            for xid, count in sorted(d.xid_totals.items()):
                f["xids"].add_metric([*lv, str(xid)], float(count))


Family = GaugeMetricFamily | CounterMetricFamily


def _declare() -> dict[str, Family]:
    """Every family the agent exports, empty, in exposition order."""
    labels = list(DEVICE_LABELS)
    per_node = ["node", "vendor"]
    return {
        "util": GaugeMetricFamily(
            "estuary_accelerator_utilization_ratio", "Busy fraction of the accelerator (0..1).", labels=labels
        ),
        "mem_used": GaugeMetricFamily(
            "estuary_accelerator_memory_used_bytes", "Device memory in use.", labels=labels
        ),
        "mem_total": GaugeMetricFamily(
            "estuary_accelerator_memory_total_bytes", "Device memory installed.", labels=labels
        ),
        "temp": GaugeMetricFamily(
            "estuary_accelerator_temperature_celsius", "Core temperature.", labels=labels
        ),
        "power": GaugeMetricFamily("estuary_accelerator_power_watts", "Power draw.", labels=labels),
        "healthy": GaugeMetricFamily(
            "estuary_accelerator_healthy",
            "1 if the agent's health rules pass for the accelerator, else 0.",
            labels=labels,
        ),
        "ecc": CounterMetricFamily(
            "estuary_accelerator_ecc_errors",
            "Volatile ECC errors counted by the device since the driver loaded (resets on reload).",
            labels=[*labels, "type"],
        ),
        "xids": CounterMetricFamily(
            "estuary_accelerator_xid_events",
            "NVIDIA XID events received by the agent since it started.",
            labels=[*labels, "xid"],
        ),
        "up": GaugeMetricFamily(
            "estuary_agent_backend_up",
            "1 if the last poll reached the vendor tooling (NVML, npu-smi) without a backend error.",
            labels=per_node,
        ),
        "polled": GaugeMetricFamily(
            "estuary_agent_last_poll_timestamp_seconds",
            "Unix time of the agent's last poll.",
            labels=per_node,
        ),
        "errors": CounterMetricFamily(
            "estuary_agent_backend_errors",
            "Backend errors reported by polls since the agent started.",
            labels=per_node,
        ),
        "failures": CounterMetricFamily(
            "estuary_agent_publish_failures",
            "Failed patches of the node's health annotations since the agent started.",
            labels=["node"],
        ),
    }


def build_registry(node: str, vendor: str) -> tuple[CollectorRegistry, AgentCollector]:
    """A fresh registry holding only the agent's collector."""
    registry = CollectorRegistry(auto_describe=True)
    collector = AgentCollector(node, vendor)
    registry.register(collector)
    return registry, collector


def serve(
    registry: CollectorRegistry, port: int, addr: str = "0.0.0.0"
) -> tuple[WSGIServer, threading.Thread]:
    """Serve `registry` on http://addr:port/metrics in a daemon thread; port 0 picks a free one
    (read it back from `server.server_port`). Stop with `server.shutdown()`."""
    server, thread = start_http_server(port, addr=addr, registry=registry)
    return server, thread
