"""Free capacity per node: what other pods, running jobs, broken cards and node state leave."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from estuary.model import Reason

from .builders import GPU, admitted, cycle, finish, make_job, make_node, make_pool, run, snapshot


def test_foreign_pods_reduce_free_accelerators_cpu_and_memory() -> None:
    snap = snapshot([make_pool()], [make_node("n1", 8)], foreign={"n1": {GPU: 4, "cpu": 0, "memory": 0}})
    result = cycle(snap, make_job("ns/big", gpus=8), make_job("ns/small", gpus=4, arrival=1))
    assert admitted(result) == {"ns/small": ("h800", ("n1",))}
    assert result.waiting["ns/big"].reason == Reason.CAPACITY


def test_foreign_cpu_use_is_subtracted_from_the_node() -> None:
    snap = snapshot([make_pool()], [make_node("n1", 8, cpu=8000)], foreign={"n1": {"cpu": 6000}})
    result = cycle(snap, make_job("ns/a", gpus=1, cpu=4000))
    assert result.waiting["ns/a"].reason == Reason.CAPACITY
    assert "CPU" in result.waiting["ns/a"].message


def test_terminating_jobs_still_hold_their_nodes() -> None:
    old = make_job("ns/old", gpus=8, tenant="chem")
    snap = snapshot([make_pool()], [make_node("n1")], [run(old, "h800", ["n1"], terminating=True)])
    result = cycle(snap, make_job("ns/new", gpus=8))
    assert not result.admissions
    assert admitted(cycle(finish(snap, "ns/old"), make_job("ns/new", gpus=8))) == {
        "ns/new": ("h800", ("n1",))
    }


def test_every_worker_of_a_running_job_counts_on_its_node() -> None:
    two_on_one = make_job("ns/pair", workers=2, gpus=4)
    snap = snapshot(
        [make_pool()], [make_node("n1"), make_node("n2")], [run(two_on_one, "h800", ["n1", "n1"])]
    )
    assert admitted(cycle(snap, make_job("ns/x", gpus=8))) == {"ns/x": ("h800", ("n2",))}


def test_unhealthy_accelerators_are_never_placed_on() -> None:
    snap = snapshot([make_pool()], [make_node("n1", 8, unhealthy=2)])
    result = cycle(snap, make_job("ns/a", gpus=8), make_job("ns/b", gpus=6, arrival=1))
    assert admitted(result) == {"ns/b": ("h800", ("n1",))}
    waiting = result.waiting["ns/a"]
    assert waiting.reason == Reason.UNHEALTHY
    assert "2 unhealthy nvidia.com/gpu" in waiting.message


@pytest.mark.parametrize("state", [{"ready": False}, {"unschedulable": True}])
def test_not_ready_or_unschedulable_nodes_offer_nothing(state: dict[str, Any]) -> None:
    snap = snapshot([make_pool()], [make_node("n1", **state), make_node("n2")])
    result = cycle(snap, make_job("ns/a", gpus=8), make_job("ns/b", gpus=8, arrival=1))
    assert admitted(result) == {"ns/a": ("h800", ("n2",))}
    assert result.waiting["ns/b"].reason == Reason.CAPACITY


def test_a_node_belongs_to_the_first_pool_by_name_that_selects_it() -> None:
    wide = replace(make_pool("a-wide"), node_selector={})  # selects every GPU node
    narrow = make_pool("b-h800")
    result = cycle(snapshot([narrow, wide], [make_node("n1", pool="b-h800")]), make_job("ns/a", gpus=8))
    assert admitted(result) == {"ns/a": ("a-wide", ("n1",))}


def test_nodes_without_the_pool_resource_belong_to_no_pool() -> None:
    cpu_node = make_node("cpu1", 0)
    result = cycle(snapshot([make_pool()], [cpu_node]), make_job("ns/a", gpus=1))
    assert result.waiting["ns/a"].reason == Reason.NEVER_FITS
    assert "has no nodes" in result.waiting["ns/a"].message
