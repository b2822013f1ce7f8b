"""Bursting in the simulator: the operator's chooser and data-movement arithmetic, on a clock."""

from __future__ import annotations

import pytest

from estuary.federation import datamove
from estuary.sim.bursting import Burster, DataModel, SimPartner, summary
from estuary.sim.cluster import SimCluster, pool_decl
from estuary.sim.throughputs import ThroughputTable
from estuary.sim.traces import TraceJob, job_key
from estuary.sim.workload import SimJob, to_sim_job

# Job type "A": 1 step/s on a v100 (home and partners), 2 steps/s on the partners' "fast" type.
TABLE = ThroughputTable({("v100", "A", 1): 1.0, ("p100", "A", 1): 0.5})
HOME = SimCluster("home", (pool_decl("v100", "v100", 1, 1),))
GBPS = 1e9


def job(index: int, arrival: float = 0.0, steps: float = 7200) -> SimJob:
    sim = to_sim_job(TraceJob(index, job_key("t", index), "t", arrival, "A", 1, 1, steps), HOME, TABLE)
    assert sim is not None
    return sim


def partner(
    name: str, gbps: float, accelerators: int = 1, egress: float = 0.1, kind: str = "v100"
) -> SimPartner:
    return SimPartner(
        name, kind, accelerators, datamove.Path(name, 0.05, gbps * GBPS, egress), price_per_hour=2.0
    )


def test_a_job_waits_for_its_threshold_then_starts_at_the_partner_when_its_data_is_there() -> None:
    burster = Burster([partner("gz", 1)], TABLE, DataModel(500 * 10**9), after_seconds=600)
    assert burster.offer(job(0), now=599) is None  # not yet
    sent = burster.offer(job(0), now=600)
    assert sent is not None and sent.partner == "gz"
    assert sent.start == pytest.approx(600 + 4000 + 0.05)  # 500 GB at 1 Gbps
    assert sent.end == pytest.approx(sent.start + 7200)  # its steps at the partner's rate
    assert sent.move.cost == pytest.approx(50.0) and sent.compute_cost == pytest.approx(4.0)


def test_a_partner_takes_no_more_than_its_capacity_until_its_jobs_end() -> None:
    burster = Burster([partner("gz", 10)], TABLE, after_seconds=0)
    first = burster.offer(job(0), now=0)
    assert first is not None
    assert burster.offer(job(1), now=10) is None  # its one accelerator is taken
    assert burster.offer(job(2), now=first.end) is not None


def test_data_decides_between_partners_and_a_dataset_already_there_moves_nothing() -> None:
    partners = [partner("bj", 10), partner("gz", 1)]
    at_home = Burster(partners, TABLE, DataModel(2 * 10**12), after_seconds=0)
    sent = at_home.offer(job(0), now=0)
    assert sent is not None and sent.partner == "bj"  # 2 TB: 27 min at 10 Gbps, 4.4 h at 1 Gbps
    in_gz = Burster(
        partners, TABLE, DataModel(2 * 10**12, cluster="gz", jurisdiction="mainland"), after_seconds=0
    )
    sent = in_gz.offer(job(0), now=0)
    assert sent is not None and sent.partner == "gz" and sent.move.seconds == 0


def test_a_slower_partner_type_is_chosen_only_when_the_data_makes_up_for_it() -> None:
    partners = [partner("fast-far", 0.1), partner("slow-near", 10, kind="p100")]
    burster = Burster(partners, TABLE, DataModel(10**12), after_seconds=0)
    sent = burster.offer(job(0, steps=3600), now=0)
    # fast-far: 1 TB at 100 Mbps = 22.2 h + 1 h; slow-near: 13 min + 2 h
    assert sent is not None and sent.partner == "slow-near"
    stats = summary(burster.sent)
    assert (
        stats.jobs == 1 and stats.data_tb == pytest.approx(1.0) and stats.egress_cost == pytest.approx(100.0)
    )
