"""A worker's or a node's resources as one small value type, so fit checks are one comparison."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Resources:
    """Accelerators (of one pool's resource), CPU in millicores and memory in bytes."""

    accelerators: int = 0
    cpu_milli: int = 0
    memory: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.accelerators + other.accelerators,
            self.cpu_milli + other.cpu_milli,
            self.memory + other.memory,
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.accelerators - other.accelerators,
            self.cpu_milli - other.cpu_milli,
            self.memory - other.memory,
        )

    def times(self, n: int) -> Resources:
        return Resources(self.accelerators * n, self.cpu_milli * n, self.memory * n)

    def fits_in(self, free: Resources) -> bool:
        return (
            self.accelerators <= free.accelerators
            and self.cpu_milli <= free.cpu_milli
            and self.memory <= free.memory
        )

    def clamp_at_zero(self) -> Resources:
        return Resources(max(self.accelerators, 0), max(self.cpu_milli, 0), max(self.memory, 0))
