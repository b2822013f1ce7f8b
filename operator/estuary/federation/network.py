"""The path to a partner, measured by its link's heartbeat: round-trip time from a small request
(`GET /version`, the median of the last five) and bandwidth from a large one (`GET /openapi/v2`,
every `spec.network.probeSeconds`). A declared bandwidth (`spec.network.bandwidthMbps`, e.g. a
dedicated line whose API endpoint is not on it) wins over the measurement.

The measured bandwidth is a lower bound: one TCP stream, through the partner's API server, with
the server's own time included. It is what bursting uses to estimate moving a job's data
(datamove.py), and what the link's status shows.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from estuary.api.federationlink import NetworkSpec
from estuary.federation.partner import Partner, PartnerError

SMALL, LARGE = "/version", "/openapi/v2"
MIN_PROBE_BYTES = 64 * 1024  # smaller answers say more about latency than bandwidth


@dataclass(frozen=True)
class Network:
    rtt_s: float | None = None
    bandwidth_bps: float | None = None
    source: str | None = None  # measured | declared
    measured_at: float | None = None  # wall clock of the last bandwidth measurement


def rounded(value: float, digits: int = 2) -> float:
    """`value` to `digits` significant digits (status changes only when the number does)."""
    return float(f"{value:.{digits}g}")


class Meter:
    """One link's measurements; used by its worker thread only."""

    def __init__(
        self, mono: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time
    ) -> None:
        self.mono, self.wall = mono, wall
        self.rtts: deque[float] = deque(maxlen=5)
        self.bandwidth: float | None = None
        self.measured_at: float | None = None
        self.next_probe = 0.0

    def measure(self, partner: Partner, spec: NetworkSpec) -> Network:
        with contextlib.suppress(PartnerError):  # the heartbeat itself says whether it answers
            self.rtts.append(partner.probe(SMALL)[0])
        if spec.bandwidth_mbps is None and self.mono() >= self.next_probe:
            self.next_probe = self.mono() + spec.probe_seconds
            try:
                seconds, size = partner.probe(LARGE)
            except PartnerError:
                seconds, size = 0.0, 0
            if seconds > 0 and size >= MIN_PROBE_BYTES:
                self.bandwidth, self.measured_at = size * 8 / seconds, self.wall()
        rtt = statistics.median(self.rtts) if self.rtts else None
        if spec.bandwidth_mbps is not None:
            return Network(rtt, spec.bandwidth_mbps * 1e6, "declared", None)
        return Network(rtt, self.bandwidth, "measured" if self.bandwidth else None, self.measured_at)
