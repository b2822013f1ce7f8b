"""When bursting pays: Gavel's setting at home, saturated, with a partner beyond a link, and every
job reading a dataset that must be moved there first.

Home: 36 K80 + 36 P100 + 36 V100 (Gavel's setting), Gavel-generated single-accelerator jobs at
--rate jobs/h, Estuary's policy. Partner: --partner-v100 V100s, reached over a link of --gbps
(10 and 1 by default) with --rtt-ms round trips and --egress per GB moved. A job that has waited
--after seconds (the link's burst threshold) goes to the partner when the chooser
(federation/choose.py) says so and it can start there now; it starts once its data is there
(federation/datamove.py). For each dataset size: average JCT of the measured jobs, how many
burst, the data they moved, the hours it spent moving, and its cost; each against the same
replay without a partner, measured in the same run.

    .venv/bin/python bench/burst_data.py                 # the docs' table (long: run with nohup)
    .venv/bin/python bench/burst_data.py --smoke         # seconds: 200 jobs at 60/h, two sizes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))

from estuary.federation import datamove  # noqa: E402
from estuary.sim import experiment as ex  # noqa: E402
from estuary.sim.bursting import Burster, DataModel, SimPartner, summary  # noqa: E402
from estuary.sim.cli import default_data_dir  # noqa: E402
from estuary.sim.engine import Assumptions, Simulator  # noqa: E402
from estuary.sim.metrics import summarize  # noqa: E402
from estuary.sim.policies import POLICIES  # noqa: E402
from estuary.sim.throughputs import load_default  # noqa: E402

GB = 10**9


def replay(exp: ex.Experiment, burster: Burster | None) -> tuple[float, dict[str, float], dict[str, Any]]:
    policy = POLICIES["estuary"]
    sim = Simulator(
        exp.cluster,
        exp.table,
        policy.schedule(),
        policy_name="estuary",
        assumptions=Assumptions(),
        wake_after=policy.wake_after,
        reference=exp.reference,
        burst=burster,
    )
    result = sim.run(exp.sim_jobs(), until_done=exp.until_done)
    measured = summarize(result, exp.measured)
    jct = {r.key: r.jct for r in result.records.values() if r.jct is not None}
    keys = {r.key for r in result.records.values() if exp.measured(r)}
    sent = [s for s in burster.sent if s.key in keys] if burster else []
    stats = summary(sent)
    return (
        measured.avg_jct_h,
        jct,
        {
            "burst": stats.jobs,
            "measured": measured.measured,
            "data_tb": stats.data_tb,
            "avg_data_h": stats.data_hours / stats.jobs if stats.jobs else 0.0,
            "egress": stats.egress_cost,
            "compute": stats.compute_cost,
            "wall_s": measured.wall_seconds,
            "sent": [s.key for s in sent],
        },
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=6.0, help="jobs/h (6: home saturated)")
    ap.add_argument("--jobs", type=int, default=1500)
    ap.add_argument("--measure", default="1000:1500")
    ap.add_argument("--sizes-gb", default="0,100,1000,10000,50000")
    ap.add_argument("--gbps", default="10,1")
    ap.add_argument("--rtt-ms", type=float, default=30.0)
    ap.add_argument("--egress", type=float, default=0.5, help="price per GB moved")
    ap.add_argument("--price", type=float, default=2.0, help="price per V100-hour at the partner")
    ap.add_argument("--partner-v100", type=int, default=36)
    ap.add_argument("--after", type=float, default=1800.0, help="burst after this long queued (s)")
    ap.add_argument(
        "--max-data-hours",
        type=float,
        default=None,
        help="the link's burst.maxDataSeconds, in hours (default: no limit)",
    )
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "burst_data.json")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    if args.smoke:
        args.rate, args.jobs, args.measure, args.sizes_gb, args.gbps = 60.0, 200, "150:200", "0,10000", "1"
    lo, hi = (int(x) for x in args.measure.split(":"))
    table = load_default(args.data or default_data_dir())

    def experiment() -> ex.Experiment:
        return ex.gavel(table, args.rate, args.jobs, (lo, hi), 0, continue_arrivals=False)

    started = time.perf_counter()
    home_jct, home_jcts, _ = replay(experiment(), None)
    rows: list[dict[str, Any]] = []
    print(
        f"Gavel setting at {args.rate:g} jobs/h, jobs {lo}-{hi - 1}; no partner: average JCT {home_jct:.2f} h"
    )
    head = (
        "link      data/job   avg JCT h  vs home  burst  their JCT h  same at home  moved TB  avg data h"
        "    egress  partner compute"
    )
    print(head)
    for gbps in (float(x) for x in args.gbps.split(",")):
        for size in (int(x) for x in args.sizes_gb.split(",")):
            path = datamove.Path("partner", args.rtt_ms / 1000, gbps * 1e9, args.egress)
            partner = SimPartner("partner", "v100", args.partner_v100, path, args.price)
            limit = args.max_data_hours * 3600 if args.max_data_hours is not None else None
            burster = Burster([partner], table, DataModel(size * GB), args.after, limit)
            jct, jcts, row = replay(experiment(), burster)
            sent = row.pop("sent")
            theirs = sum(jcts[k] for k in sent) / len(sent) / 3600 if sent else 0.0
            at_home = sum(home_jcts[k] for k in sent) / len(sent) / 3600 if sent else 0.0
            row.update({"gbps": gbps, "size_gb": size, "avg_jct_h": jct, "vs_home": jct / home_jct})
            row.update({"burst_jct_h": theirs, "burst_jct_at_home_h": at_home})
            rows.append(row)
            print(
                f"{gbps:>4g} Gbps {size:>7,} GB  {jct:>9.2f}  {jct / home_jct:>6.2f}x  {row['burst']:>5}"
                f"  {theirs:>11.2f}  {at_home:>12.2f}  {row['data_tb']:>8.1f}  {row['avg_data_h']:>10.2f}"
                f"  {row['egress']:>8.0f}  {row['compute']:>15.0f}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"args": vars(args) | {"data": None, "out": None}, "home_jct_h": home_jct, "rows": rows},
            indent=2,
            default=str,
        )
        + "\n"
    )
    print(f"total wall time {time.perf_counter() - started:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
