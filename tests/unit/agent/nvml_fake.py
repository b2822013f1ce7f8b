"""A fake NVML at the `estuary.agent.nvml.Nvml` seam, raising pynvml's real exception classes.

Each `FakeGpu` is a device; `fail` makes one method raise (e.g. {"power": NVMLError_Unknown()}),
`lost=True` makes every call on that GPU raise NVMLError_GpuIsLost, as NVML does after a GPU falls
off the bus. `raise_xid()` queues an XID event that the next poll drains.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import cast

import pynvml

from estuary.agent.nvml import XID_CRITICAL_ERROR_EVENT, DeviceHandle, EventSet, NvmlEvent, RemappedRows

GIB = 1024**3


@dataclass
class FakeGpu:
    uuid: str
    name: str = "NVIDIA H800"
    memory_total: int = 80 * GIB
    memory_used: int = 2 * GIB
    utilization: int = 0
    temperature: int = 34
    power_mw: int = 71_250
    ecc_corrected: int | None = 0  # None: ECC not supported (raises NotSupported)
    ecc_uncorrected: int | None = 0
    retired_pages_pending: bool | None = None  # None: not supported (Ampere and later)
    remapped_rows: RemappedRows | None = field(default_factory=lambda: RemappedRows(0, 0, False, False))
    xid_supported: bool = True
    lost: bool = False
    fail: dict[str, pynvml.NVMLError] = field(default_factory=dict)


def not_supported() -> pynvml.NVMLError:
    return pynvml.NVMLError_NotSupported()


class FakeNvml:
    """Implements estuary.agent.nvml.Nvml over a list of FakeGpu."""

    def __init__(self, gpus: list[FakeGpu], *, init_error: pynvml.NVMLError | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.count_error: pynvml.NVMLError | None = None
        self.event_set_error: pynvml.NVMLError | None = None
        self.initialised = False
        self.init_calls = 0
        self.shutdown_calls = 0
        self.registered: list[str] = []
        self.freed = 0
        self.events: deque[NvmlEvent] = deque()

    # helpers for tests
    def raise_xid(self, index: int, xid: int) -> None:
        event = NvmlEvent(uuid=self.gpus[index].uuid, event_type=XID_CRITICAL_ERROR_EVENT, data=xid)
        self.events.append(event)

    def _gpu(self, handle: DeviceHandle, what: str) -> FakeGpu:
        if not self.initialised:
            raise pynvml.NVMLError_Uninitialized()
        gpu = self.gpus[cast(int, handle)]
        if gpu.lost:
            raise pynvml.NVMLError_GpuIsLost()
        if what in gpu.fail:
            raise gpu.fail[what]
        return gpu

    # the Nvml protocol
    def init(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise self.init_error
        self.initialised = True

    def shutdown(self) -> None:
        if not self.initialised:
            raise pynvml.NVMLError_Uninitialized()
        self.shutdown_calls += 1
        self.initialised = False

    def device_count(self) -> int:
        if not self.initialised:
            raise pynvml.NVMLError_Uninitialized()
        if self.count_error is not None:
            raise self.count_error
        return len(self.gpus)

    def handle(self, index: int) -> DeviceHandle:
        if index >= len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        self._gpu(DeviceHandle(index), "handle")
        return DeviceHandle(index)

    def name(self, handle: DeviceHandle) -> str:
        return self._gpu(handle, "name").name

    def uuid(self, handle: DeviceHandle) -> str:
        return self._gpu(handle, "uuid").uuid

    def memory(self, handle: DeviceHandle) -> tuple[int, int]:
        gpu = self._gpu(handle, "memory")
        return gpu.memory_total, gpu.memory_used

    def utilization(self, handle: DeviceHandle) -> int:
        return self._gpu(handle, "utilization").utilization

    def temperature(self, handle: DeviceHandle) -> int:
        return self._gpu(handle, "temperature").temperature

    def power_milliwatts(self, handle: DeviceHandle) -> int:
        return self._gpu(handle, "power").power_mw

    def ecc_errors(self, handle: DeviceHandle, *, uncorrected: bool) -> int:
        gpu = self._gpu(handle, "ecc")
        value = gpu.ecc_uncorrected if uncorrected else gpu.ecc_corrected
        if value is None:
            raise not_supported()
        return value

    def retired_pages_pending(self, handle: DeviceHandle) -> bool:
        gpu = self._gpu(handle, "retired_pages")
        if gpu.retired_pages_pending is None:
            raise not_supported()
        return gpu.retired_pages_pending

    def remapped_rows(self, handle: DeviceHandle) -> RemappedRows:
        gpu = self._gpu(handle, "remapped_rows")
        if gpu.remapped_rows is None:
            raise not_supported()
        return gpu.remapped_rows

    def create_event_set(self) -> EventSet:
        if self.event_set_error is not None:
            raise self.event_set_error
        return EventSet(object())

    def register_xid_events(self, handle: DeviceHandle, event_set: EventSet) -> None:
        gpu = self._gpu(handle, "register")
        if not gpu.xid_supported:
            raise not_supported()
        self.registered.append(gpu.uuid)

    def wait_event(self, event_set: EventSet, timeout_ms: int) -> NvmlEvent | None:
        return self.events.popleft() if self.events else None

    def free_event_set(self, event_set: EventSet) -> None:
        self.freed += 1


def h800_node(count: int = 8) -> list[FakeGpu]:
    """Eight healthy H800s with distinct UUIDs and readings."""
    return [
        FakeGpu(
            uuid=f"GPU-5f3c9a7e-41d2-4b8e-9c1a-00000000000{i}",
            utilization=80 + i,
            temperature=40 + i,
            memory_used=(60 + i) * GIB,
        )
        for i in range(count)
    ]
