"""The agent's side of the node annotation contract (api/nodehealth.py): a report as annotations."""

from __future__ import annotations

from datetime import datetime

from estuary.agent.report import NodeReport
from estuary.api.nodehealth import DeviceHealth, encode


def node_annotations(report: NodeReport, now: datetime) -> dict[str, str]:
    """The four annotations for `report`, taken at `now`."""
    devices = {str(d.index): DeviceHealth(d.uuid, d.healthy, tuple(d.reasons)) for d in report.devices}
    return encode(devices, report.healthy_count, report.unhealthy_count, now)
