"""The annotation contract the operator relies on: exact keys and formats, and how it reads them
back (fresh, stale, absent, damaged)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from estuary.agent.annotations import node_annotations
from estuary.agent.report import DeviceReport, NodeReport
from estuary.api.nodehealth import ANNOTATION_KEYS, read_health, unhealthy_count

T0 = datetime(2025, 3, 1, 8, 15, 0, 123456, tzinfo=UTC)

REPORT = NodeReport(
    vendor="nvidia",
    devices=(
        DeviceReport(index=0, uuid="GPU-aaa", model="NVIDIA H800", healthy=True),
        DeviceReport(
            index=1,
            uuid="GPU-bbb",
            model="NVIDIA H800",
            healthy=False,
            reasons=("XID 79: GPU has fallen off the bus",),
        ),
        DeviceReport(index=10, uuid="GPU-ccc", model="NVIDIA H800", healthy=True),
    ),
)


def test_annotations_are_exactly_the_four_documented_keys() -> None:
    annotations = node_annotations(REPORT, T0)

    assert (
        set(annotations)
        == set(ANNOTATION_KEYS)
        == {
            "estuary.dev/accelerators-healthy",
            "estuary.dev/accelerators-unhealthy",
            "estuary.dev/accelerator-health",
            "estuary.dev/agent-heartbeat",
        }
    )
    assert annotations["estuary.dev/accelerators-healthy"] == "2"
    assert annotations["estuary.dev/accelerators-unhealthy"] == "1"
    assert annotations["estuary.dev/agent-heartbeat"] == "2025-03-01T08:15:00Z"
    assert json.loads(annotations["estuary.dev/accelerator-health"]) == {
        "0": {"uuid": "GPU-aaa", "healthy": True, "reasons": []},
        "1": {"uuid": "GPU-bbb", "healthy": False, "reasons": ["XID 79: GPU has fallen off the bus"]},
        "10": {"uuid": "GPU-ccc", "healthy": True, "reasons": []},
    }


def test_heartbeat_is_utc_whatever_zone_the_clock_uses() -> None:
    hong_kong = T0.astimezone(timezone(timedelta(hours=8)))
    assert node_annotations(REPORT, hong_kong)["estuary.dev/agent-heartbeat"] == "2025-03-01T08:15:00Z"
    with pytest.raises(ValueError):
        node_annotations(REPORT, datetime(2025, 3, 1, 8, 15))


def test_fresh_annotations_count_the_unhealthy_accelerators() -> None:
    annotations = node_annotations(REPORT, T0)
    assert unhealthy_count(annotations, now=T0 + timedelta(seconds=60)) == 1


def test_stale_heartbeat_counts_nothing_unhealthy_but_says_it_is_stale() -> None:
    annotations = node_annotations(REPORT, T0)
    later = T0 + timedelta(seconds=301)

    assert unhealthy_count(annotations, now=later) == 0
    health = read_health(annotations, now=later)
    assert health.present and health.stale
    assert health.reported_unhealthy == 1
    assert health.devices["1"].reasons == ("XID 79: GPU has fallen off the bus",)
    assert unhealthy_count(annotations, now=later, max_age_s=600) == 1


def test_node_without_an_agent_has_no_unhealthy_accelerators() -> None:
    for found in (None, {}, {"kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd.sock"}):
        health = read_health(found, now=T0)
        assert (health.present, health.stale, health.unhealthy) == (False, False, 0)


def test_damaged_count_falls_back_to_the_per_device_map() -> None:
    annotations = node_annotations(REPORT, T0) | {"estuary.dev/accelerators-unhealthy": "many"}
    assert unhealthy_count(annotations, now=T0) == 1


def test_unreadable_annotations_count_nothing() -> None:
    annotations = {
        "estuary.dev/agent-heartbeat": "2025-03-01T08:15:00Z",
        "estuary.dev/accelerators-unhealthy": "-3",
        "estuary.dev/accelerator-health": "{not json",
    }
    assert unhealthy_count(annotations, now=T0) == 0
    assert unhealthy_count({"estuary.dev/agent-heartbeat": "yesterday"}, now=T0) == 0
