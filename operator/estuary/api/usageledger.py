"""The UsageLedger custom resource: a tenant's accelerator use in one month, kept for chargeback.

Why a resource of its own: an AIJob's `status.runs` is the researcher's view of her job, but it
goes when the job is deleted (or expires through its time-to-live), and chargeback between
departments must not. The operator copies every run record into the ledger of the run's tenant for
each calendar month (UTC) the run touches, keyed by the record's id, so writing a record again
changes nothing. Ledgers are cluster-scoped and readable by platform teams (`estuary-admin`), not by
researchers, whose own view is their jobs' run records. See docs/usage.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from estuary.api.aijob import RunRecord
from estuary.api.base import ApiModel, StatusModel

PERIOD_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


class UsageLedgerSpec(ApiModel):
    tenant: str = Field(
        description="Tenant (the estuary.dev/tenant label of its namespaces).", min_length=1, max_length=63
    )
    period: str = Field(description="Calendar month in UTC, YYYY-MM.", pattern=PERIOD_PATTERN)


class UsageRecord(RunRecord):
    """One gang attempt's hold on accelerators: an AIJob run record, with where it came from."""

    id: str = Field(description="namespace/job/uid/attempt: the same run always has the same id.")
    namespace: str = Field(description="Namespace of the job.")
    job: str = Field(description="Name of the job.")
    tflops_per_accelerator: float | None = Field(
        None, description="Peak dense FP16/BF16 TFLOPS of one accelerator (vendor profiles), when known."
    )


class UsageLedgerStatus(StatusModel):
    records: list[UsageRecord] = Field(
        default_factory=list, description="Runs that overlap the period, oldest first."
    )
    accelerator_hours: float = Field(
        0.0, description="Accelerator-hours of finished runs within the period (clipped to it)."
    )
    pflops_hours: float = Field(
        0.0, description="PFLOPS-hours (dense FP16/BF16) of finished runs within the period."
    )
    updated: str | None = Field(None, description="Last update (RFC 3339).")


class UsageLedger(ApiModel):
    """A tenant's accelerator use in one month (accelerator-hours, PFLOPS-hours), kept for chargeback."""

    api_version: Literal["estuary.dev/v1alpha1"] = Field("estuary.dev/v1alpha1", description="API version.")
    kind: Literal["UsageLedger"] = Field("UsageLedger", description="Kind.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: UsageLedgerSpec = Field(description="Tenant and month.")
    status: UsageLedgerStatus | None = Field(None, description="The runs and their totals.")
