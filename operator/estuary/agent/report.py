"""What a backend observed on one node in one poll: plain typed data, no I/O.

Every backend (NVML, npu-smi, ...) returns a `NodeReport`; the annotation writer, the metrics
exporter and `--dry-run` all read only this type, so adding a vendor means adding a backend and
nothing else. A reading the device could not give (not supported, lost GPU) is `None`, never 0:
"no ECC support" and "no ECC errors" must stay distinguishable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class XidEvent:
    """One NVIDIA XID error seen through NVML's event API (`at` is when the agent received it)."""

    xid: int
    at: datetime
    critical: bool


@dataclass(frozen=True, slots=True)
class DeviceReport:
    """One accelerator. `healthy` is False exactly when `reasons` is non-empty."""

    index: int
    uuid: str
    model: str
    healthy: bool
    reasons: tuple[str, ...] = ()
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None
    utilization_percent: float | None = None
    temperature_celsius: float | None = None
    power_watts: float | None = None
    ecc_corrected: int | None = None  # volatile: since the last driver load or GPU reset
    ecc_uncorrected: int | None = None
    retired_pages_pending: bool | None = None  # dynamic page retirement (before Ampere)
    row_remap_pending: bool | None = None  # row remapping (Ampere and later)
    row_remap_failure: bool | None = None
    vendor_health: str | None = None  # the vendor tool's own verdict, e.g. npu-smi "OK" / "Alarm"
    xid_events: tuple[XidEvent, ...] = ()  # inside the agent's XID window, oldest first
    xid_totals: Mapping[int, int] = field(default_factory=dict)  # XID -> count since agent start


@dataclass(frozen=True, slots=True)
class NodeReport:
    """All accelerators of one node. `errors` are problems of the backend itself (NVML failed to
    initialise, npu-smi missing, a sensor read failed); they never make a device healthy."""

    vendor: str
    devices: tuple[DeviceReport, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def healthy_count(self) -> int:
        return sum(1 for d in self.devices if d.healthy)

    @property
    def unhealthy_count(self) -> int:
        return sum(1 for d in self.devices if not d.healthy)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def device_to_json(device: DeviceReport) -> dict[str, object]:
    """A JSON-ready dict of one device (used by `--dry-run` and hack/gpu-check.sh)."""
    return {
        "index": device.index,
        "uuid": device.uuid,
        "model": device.model,
        "healthy": device.healthy,
        "reasons": list(device.reasons),
        "memory_total_bytes": device.memory_total_bytes,
        "memory_used_bytes": device.memory_used_bytes,
        "utilization_percent": device.utilization_percent,
        "temperature_celsius": device.temperature_celsius,
        "power_watts": device.power_watts,
        "ecc_corrected": device.ecc_corrected,
        "ecc_uncorrected": device.ecc_uncorrected,
        "retired_pages_pending": device.retired_pages_pending,
        "row_remap_pending": device.row_remap_pending,
        "row_remap_failure": device.row_remap_failure,
        "vendor_health": device.vendor_health,
        "xid_events": [{"xid": e.xid, "at": _iso(e.at), "critical": e.critical} for e in device.xid_events],
        "xid_totals": {str(xid): n for xid, n in sorted(device.xid_totals.items())},
    }


def report_to_json(report: NodeReport) -> dict[str, object]:
    """A JSON-ready dict of a whole report."""
    return {
        "vendor": report.vendor,
        "healthy": report.healthy_count,
        "unhealthy": report.unhealthy_count,
        "devices": [device_to_json(d) for d in report.devices],
        "errors": list(report.errors),
    }
