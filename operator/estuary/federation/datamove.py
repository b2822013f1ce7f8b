"""What moving a job's data to a cluster costs, in time and money (pure; the simulator uses it too).

A job may name its datasets: where each lives (a cluster, a jurisdiction) and its size. Links
carry the path to their partner: round-trip time and bandwidth (measured by the heartbeat, or
declared), and a price per GB moved. Estuary does not copy data itself; the job's own loader pulls
it. What bursting needs is the estimate:

  * a dataset already in the target cluster moves nothing;
  * one at home crosses the target's link: size / bandwidth + one round trip;
  * one at another partner crosses that partner's link and the target's (relayed or direct, the
    slower of the two bounds it): size / min(bandwidths) + both round trips, and both prices;
  * one in a cluster no link reaches is assumed to arrive at the target's link speed;
  * a dataset whose residency is a jurisdiction never moves out of it: the link is refused.
GB here is 10^9 bytes; Mbps 10^6 bits per second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

GB = 1e9
LOCAL = "local"


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    cluster: str  # "local" (the origin) or a partner's cluster name
    jurisdiction: str
    size_bytes: int
    residency: str = "any"  # the jurisdiction it must stay in, or "any"


@dataclass(frozen=True, slots=True)
class Path:
    """The network path from the origin to one partner cluster."""

    cluster: str
    rtt_s: float | None = None
    bandwidth_bps: float | None = None  # None: not measured yet
    egress_per_gb: float = 0.0


@dataclass(frozen=True, slots=True)
class Move:
    seconds: float = 0.0
    cost: float = 0.0
    gigabytes: float = 0.0
    lines: tuple[str, ...] = ()  # one per dataset, with the numbers

    def summary(self) -> str:
        if self.gigabytes == 0:
            return "; ".join(self.lines)
        took, each = hours(self.seconds), "; ".join(self.lines)
        return f"moving {self.gigabytes:,.0f} GB takes ~{took}, costs {self.cost:.2f} ({each})"


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def residency_refusal(datasets: Sequence[Dataset], link: str, jurisdiction: str) -> str | None:
    """Why a dataset may not go to a cluster of `jurisdiction`, or None."""
    for d in datasets:
        if d.residency != "any" and d.residency != jurisdiction:
            return f"dataset {d.name} must stay in {d.residency}; link {link} is {jurisdiction}"
    return None


def plan(datasets: Sequence[Dataset], target: Path, paths: Mapping[str, Path], home: str = LOCAL) -> Move:
    """The time and cost of bringing every dataset to `target` (`paths`: by cluster name)."""
    seconds = cost = gigabytes = 0.0
    lines = []
    for d in datasets:
        source = LOCAL if d.cluster in (LOCAL, home) else d.cluster
        if source == target.cluster:
            lines.append(f"{d.name} already in {target.cluster}")
            continue
        legs = [target] if source == LOCAL else [paths.get(source) or Path(source), target]
        known = [leg.bandwidth_bps for leg in legs if leg.bandwidth_bps]
        size_gb = d.size_bytes / GB
        if not known:
            lines.append(f"{d.name} ({size_gb:,.0f} GB from {source}): bandwidth not measured yet")
            continue
        bandwidth = min(known)
        took = d.size_bytes * 8 / bandwidth + sum(leg.rtt_s or 0.0 for leg in legs)
        price = size_gb * sum(leg.egress_per_gb for leg in legs)
        seconds, cost, gigabytes = seconds + took, cost + price, gigabytes + size_gb
        speed = f"{bandwidth / 1e6:,.0f} Mbps"
        lines.append(f"{d.name} {size_gb:,.0f} GB from {source} at {speed}: {hours(took)}, {price:.2f}")
    return Move(seconds, cost, gigabytes, tuple(lines))
