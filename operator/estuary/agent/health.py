"""The health rules: when the agent calls an accelerator unhealthy, and the reason it gives.

Kept apart from the backends so the rules are one short, testable list (docs/telemetry.md repeats
it for platform teams). A device is unhealthy when any rule below gives a reason; the operator then
never places work on it. The rules are deliberately conservative: each names a condition under
which NVIDIA or Huawei say the device needs a reset, a repair, or should not run jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from estuary.agent.report import XidEvent

# XIDs after which a GPU should not take new work until it is reset or repaired.
# Source: NVIDIA's "XID Errors" catalogue in the GPU deployment and management documentation.
CRITICAL_XIDS: Mapping[int, str] = {
    48: "double-bit ECC error",
    63: "ECC page retirement or row remapping recorded; reset needed",
    64: "ECC page retirement or row remapping failed",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    94: "contained ECC error",
    95: "uncontained ECC error",
}

# npu-smi "Health" column (DCMI health state). OK = normal, Warning = general (minor) alarm,
# Alarm = major alarm, Critical = critical alarm. Minor alarms keep a device in service, as
# Huawei's own device plugin does; anything else, including a value we do not know, takes it out.
ASCEND_HEALTHY_STATES: frozenset[str] = frozenset({"OK", "Warning"})


def nvidia_reasons(
    *,
    ecc_uncorrected: int | None,
    retired_pages_pending: bool | None,
    row_remap_pending: bool | None,
    row_remap_failure: bool | None,
    xid_events: Iterable[XidEvent],
    critical_xids: Mapping[int, str] = CRITICAL_XIDS,
) -> list[str]:
    """Reasons an NVIDIA GPU is unhealthy; empty when it is healthy. `None` means "not supported
    by this GPU" and never counts against it."""
    reasons: list[str] = []
    if ecc_uncorrected:
        reasons.append(f"{ecc_uncorrected} uncorrectable ECC error(s) since the last driver load or reset")
    if retired_pages_pending:
        reasons.append("retired memory pages pending: reset needed")
    if row_remap_pending:
        reasons.append("memory row remapping pending: reset needed")
    if row_remap_failure:
        reasons.append("memory row remapping failed: repair needed")
    seen: set[int] = set()
    for event in xid_events:
        if event.xid in critical_xids and event.xid not in seen:
            seen.add(event.xid)
            reasons.append(f"XID {event.xid}: {critical_xids[event.xid]}")
    return reasons


def ascend_reasons(health: str) -> list[str]:
    """Reasons an Ascend NPU is unhealthy, from npu-smi's Health column."""
    if health in ASCEND_HEALTHY_STATES:
        return []
    return [f"npu-smi health {health or 'missing'}"]
