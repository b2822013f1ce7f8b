"""Published figures to print beside ours: Gavel's own simulator on the same setting.

From ../shared/data/README.md: Gavel @ c4fa400, simulate_scheduler_with_generated_jobs.py, 36 K80
+ 36 P100 + 36 V100, single-accelerator jobs, 6-minute rounds (time-sliced, jobs may move between
types every round), seed 0, jobs 4000-5000 measured. Average JCT in hours; None = not reported.
"""

from __future__ import annotations

# jobs/h -> {policy: avg JCT hours}
GAVEL_AVG_JCT_H: dict[float, dict[str, float | None]] = {
    1.2: {"fifo": 17.70, "fifo_perf": 15.61, "max_min_fairness": 23.71, "max_min_fairness_perf": 17.67},
    3.2: {"fifo": 21.20, "fifo_perf": 16.21, "max_min_fairness": 23.83, "max_min_fairness_perf": 16.34},
    5.2: {"fifo": 162.64, "fifo_perf": 61.87, "max_min_fairness": 66.51, "max_min_fairness_perf": 22.38},
    6.0: {"fifo": None, "fifo_perf": None, "max_min_fairness": 135.17, "max_min_fairness_perf": 42.28},
}

GAVEL_POLICIES = ("fifo", "fifo_perf", "max_min_fairness", "max_min_fairness_perf")


def gavel_row(rate: float) -> dict[str, float | None] | None:
    for r, row in GAVEL_AVG_JCT_H.items():
        if abs(r - rate) < 1e-9:
            return row
    return None
