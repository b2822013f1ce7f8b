"""The real NVML path, on a machine with an NVIDIA GPU. Skipped elsewhere (with the reason); the
same code runs in test_agent_nvidia.py against a fake at the NVML seam."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pynvml
import pytest

from estuary.agent.annotations import node_annotations
from estuary.agent.nvidia import NvidiaBackend
from estuary.agent.nvml import PynvmlNvml
from estuary.api.nodehealth import unhealthy_count

pytestmark = pytest.mark.gpu


@pytest.fixture
def nvml() -> Iterator[PynvmlNvml]:
    real = PynvmlNvml()
    try:
        real.init()
    except pynvml.NVMLError as e:
        pytest.skip(f"NVML cannot be initialised here ({e}); the fake-NVML tests cover this code path")
    real.shutdown()
    yield real


def test_real_gpus_are_read_and_published(nvml: PynvmlNvml) -> None:
    backend = NvidiaBackend(nvml, event_timeout_ms=200)
    try:
        first = backend.collect()
        second = backend.collect()  # the same session, now draining the XID event set
    finally:
        backend.close()
    now = datetime.now(UTC)

    assert first.errors == () and second.errors == ()
    assert second.devices, "NVML initialised but reported no GPU"
    for device in second.devices:
        assert device.uuid.startswith(("GPU-", "MIG-"))
        assert device.model
        assert device.memory_total_bytes and device.memory_total_bytes > 0
        assert device.temperature_celsius is not None and 0 < device.temperature_celsius < 120
        assert device.healthy == (device.reasons == ())
    annotations = node_annotations(second, now)
    assert len(json.loads(annotations["estuary.dev/accelerator-health"])) == len(second.devices)
    assert unhealthy_count(annotations, now=now) == second.unhealthy_count
