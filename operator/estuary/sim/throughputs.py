"""Measured training throughputs per accelerator type, job type and scale, and derived Ascend rates.

A job's runtime on each accelerator type is what makes a cluster heterogeneous, so the simulator
reads it from measurements rather than inventing it: Gavel's ``simulation_throughputs.json``
(steps per second of 26 job types on K80, P100 and V100 at 1, 2, 4 and 8 accelerators, alone).
No public trace measures Ascend NPUs, so their rates are derived from the NPU/GPU throughput pairs
that Ascend ModelZoo publishes (see ``AscendRatios``).
"""

from __future__ import annotations

import csv
import json
import math
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

GAVEL_WORKER_TYPES = ("k80", "p100", "v100")
ASCEND_WORKER_TYPE = "ascend910"

_KEY = re.compile(r"^\('(?P<job>.*)', (?P<scale>\d+)\)$")


class ThroughputTable:
    """Isolated steps/s by (worker type, job type, scale factor); absent or 0 = cannot run there.

    ``derived`` says, for each worker type that was not measured, how its rates were made.
    """

    def __init__(
        self, rates: Mapping[tuple[str, str, int], float], derived: Mapping[str, str] | None = None
    ) -> None:
        self.rates: Mapping[tuple[str, str, int], float] = dict(rates)
        self.derived: Mapping[str, str] = dict(derived or {})
        scales: dict[str, set[int]] = {}
        for (_, job, scale), r in self.rates.items():
            if r > 0:
                scales.setdefault(job, set()).add(scale)
        self._scales = {job: tuple(sorted(s)) for job, s in scales.items()}

    def rate(self, worker_type: str, job_type: str, scale: int) -> float:
        return self.rates.get((worker_type, job_type, scale), 0.0)

    def worker_types(self) -> tuple[str, ...]:
        return tuple(sorted({w for w, _, _ in self.rates}))

    def job_types(self) -> tuple[str, ...]:
        return tuple(sorted({j for _, j, _ in self.rates}))

    def scales(self, job_type: str) -> tuple[int, ...]:
        """Scale factors with a positive rate on at least one worker type."""
        return self._scales.get(job_type, ())

    def table_scale(self, job_type: str, accelerators: int) -> int | None:
        """The largest measured scale factor <= accelerators (None: not even one)."""
        fitting = [s for s in self.scales(job_type) if s <= accelerators]
        return max(fitting) if fitting else None

    def with_worker_type(
        self, worker_type: str, rates: Mapping[tuple[str, int], float], how: str
    ) -> ThroughputTable:
        merged = dict(self.rates)
        merged.update({(worker_type, j, s): r for (j, s), r in rates.items()})
        return ThroughputTable(merged, {**self.derived, worker_type: how})


def parse_gavel_key(key: str) -> tuple[str, int]:
    """``"('ResNet-50 (batch size 64)', 4)"`` -> ``("ResNet-50 (batch size 64)", 4)``."""
    m = _KEY.match(key)
    if m is None:
        raise ValueError(f"not a Gavel job key: {key!r}")
    return m.group("job"), int(m.group("scale"))


def load_gavel(path: str | Path, worker_types: Iterable[str] = GAVEL_WORKER_TYPES) -> ThroughputTable:
    """Read the isolated ("null" co-located partner) rates of ``simulation_throughputs.json``."""
    with open(path) as f:
        raw = json.load(f)
    rates: dict[tuple[str, str, int], float] = {}
    for worker in worker_types:
        for key, entry in raw[worker].items():
            job, scale = parse_gavel_key(key)
            rates[(worker, job, scale)] = float(entry["null"])
    return ThroughputTable(rates)


@dataclass(frozen=True)
class AscendRatios:
    """Median Ascend-NPU/GPU throughput ratio per card count, from Ascend ModelZoo pairs.

    ``over_v100[n]`` and ``over_a100[n]`` are medians over every model published with ``n`` cards
    (1 and 8). ``at(scale)`` interpolates the V100 ratio geometrically in log2(scale) between
    the 1-card and 8-card medians and holds it constant outside that range.
    """

    over_v100: Mapping[int, float]
    over_a100: Mapping[int, float]
    pairs_v100: Mapping[int, int]
    pairs_a100: Mapping[int, int]

    def at(self, scale: int) -> float:
        known = sorted(self.over_v100)
        lo, hi = known[0], known[-1]
        if scale <= lo:
            return self.over_v100[lo]
        if scale >= hi:
            return self.over_v100[hi]
        t = (math.log2(scale) - math.log2(lo)) / (math.log2(hi) - math.log2(lo))
        a, b = math.log(self.over_v100[lo]), math.log(self.over_v100[hi])
        return math.exp(a + t * (b - a))


def load_ascend_ratios(path: str | Path) -> AscendRatios:
    """Medians of ``npu_over_v100`` and ``npu_over_a100`` by ``n_cards`` (rows without one skipped)."""
    v100: dict[int, list[float]] = {}
    a100: dict[int, list[float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if not row["n_cards"]:
                continue
            n = int(row["n_cards"])
            if row["npu_over_v100"]:
                v100.setdefault(n, []).append(float(row["npu_over_v100"]))
            if row["npu_over_a100"]:
                a100.setdefault(n, []).append(float(row["npu_over_a100"]))
    if not v100:
        raise ValueError(f"{path}: no NPU/V100 pairs")
    return AscendRatios(
        over_v100={n: statistics.median(v) for n, v in sorted(v100.items())},
        over_a100={n: statistics.median(v) for n, v in sorted(a100.items())},
        pairs_v100={n: len(v) for n, v in sorted(v100.items())},
        pairs_a100={n: len(v) for n, v in sorted(a100.items())},
    )


def with_ascend(
    table: ThroughputTable, ratios: AscendRatios, worker_type: str = ASCEND_WORKER_TYPE
) -> ThroughputTable:
    """Add an Ascend worker type: its rate is the V100 rate of the same job and scale times the
    ModelZoo median NPU/V100 ratio at that scale (Gavel has no A100 rates to apply the other to)."""
    rates = {(j, s): r * ratios.at(s) for (w, j, s), r in table.rates.items() if w == "v100"}
    how = (
        "v100 rate x median NPU/V100 ratio of Ascend ModelZoo ("
        + ", ".join(f"{n} card{'s' if n > 1 else ''}: {v:.3f}" for n, v in ratios.over_v100.items())
        + "; geometric in log2(scale) between)"
    )
    return table.with_worker_type(worker_type, rates, how)


def load_default(data_dir: str | Path) -> ThroughputTable:
    """Gavel's table plus the derived ``ascend910`` worker type, from the shared data folder."""
    d = Path(data_dir)
    table = load_gavel(d / "gavel" / "simulation_throughputs.json")
    return with_ascend(table, load_ascend_ratios(d / "ascend_modelzoo" / "npu_vs_gpu_pairs.csv"))
