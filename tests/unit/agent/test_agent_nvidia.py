"""The NVIDIA backend against a fake NVML: what a platform team sees for healthy, degraded, lost
and driverless nodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pynvml
from nvml_fake import GIB, FakeGpu, FakeNvml, h800_node

from estuary.agent.annotations import node_annotations
from estuary.agent.nvidia import NvidiaBackend
from estuary.agent.nvml import RemappedRows
from estuary.agent.report import NodeReport

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def backend(nvml: FakeNvml, clock: Clock | None = None, xid_window_s: float = 3600.0) -> NvidiaBackend:
    return NvidiaBackend(nvml, clock=clock or Clock(), xid_window_s=xid_window_s)


def unhealthy(report: NodeReport) -> dict[int, tuple[str, ...]]:
    return {d.index: d.reasons for d in report.devices if not d.healthy}


def test_healthy_node_reports_every_gpu_with_readings_in_base_units() -> None:
    report = backend(FakeNvml(h800_node())).collect()

    assert report.vendor == "nvidia"
    assert report.errors == ()
    assert [d.index for d in report.devices] == list(range(8))
    assert all(d.healthy and d.reasons == () for d in report.devices)
    gpu = report.devices[3]
    assert gpu.uuid == "GPU-5f3c9a7e-41d2-4b8e-9c1a-000000000003"
    assert gpu.model == "NVIDIA H800"
    assert gpu.memory_total_bytes == 80 * GIB
    assert gpu.memory_used_bytes == 63 * GIB
    assert gpu.utilization_percent == 83.0
    assert gpu.temperature_celsius == 43.0
    assert gpu.power_watts == 71.25
    assert (gpu.ecc_corrected, gpu.ecc_uncorrected) == (0, 0)
    assert (gpu.row_remap_pending, gpu.row_remap_failure) == (False, False)
    assert gpu.retired_pages_pending is None  # not supported on Hopper: unknown, not "false"


def test_one_nvml_session_serves_many_polls_and_close_ends_it() -> None:
    nvml = FakeNvml(h800_node(2))
    b = backend(nvml)
    b.collect()
    b.collect()
    assert nvml.init_calls == 1
    assert len(nvml.registered) == 2  # XID events registered once per GPU
    b.close()
    assert (nvml.shutdown_calls, nvml.freed) == (1, 1)


def test_uncorrectable_ecc_marks_only_that_gpu_unhealthy() -> None:
    gpus = h800_node()
    gpus[2].ecc_uncorrected = 3
    gpus[5].ecc_corrected = 1200  # corrected errors alone are fine
    report = backend(FakeNvml(gpus)).collect()

    assert list(unhealthy(report)) == [2]
    assert "3 uncorrectable ECC error(s)" in unhealthy(report)[2][0]
    assert report.devices[5].healthy and report.devices[5].ecc_corrected == 1200


def test_pending_page_retirement_and_row_remap_trouble_mark_gpus_unhealthy() -> None:
    gpus = h800_node(4)
    gpus[0].retired_pages_pending = True  # pre-Ampere mechanism
    gpus[0].remapped_rows = None
    gpus[1].remapped_rows = RemappedRows(0, 1, pending=True, failure=False)
    gpus[2].remapped_rows = RemappedRows(0, 8, pending=False, failure=True)
    report = backend(FakeNvml(gpus)).collect()

    reasons = unhealthy(report)
    assert sorted(reasons) == [0, 1, 2]
    assert "retired memory pages pending" in reasons[0][0]
    assert "row remapping pending" in reasons[1][0]
    assert "row remapping failed" in reasons[2][0]


def test_xid_79_marks_the_gpu_unhealthy_for_the_xid_window_then_it_recovers() -> None:
    nvml = FakeNvml(h800_node())
    clock = Clock()
    b = backend(nvml, clock, xid_window_s=600)
    b.collect()
    nvml.raise_xid(6, 79)
    nvml.raise_xid(1, 13)  # graphics engine exception: the application's fault, not the GPU's

    report = b.collect()
    assert unhealthy(report) == {6: ("XID 79: GPU has fallen off the bus",)}
    assert [(e.xid, e.critical) for e in report.devices[6].xid_events] == [(79, True)]
    assert report.devices[1].healthy and report.devices[1].xid_totals == {13: 1}

    clock.now = T0 + timedelta(seconds=601)
    later = b.collect()
    assert later.devices[6].healthy and later.devices[6].xid_events == ()
    assert later.devices[6].xid_totals == {79: 1}  # the counter keeps counting for metrics


def test_configured_critical_xids_replace_the_default_list() -> None:
    nvml = FakeNvml(h800_node(2))
    b = NvidiaBackend(nvml, clock=Clock(), critical_xids={31: "MMU fault"})
    b.collect()
    nvml.raise_xid(0, 31)
    nvml.raise_xid(1, 79)
    report = b.collect()
    assert unhealthy(report) == {0: ("XID 31: MMU fault",)}


def test_lost_gpu_is_unhealthy_and_the_others_are_still_read() -> None:
    gpus = h800_node()
    gpus[4].fail["temperature"] = pynvml.NVMLError_GpuIsLost()
    report = backend(FakeNvml(gpus)).collect()

    assert list(unhealthy(report)) == [4]
    assert "GPU is lost" in unhealthy(report)[4][0]
    assert report.devices[4].uuid == gpus[4].uuid
    assert report.devices[5].temperature_celsius == 45.0


def test_gpu_that_becomes_unreachable_keeps_its_last_known_identity() -> None:
    gpus = h800_node()
    nvml = FakeNvml(gpus)
    b = backend(nvml)
    b.collect()
    gpus[7].lost = True  # every call, handle included, now raises NVMLError_GpuIsLost

    report = b.collect()
    lost = report.devices[7]
    assert not lost.healthy
    assert lost.reasons[0].startswith("unreachable: GPU is lost")
    assert (lost.uuid, lost.model, lost.memory_total_bytes) == (gpus[7].uuid, "NVIDIA H800", 80 * GIB)
    assert report.healthy_count == 7


def test_gpu_that_drops_out_of_the_enumeration_is_reported_unhealthy_not_forgotten() -> None:
    gpus = h800_node()
    nvml = FakeNvml(gpus)
    b = backend(nvml)
    b.collect()
    gone = gpus.pop(3)  # count 8 -> 7; the GPUs after it shift down one index

    report = b.collect()
    assert len(report.devices) == 8
    assert report.unhealthy_count == 1
    missing = next(d for d in report.devices if not d.healthy)
    assert missing.uuid == gone.uuid
    assert missing.index == 7
    assert "no longer enumerated by NVML (device count 8 -> 7) (was index 3)" in missing.reasons[0]
    assert len({d.index for d in report.devices}) == 8


def test_driver_not_loaded_reports_the_error_and_no_devices() -> None:
    nvml = FakeNvml(h800_node(), init_error=pynvml.NVMLError_DriverNotLoaded())
    report = backend(nvml).collect()

    assert report.devices == ()
    assert report.errors == ("NVML initialisation failed: Driver Not Loaded",)
    annotations = node_annotations(report, T0)
    assert annotations["estuary.dev/accelerators-healthy"] == "0"
    assert annotations["estuary.dev/accelerators-unhealthy"] == "0"


def test_init_is_retried_on_the_next_poll_once_the_driver_is_back() -> None:
    nvml = FakeNvml(h800_node(2), init_error=pynvml.NVMLError_LibraryNotFound())
    b = backend(nvml)
    assert b.collect().errors
    nvml.init_error = None
    report = b.collect()
    assert report.errors == () and report.healthy_count == 2
    assert nvml.init_calls == 2


def test_nvml_failing_after_gpus_were_seen_marks_all_of_them_unhealthy() -> None:
    nvml = FakeNvml(h800_node())
    b = backend(nvml)
    b.collect()
    nvml.count_error = pynvml.NVMLError_Unknown()

    report = b.collect()
    assert report.unhealthy_count == 8 and report.healthy_count == 0
    assert report.errors == ("NVML device count failed: Unknown Error",)
    assert all("Unknown Error" in d.reasons[0] for d in report.devices)
    assert nvml.shutdown_calls == 1  # the broken session is dropped and rebuilt next poll


def test_consumer_gpu_without_ecc_or_xid_support_is_healthy_with_unknown_readings() -> None:
    gpu = FakeGpu(
        uuid="GPU-0d3e1f22-7a41-4c9e-8b7b-4e9a1c2d3f40",
        name="NVIDIA GeForce RTX 4090",
        ecc_corrected=None,
        ecc_uncorrected=None,
        remapped_rows=None,
        xid_supported=False,
    )
    nvml = FakeNvml([gpu])
    nvml.event_set_error = pynvml.NVMLError_NotSupported()
    report = backend(nvml).collect()

    device = report.devices[0]
    assert device.healthy and report.errors == ()
    assert (device.ecc_corrected, device.ecc_uncorrected, device.row_remap_pending) == (None, None, None)


def test_a_failing_sensor_is_an_error_but_not_a_reason_to_drain_the_gpu() -> None:
    gpus = h800_node(2)
    gpus[1].fail["power"] = pynvml.NVMLError_Unknown()
    report = backend(FakeNvml(gpus)).collect()

    assert report.devices[1].healthy and report.devices[1].power_watts is None
    assert report.errors == ("GPU 1 power: Unknown Error",)
