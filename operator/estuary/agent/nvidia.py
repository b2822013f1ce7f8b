"""The NVIDIA backend: every GPU of the node through NVML, with XID events.

One NVML session lives for the agent's lifetime (an event set only reports XIDs raised while it is
registered, so re-initialising every poll would lose them). When NVML fails as a whole, the session
is dropped and retried on the next poll, and every GPU seen before is reported unhealthy meanwhile.
Readings a GPU does not support (ECC on consumer boards, page retirement on Ampere, row remapping
before it) are `None` and never count against it. The rules themselves live in `health.py`.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pynvml

from estuary.agent.backend import KnownDevices, failed_report, sorted_devices
from estuary.agent.health import CRITICAL_XIDS, nvidia_reasons
from estuary.agent.nvml import (
    XID_CRITICAL_ERROR_EVENT,
    DeviceHandle,
    EventSet,
    Nvml,
    PynvmlNvml,
    RemappedRows,
)
from estuary.agent.report import DeviceReport, NodeReport, XidEvent

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_EVENTS_KEPT = 100  # per GPU, inside the window


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _describe(error: pynvml.NVMLError) -> str:
    if isinstance(error, pynvml.NVMLError_GpuIsLost):
        return "GPU is lost (NVML: GPU is lost; fallen off the bus or powered down)"
    return f"NVML: {error}"


@dataclass
class _Readings:
    """What one poll read from one GPU (None: not supported, or the read failed)."""

    lost: list[str] = field(default_factory=list)
    memory: tuple[int, int] | None = None
    utilization: int | None = None
    temperature: int | None = None
    power_mw: int | None = None
    corrected: int | None = None
    uncorrected: int | None = None
    retired_pending: bool | None = None
    remapped: RemappedRows | None = None


class _GpuLost(Exception):
    def __init__(self, error: pynvml.NVMLError) -> None:
        super().__init__(str(error))
        self.error = error


class NvidiaBackend:
    """`Backend` for NVIDIA GPUs. `nvml` defaults to the real library."""

    def __init__(
        self,
        nvml: Nvml | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
        xid_window_s: float = 3600.0,
        event_timeout_ms: int = 100,
        critical_xids: Mapping[int, str] = CRITICAL_XIDS,
        max_events_per_poll: int = 1000,
    ) -> None:
        self._nvml: Nvml = nvml if nvml is not None else PynvmlNvml()
        self._clock = clock
        self._window = timedelta(seconds=xid_window_s)
        self._event_timeout_ms = event_timeout_ms
        self._critical = critical_xids
        self._max_events = max_events_per_poll
        self._ready = False
        self._event_set: EventSet | None = None
        self._known = KnownDevices()
        self._last_count: int | None = None
        self._xids: dict[str, list[XidEvent]] = defaultdict(list)
        self._xid_totals: dict[str, Counter[int]] = defaultdict(Counter)

    @property
    def vendor(self) -> str:
        return "nvidia"

    def collect(self) -> NodeReport:
        now = self._clock()
        if not self._ready:
            try:
                self._start()
            except pynvml.NVMLError as e:
                self._stop()
                return failed_report(self.vendor, self._known, f"NVML initialisation failed: {e}")
        try:
            count = self._nvml.device_count()
        except pynvml.NVMLError as e:
            self._stop()
            return failed_report(self.vendor, self._known, f"NVML device count failed: {e}")

        errors: list[str] = []
        self._drain_events(now, errors)
        self._prune(now)
        devices = [self._read(i, errors) for i in range(count)]
        missing = self._known.missing(
            devices, f"no longer enumerated by NVML (device count {self._last_count} -> {count})"
        )
        self._known.remember(devices)
        self._last_count = count
        return NodeReport(vendor=self.vendor, devices=sorted_devices(devices + missing), errors=tuple(errors))

    def close(self) -> None:
        self._stop()

    # -- session -------------------------------------------------------------------------------

    def _start(self) -> None:
        self._nvml.init()
        self._ready = True
        try:
            event_set = self._nvml.create_event_set()
        except pynvml.NVMLError as e:
            log.warning("XID events unavailable, health relies on polled counters only: %s", e)
            return
        self._event_set = event_set
        for index in range(self._nvml.device_count()):
            try:
                self._nvml.register_xid_events(self._nvml.handle(index), event_set)
            except pynvml.NVMLError_NotSupported:
                log.info("GPU %d does not report XID events", index)
            except pynvml.NVMLError as e:
                log.warning("GPU %d: cannot register for XID events: %s", index, e)

    def _stop(self) -> None:
        if self._event_set is not None:
            try:
                self._nvml.free_event_set(self._event_set)
            except pynvml.NVMLError as e:
                log.debug("freeing the NVML event set failed: %s", e)
            self._event_set = None
        if self._ready:
            try:
                self._nvml.shutdown()
            except pynvml.NVMLError as e:
                log.debug("NVML shutdown failed: %s", e)
        self._ready = False

    # -- XID events ------------------------------------------------------------------------------

    def _drain_events(self, now: datetime, errors: list[str]) -> None:
        if self._event_set is None:
            return
        for _ in range(self._max_events):
            try:
                event = self._nvml.wait_event(self._event_set, self._event_timeout_ms)
            except pynvml.NVMLError as e:
                errors.append(f"NVML event wait failed: {e}")
                return
            if event is None:
                return
            if not event.event_type & XID_CRITICAL_ERROR_EVENT:
                continue
            xid = event.data
            if event.uuid is None:
                errors.append(f"XID {xid} from a GPU NVML could not identify")
                continue
            log.warning("GPU %s: XID %d", event.uuid, xid)
            self._xids[event.uuid].append(XidEvent(xid=xid, at=now, critical=xid in self._critical))
            self._xid_totals[event.uuid][xid] += 1

    def _prune(self, now: datetime) -> None:
        for uuid, events in self._xids.items():
            self._xids[uuid] = [e for e in events if now - e.at <= self._window][-MAX_EVENTS_KEPT:]

    # -- devices ---------------------------------------------------------------------------------

    def _read(self, index: int, errors: list[str]) -> DeviceReport:
        nvml = self._nvml
        try:
            handle = nvml.handle(index)
            uuid = nvml.uuid(handle)
            model = nvml.name(handle)
        except pynvml.NVMLError as e:
            known = self._known.at_index(index)
            return DeviceReport(
                index=index,
                uuid=known.uuid if known else "",
                model=known.model if known else "",
                healthy=False,
                reasons=(f"unreachable: {_describe(e)}",),
                memory_total_bytes=known.memory_total_bytes if known else None,
            )
        r = self._readings(handle, index, errors)
        events = tuple(self._xids.get(uuid, ()))
        remapped = r.remapped
        reasons = r.lost + nvidia_reasons(
            ecc_uncorrected=r.uncorrected,
            retired_pages_pending=r.retired_pending,
            row_remap_pending=remapped.pending if remapped else None,
            row_remap_failure=remapped.failure if remapped else None,
            xid_events=events,
            critical_xids=self._critical,
        )
        known = self._known.at_index(index)
        last_total = known.memory_total_bytes if known and known.uuid == uuid else None
        return DeviceReport(
            index=index,
            uuid=uuid,
            model=model,
            healthy=not reasons,
            reasons=tuple(reasons),
            memory_total_bytes=r.memory[0] if r.memory else last_total,
            memory_used_bytes=r.memory[1] if r.memory else None,
            utilization_percent=float(r.utilization) if r.utilization is not None else None,
            temperature_celsius=float(r.temperature) if r.temperature is not None else None,
            power_watts=r.power_mw / 1000.0 if r.power_mw is not None else None,
            ecc_corrected=r.corrected,
            ecc_uncorrected=r.uncorrected,
            retired_pages_pending=r.retired_pending,
            row_remap_pending=remapped.pending if remapped else None,
            row_remap_failure=remapped.failure if remapped else None,
            xid_events=events,
            xid_totals=dict(self._xid_totals.get(uuid, {})),
        )

    def _readings(self, handle: DeviceHandle, index: int, errors: list[str]) -> _Readings:
        """Every reading of one GPU; one it does not support is None, one that fails is None and
        an error; a GPU that fell off the bus stops the readings and says so in `lost`."""
        nvml, out = self._nvml, _Readings()

        def get(what: str, read: Callable[[DeviceHandle], T]) -> T | None:
            try:
                return read(handle)
            except pynvml.NVMLError_NotSupported:
                return None
            except pynvml.NVMLError_GpuIsLost as e:
                raise _GpuLost(e) from e
            except pynvml.NVMLError as e:
                errors.append(f"GPU {index} {what}: {e}")
                return None

        try:
            out.memory = get("memory", nvml.memory)
            out.utilization = get("utilization", nvml.utilization)
            out.temperature = get("temperature", nvml.temperature)
            out.power_mw = get("power", nvml.power_milliwatts)
            out.corrected = get("ECC corrected", lambda h: nvml.ecc_errors(h, uncorrected=False))
            out.uncorrected = get("ECC uncorrected", lambda h: nvml.ecc_errors(h, uncorrected=True))
            out.retired_pending = get("retired pages", nvml.retired_pages_pending)
            out.remapped = get("remapped rows", nvml.remapped_rows)
        except _GpuLost as e:
            out.lost.append(_describe(e.error))
        return out
