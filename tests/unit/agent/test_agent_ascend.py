"""The Ascend backend against recorded `npu-smi info` output (see samples/README.md)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from estuary.agent.annotations import node_annotations
from estuary.agent.ascend import (
    MIB,
    AscendBackend,
    CommandResult,
    NpuSmiError,
    parse_npu_smi_info,
)
from estuary.api.nodehealth import unhealthy_count

SAMPLES = Path(__file__).parent / "samples"
OK_8 = (SAMPLES / "npu-smi-info-910b3-8npu-ok.txt").read_text()
ALARM = (SAMPLES / "npu-smi-info-910b3-alarm-critical.txt").read_text()
A3 = (SAMPLES / "npu-smi-info-a3-2chip.txt").read_text()
NO_DRIVER = (SAMPLES / "npu-smi-info-driver-missing.txt").read_text()
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


class Runner:
    """Plays back one result (or exception) per call, recording the commands."""

    def __init__(self, *outputs: CommandResult | BaseException) -> None:
        self.outputs = list(outputs)
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], timeout_s: float) -> CommandResult:
        self.calls.append(tuple(argv))
        out = self.outputs.pop(0) if len(self.outputs) > 1 else self.outputs[0]
        if isinstance(out, BaseException):
            raise out
        return out


def ok(stdout: str) -> CommandResult:
    return CommandResult(0, stdout, "")


def test_parses_eight_910b3_npus_with_hbm_aicore_power_and_temperature() -> None:
    chips = parse_npu_smi_info(OK_8)
    assert [c.npu_id for c in chips] == list(range(8))
    first = chips[0]
    assert (first.name, first.health, first.bus_id) == ("910B3", "OK", "0000:C1:00.0")
    assert (first.power_watts, first.temperature_celsius, first.aicore_percent) == (312.4, 52.0, 87.0)
    assert (first.hbm_used_mb, first.hbm_total_mb) == (58973, 65536)
    assert (first.memory_used_mb, first.memory_total_mb) == (0, 0)


def test_healthy_910b_node_becomes_eight_healthy_devices() -> None:
    runner = Runner(ok(OK_8))
    report = AscendBackend(runner).collect()

    assert runner.calls == [("npu-smi", "info")]
    assert report.vendor == "huawei" and report.errors == ()
    assert [d.index for d in report.devices] == list(range(8))
    assert all(d.healthy for d in report.devices)
    d = report.devices[7]
    assert (d.model, d.uuid, d.vendor_health) == ("Ascend910B3", "0000:42:00.0", "OK")
    assert d.memory_total_bytes == 65536 * MIB  # HBM, not the empty DDR column
    assert d.memory_used_bytes == 58960 * MIB
    assert d.utilization_percent == 85.0


def test_alarm_and_critical_npus_are_unhealthy_and_warning_is_not() -> None:
    report = AscendBackend(Runner(ok(ALARM))).collect()

    bad = {d.index: d.reasons for d in report.devices if not d.healthy}
    assert bad == {3: ("npu-smi health Alarm",), 6: ("npu-smi health Critical",)}
    assert report.devices[5].healthy and report.devices[5].vendor_health == "Warning"
    annotations = node_annotations(report, T0)
    assert annotations["estuary.dev/accelerators-unhealthy"] == "2"
    assert unhealthy_count(annotations, now=T0) == 2


def test_two_chip_boards_are_indexed_by_phy_id_and_missing_power_is_unknown() -> None:
    report = AscendBackend(Runner(ok(A3))).collect()

    assert [(d.index, d.uuid) for d in report.devices] == [
        (0, "0000:9D:00.0"),
        (1, "0000:9F:00.0"),
        (2, "0000:99:00.0"),
        (3, "0000:9B:00.0"),
    ]
    assert report.devices[0].power_watts == 172.5
    assert report.devices[1].power_watts is None  # npu-smi prints "-" for the second chip
    assert [d.healthy for d in report.devices] == [True, True, True, False]
    assert report.devices[0].model == "Ascend910"


def test_driver_missing_output_is_an_error_not_an_empty_healthy_node() -> None:
    with pytest.raises(NpuSmiError):
        parse_npu_smi_info(NO_DRIVER)
    report = AscendBackend(Runner(CommandResult(255, "", NO_DRIVER))).collect()

    assert report.devices == ()
    assert report.errors == ("npu-smi info failed (exit 255): dcmi module initialize failed. ret is -8005",)


def test_driver_failure_after_npus_were_seen_marks_them_all_unhealthy() -> None:
    runner = Runner(ok(OK_8), CommandResult(0, NO_DRIVER, ""))
    backend = AscendBackend(runner)
    backend.collect()

    report = backend.collect()
    assert report.unhealthy_count == 8
    assert all("dcmi module initialize failed" in d.reasons[0] for d in report.devices)
    assert report.devices[2].uuid == "0000:81:00.0"


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (FileNotFoundError("npu-smi"), "npu-smi not found: is the Ascend driver installed and mounted?"),
        (subprocess.TimeoutExpired(["npu-smi", "info"], 30), "npu-smi info timed out after 30s"),
    ],
)
def test_missing_or_hanging_npu_smi_is_reported(failure: BaseException, message: str) -> None:
    report = AscendBackend(Runner(failure)).collect()
    assert report.errors == (message,)


def test_npu_that_vanishes_from_the_table_is_reported_unhealthy() -> None:
    without_last = OK_8.split("| 7     910B3")[0]  # the table cut before NPU 7
    backend = AscendBackend(Runner(ok(OK_8), ok(without_last)))
    backend.collect()

    report = backend.collect()
    assert len(report.devices) == 8
    assert {d.index: d.reasons for d in report.devices if not d.healthy} == {
        7: ("no longer listed by npu-smi",)
    }
