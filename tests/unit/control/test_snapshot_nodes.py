"""Nodes read once per change (state/snapshot.py `nodes`, state/pools.py `assign`).

What a user relies on: a step sees every change to a node at once (a node that went NotReady, a
new allocatable, an agent's unhealthy report, and that report going stale with time alone), while
nodes nothing happened to are handed to the core as the very objects of the last step, so the
core's kept view is not rebuilt on every tick of a large cluster.
"""

from __future__ import annotations

from estuary.api.nodehealth import DEFAULT_MAX_AGE_S, HEARTBEAT_KEY, UNHEALTHY_KEY
from estuary.model import NodeInfo
from estuary.state import codec, snapshot

from .harness import Harness, node


def core_nodes(h: Harness) -> dict[str, NodeInfo]:
    return dict(snapshot.read(h.server.cache, h.clock.wall()).snapshot().nodes)


def test_a_node_nothing_happened_to_is_the_very_same_object_next_step() -> None:
    h = Harness()
    first, second = core_nodes(h), core_nodes(h)
    assert first.keys() == {"n0", "n1"} and all(second[n] is first[n] for n in first)
    h.server.put(node("n1", ready=False))
    third = core_nodes(h)
    assert third["n0"] is first["n0"]  # untouched
    assert third["n1"] is not first["n1"] and not third["n1"].ready


def test_an_unhealthy_report_counts_while_fresh_and_stops_once_stale_with_time_alone() -> None:
    h = Harness()
    fresh = codec.rfc3339(h.clock.wall())
    h.server.put(node("n0", annotations={UNHEALTHY_KEY: "1", HEARTBEAT_KEY: fresh}))
    assert core_nodes(h)["n0"].unhealthy_accelerators == 1
    assert core_nodes(h)["n0"].unhealthy_accelerators == 1
    h.clock.advance(DEFAULT_MAX_AGE_S + 1)  # the agent went quiet: nothing of the node changed
    assert core_nodes(h)["n0"].unhealthy_accelerators == 0
