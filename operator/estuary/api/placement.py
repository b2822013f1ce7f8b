"""Where one gang attempt runs (`status.placement`), and what fixes it to that attempt.

Why its own module: the placement is the operator's decision, and two facts recorded with it must
not move while the attempt holds accelerators: the tenant whose quota it uses (a namespace
relabelled to another tenant changes the tenant of the job's next attempt, never of this one;
docs/operations.md, "Tenants") and the operator's seal (control/seal.py), without which the
operator creates no pods for it, so a placement written by anyone else starts nothing.
"""

from __future__ import annotations

from pydantic import Field

from estuary.api.base import StatusModel


class Placement(StatusModel):
    cluster: str = Field(description="Cluster the job runs in ('local' or a FederationLink name).")
    pool: str = Field(description="ComputePool.")
    vendor: str = Field(description="Accelerator vendor.")
    model: str = Field(description="Accelerator model.")
    resource: str = Field(description="Extended resource name requested by each worker.")
    nodes: list[str] = Field(default_factory=list, description="Node of each worker, by rank.")
    workers: int = Field(0, description="Workers placed (fewer than spec.workers when elastic).")
    link: str | None = Field(None, description="FederationLink, when the job runs at a partner.")
    tenant: str | None = Field(
        None,
        description="Tenant whose quota this attempt uses: its namespace's tenant when admitted, "
        "fixed until the attempt ends.",
    )
    seal: str | None = Field(
        None,
        description="The operator's signature over this placement, the job's uid and attempt; a "
        "placement without a valid one starts no pods.",
    )
