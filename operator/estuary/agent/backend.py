"""The backend interface, and the memory of devices every backend shares.

A backend turns one vendor's tooling into a `NodeReport`. `KnownDevices` exists because the worst
failures make devices disappear rather than report an error: a GPU that falls off the bus can drop
out of NVML's enumeration, and a broken driver makes npu-smi print nothing at all. A device that was
seen once and is gone now is reported unhealthy (with its last known identity) until the agent
restarts, instead of silently shrinking the node.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from estuary.agent.report import DeviceReport, NodeReport


class Backend(Protocol):
    """One vendor's source of accelerator readings on this node."""

    @property
    def vendor(self) -> str:
        """The vendor name used in pools and metric labels ("nvidia", "huawei", ...)."""
        ...

    def collect(self) -> NodeReport:
        """Read every device once. Never raises for device or driver trouble: that is reported."""
        ...

    def close(self) -> None:
        """Release vendor resources (NVML session, event sets)."""
        ...


@dataclass(frozen=True, slots=True)
class KnownDevice:
    index: int
    uuid: str
    model: str
    memory_total_bytes: int | None


class KnownDevices:
    """Devices seen in earlier polls, keyed by their stable id (NVIDIA UUID, Ascend PCI bus id)."""

    def __init__(self) -> None:
        self._by_uuid: dict[str, KnownDevice] = {}

    def __len__(self) -> int:
        return len(self._by_uuid)

    def remember(self, devices: Iterable[DeviceReport]) -> None:
        for d in devices:
            if d.uuid:
                self._by_uuid[d.uuid] = KnownDevice(d.index, d.uuid, d.model, d.memory_total_bytes)

    def at_index(self, index: int) -> KnownDevice | None:
        """The device last seen at `index`, if any."""
        return next((k for k in self._by_uuid.values() if k.index == index), None)

    def missing(self, present: Iterable[DeviceReport], reason: str) -> list[DeviceReport]:
        """Unhealthy reports for known devices absent from `present`.

        A missing device keeps its last index unless a present device now has it (indices shift
        when a device drops out of the enumeration); then it gets the next index above all others.
        """
        present = list(present)
        seen = {d.uuid for d in present}
        used = {d.index for d in present}
        out: list[DeviceReport] = []
        for known in sorted(self._by_uuid.values(), key=lambda k: k.index):
            if known.uuid in seen:
                continue
            index = known.index
            detail = reason
            if index in used:
                index = max(used) + 1
                detail = f"{reason} (was index {known.index})"
            used.add(index)
            out.append(
                DeviceReport(
                    index=index,
                    uuid=known.uuid,
                    model=known.model,
                    healthy=False,
                    reasons=(detail,),
                    memory_total_bytes=known.memory_total_bytes,
                )
            )
        return out

    def unreachable(self, reason: str) -> list[DeviceReport]:
        """Every known device as unhealthy: the vendor tooling itself failed."""
        return self.missing((), reason)


def sorted_devices(devices: Iterable[DeviceReport]) -> tuple[DeviceReport, ...]:
    return tuple(sorted(devices, key=lambda d: d.index))


def failed_report(vendor: str, known: KnownDevices, error: str) -> NodeReport:
    """The report when the vendor tooling is unusable: known devices unhealthy, the error kept."""
    return NodeReport(vendor=vendor, devices=sorted_devices(known.unreachable(error)), errors=(error,))
