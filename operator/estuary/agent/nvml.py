"""The one seam between the agent and NVML.

`NvidiaBackend` calls NVML only through the `Nvml` protocol below: the dozen functions it needs,
with plain Python results instead of ctypes structures. `PynvmlNvml` is the real implementation on
top of `pynvml` (nvidia-ml-py); tests pass a fake that raises pynvml's own exception classes
(`pynvml.NVMLError_GpuIsLost`, ...), so the backend's error handling is exercised exactly as it
runs on a GPU node. Errors are not translated here: callers catch `pynvml.NVMLError` subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType, Protocol

import pynvml

DeviceHandle = NewType("DeviceHandle", object)
EventSet = NewType("EventSet", object)


@dataclass(frozen=True, slots=True)
class RemappedRows:
    """nvmlDeviceGetRemappedRows: rows remapped for corrected/uncorrected errors, and the flags."""

    corrected: int
    uncorrected: int
    pending: bool
    failure: bool


@dataclass(frozen=True, slots=True)
class NvmlEvent:
    """One event from an event set. `uuid` is None when the device could not be identified."""

    uuid: str | None
    event_type: int
    data: int  # the XID for nvmlEventTypeXidCriticalError


XID_CRITICAL_ERROR_EVENT: int = pynvml.nvmlEventTypeXidCriticalError


class Nvml(Protocol):
    """The NVML functions the agent uses."""

    def init(self) -> None: ...
    def shutdown(self) -> None: ...
    def device_count(self) -> int: ...
    def handle(self, index: int) -> DeviceHandle: ...
    def name(self, handle: DeviceHandle) -> str: ...
    def uuid(self, handle: DeviceHandle) -> str: ...
    def memory(self, handle: DeviceHandle) -> tuple[int, int]:
        """(total, used) in bytes."""
        ...

    def utilization(self, handle: DeviceHandle) -> int:
        """GPU utilisation over the last sample period, in percent."""
        ...

    def temperature(self, handle: DeviceHandle) -> int:
        """Core temperature in degrees Celsius."""
        ...

    def power_milliwatts(self, handle: DeviceHandle) -> int: ...
    def ecc_errors(self, handle: DeviceHandle, *, uncorrected: bool) -> int:
        """Volatile (since driver load) total ECC error count."""
        ...

    def retired_pages_pending(self, handle: DeviceHandle) -> bool: ...
    def remapped_rows(self, handle: DeviceHandle) -> RemappedRows: ...
    def create_event_set(self) -> EventSet: ...
    def register_xid_events(self, handle: DeviceHandle, event_set: EventSet) -> None: ...
    def wait_event(self, event_set: EventSet, timeout_ms: int) -> NvmlEvent | None:
        """The next event, or None when none arrives within `timeout_ms`."""
        ...

    def free_event_set(self, event_set: EventSet) -> None: ...


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class PynvmlNvml:
    """`Nvml` on the real library. Needs libnvidia-ml.so.1 (the driver) at `init()` only."""

    def init(self) -> None:
        pynvml.nvmlInit()

    def shutdown(self) -> None:
        pynvml.nvmlShutdown()

    def device_count(self) -> int:
        return int(pynvml.nvmlDeviceGetCount())

    def handle(self, index: int) -> DeviceHandle:
        return DeviceHandle(pynvml.nvmlDeviceGetHandleByIndex(index))

    def name(self, handle: DeviceHandle) -> str:
        return _text(pynvml.nvmlDeviceGetName(handle))

    def uuid(self, handle: DeviceHandle) -> str:
        return _text(pynvml.nvmlDeviceGetUUID(handle))

    def memory(self, handle: DeviceHandle) -> tuple[int, int]:
        info = pynvml.nvmlDeviceGetMemoryInfo(handle)
        return int(info.total), int(info.used)

    def utilization(self, handle: DeviceHandle) -> int:
        return int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)

    def temperature(self, handle: DeviceHandle) -> int:
        return int(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))

    def power_milliwatts(self, handle: DeviceHandle) -> int:
        return int(pynvml.nvmlDeviceGetPowerUsage(handle))

    def ecc_errors(self, handle: DeviceHandle, *, uncorrected: bool) -> int:
        if uncorrected:
            kind = pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
        else:
            kind = pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED
        return int(pynvml.nvmlDeviceGetTotalEccErrors(handle, kind, pynvml.NVML_VOLATILE_ECC))

    def retired_pages_pending(self, handle: DeviceHandle) -> bool:
        return bool(pynvml.nvmlDeviceGetRetiredPagesPendingStatus(handle))

    def remapped_rows(self, handle: DeviceHandle) -> RemappedRows:
        corrected, uncorrected, pending, failure = pynvml.nvmlDeviceGetRemappedRows(handle)
        return RemappedRows(int(corrected), int(uncorrected), bool(pending), bool(failure))

    def create_event_set(self) -> EventSet:
        return EventSet(pynvml.nvmlEventSetCreate())

    def register_xid_events(self, handle: DeviceHandle, event_set: EventSet) -> None:
        pynvml.nvmlDeviceRegisterEvents(handle, XID_CRITICAL_ERROR_EVENT, event_set)

    def wait_event(self, event_set: EventSet, timeout_ms: int) -> NvmlEvent | None:
        try:
            data = pynvml.nvmlEventSetWait_v2(event_set, timeout_ms)
        except pynvml.NVMLError_Timeout:
            return None
        try:
            uuid: str | None = _text(pynvml.nvmlDeviceGetUUID(data.device))
        except pynvml.NVMLError:
            uuid = None
        return NvmlEvent(uuid=uuid, event_type=int(data.eventType), data=int(data.eventData))

    def free_event_set(self, event_set: EventSet) -> None:
        pynvml.nvmlEventSetFree(event_set)
