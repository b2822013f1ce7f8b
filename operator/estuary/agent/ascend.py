"""The Huawei Ascend backend: reads the table `npu-smi info` prints.

npu-smi is the tool every Ascend node has (it ships with the driver); there is no stable Python
binding of DCMI to use instead. Its table has two rows per chip between `+===` separators:

    | NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
    | Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
    | 0     910B3               | OK            | 96.5        38                0    / 0             |
    | 0                         | 0000:C1:00.0  | 0           0    / 0          3162 / 65536         |

Atlas A3 boards print two chips per NPU and a `Phy-ID` after the chip id; that id (unique on the
node) becomes the device index, otherwise the NPU id does. The PCI bus id stands in for a UUID,
which npu-smi does not print. The command runs behind `CommandRunner` so tests feed recorded output.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from estuary.agent.backend import KnownDevices, failed_report, sorted_devices
from estuary.agent.health import ascend_reasons
from estuary.agent.report import DeviceReport, NodeReport

MIB = 1024 * 1024  # npu-smi's "MB" are MiB: an Ascend 910B3 reports 65536 MB of HBM (64 GiB)

_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")
_PAIR = re.compile(r"(\S+?)\s*/\s*(\S+)")


class NpuSmiError(ValueError):
    """npu-smi output that holds no device table."""


@dataclass(frozen=True, slots=True)
class NpuChip:
    """One chip as npu-smi prints it; unreadable numbers ("NA", "-") are None."""

    npu_id: int
    chip_id: int
    phy_id: int | None
    name: str
    health: str
    power_watts: float | None
    temperature_celsius: float | None
    aicore_percent: float | None
    bus_id: str
    memory_used_mb: int | None
    memory_total_mb: int | None
    hbm_used_mb: int | None
    hbm_total_mb: int | None


@dataclass(frozen=True, slots=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


CommandRunner = Callable[[Sequence[str], float], CommandResult]


def run_command(argv: Sequence[str], timeout_s: float) -> CommandResult:
    """The real runner. Raises FileNotFoundError / subprocess.TimeoutExpired like subprocess.run."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, check=False)
    return CommandResult(done.returncode, done.stdout, done.stderr)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _integer(text: str) -> int | None:
    value = _number(text)
    return int(value) if value is not None else None


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_npu_smi_info(text: str) -> list[NpuChip]:
    """Every chip in the output of `npu-smi info`, in printed order.

    Raises NpuSmiError when the output has no device table (driver missing, error message).
    """
    chips: list[NpuChip] = []
    in_table = False
    pending: list[str] | None = None  # the first row of a chip, waiting for its second
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("|"):
            continue
        cells = _cells(line)
        head = cells[0].split()
        if len(cells) >= 2 and head[:1] == ["NPU"]:
            if "Health" in cells[1]:
                in_table = True
                continue
            if "Process" in cells[1]:
                break  # the process table follows the device table
        if not in_table or len(cells) != 3 or not head:
            continue
        if _BUS_ID.match(cells[1]):
            if pending is not None and head[0].isdigit():
                chips.append(_chip(pending, cells))
            pending = None
        elif head[0].isdigit():
            pending = cells
    if not in_table:
        raise NpuSmiError("no device table in npu-smi output")
    return chips


def _chip(first: list[str], second: list[str]) -> NpuChip:
    npu_head = first[0].split()
    sensors = first[2].split()
    chip_head = second[0].split()
    usage = second[2]
    pairs = _PAIR.findall(usage)
    aicore = usage.split()[0] if usage.split() else ""
    memory = pairs[0] if pairs else ("", "")
    hbm = pairs[1] if len(pairs) > 1 else None
    return NpuChip(
        npu_id=int(npu_head[0]),
        chip_id=int(chip_head[0]),
        phy_id=int(chip_head[1]) if len(chip_head) > 1 and chip_head[1].isdigit() else None,
        name=" ".join(npu_head[1:]),
        health=first[1],
        power_watts=_number(sensors[0]) if sensors else None,
        temperature_celsius=_number(sensors[1]) if len(sensors) > 1 else None,
        aicore_percent=_number(aicore),
        bus_id=second[1],
        memory_used_mb=_integer(memory[0]),
        memory_total_mb=_integer(memory[1]),
        hbm_used_mb=_integer(hbm[0]) if hbm else None,
        hbm_total_mb=_integer(hbm[1]) if hbm else None,
    )


def model_name(name: str) -> str:
    """npu-smi's chip name as a model: "910B3" -> "Ascend910B3" (HAMi's resource naming)."""
    return name if name.lower().startswith("ascend") else f"Ascend{name}"


def _indices(chips: Sequence[NpuChip]) -> list[int]:
    if chips and all(c.phy_id is not None for c in chips):
        return [c.phy_id for c in chips if c.phy_id is not None]
    if len({c.npu_id for c in chips}) == len(chips):
        return [c.npu_id for c in chips]
    return list(range(len(chips)))


def chip_report(index: int, chip: NpuChip) -> DeviceReport:
    """A DeviceReport from one parsed chip: HBM when the chip has it, else its DDR memory."""
    used: int | None
    total: int | None
    if chip.hbm_total_mb:
        used, total = chip.hbm_used_mb, chip.hbm_total_mb
    else:
        used, total = chip.memory_used_mb, chip.memory_total_mb or None
    reasons = ascend_reasons(chip.health)
    return DeviceReport(
        index=index,
        uuid=chip.bus_id,
        model=model_name(chip.name),
        healthy=not reasons,
        reasons=tuple(reasons),
        memory_total_bytes=total * MIB if total is not None else None,
        memory_used_bytes=used * MIB if used is not None else None,
        utilization_percent=chip.aicore_percent,
        temperature_celsius=chip.temperature_celsius,
        power_watts=chip.power_watts,
        vendor_health=chip.health,
    )


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "no output"


class AscendBackend:
    """`Backend` for Huawei Ascend NPUs, through `npu-smi info`."""

    def __init__(
        self,
        runner: CommandRunner = run_command,
        *,
        command: Sequence[str] = ("npu-smi", "info"),
        timeout_s: float = 30.0,
    ) -> None:
        self._run = runner
        self._command = tuple(command)
        self._timeout_s = timeout_s
        self._known = KnownDevices()

    @property
    def vendor(self) -> str:
        return "huawei"

    def collect(self) -> NodeReport:
        what = " ".join(self._command)
        try:
            result = self._run(self._command, self._timeout_s)
        except FileNotFoundError:
            return self._failed(f"{self._command[0]} not found: is the Ascend driver installed and mounted?")
        except subprocess.TimeoutExpired:
            return self._failed(f"{what} timed out after {self._timeout_s:g}s")
        except OSError as e:
            return self._failed(f"{what} could not run: {e}")
        output = result.stdout + result.stderr
        if result.returncode != 0 or "dcmi module initialize failed" in output:
            return self._failed(f"{what} failed (exit {result.returncode}): {_last_line(output)}")
        try:
            chips = parse_npu_smi_info(result.stdout)
        except NpuSmiError as e:
            return self._failed(f"{what}: {e}: {_last_line(output)}")
        devices = [chip_report(i, c) for i, c in zip(_indices(chips), chips, strict=True)]
        missing = self._known.missing(devices, "no longer listed by npu-smi")
        self._known.remember(devices)
        return NodeReport(vendor=self.vendor, devices=sorted_devices(devices + missing))

    def close(self) -> None:
        pass

    def _failed(self, error: str) -> NodeReport:
        return failed_report(self.vendor, self._known, error)
