"""The FederationLink custom resource: a partner cluster Estuary may burst jobs to."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from estuary.api.base import (
    CONDITIONS_BY_TYPE,
    ApiModel,
    Condition,
    Jurisdiction,
    Residency,
    SecretKeyRef,
    StatusModel,
)


class AcceleratorCost(ApiModel):
    vendor: str = Field(description="Vendor profile key.", min_length=1)
    model: str | None = Field(None, description="Model; empty: every model of the vendor.")
    cost_per_accelerator_hour: float = Field(ge=0, description="Price of one accelerator-hour.")


class TenantBudget(ApiModel):
    tenant: str = Field(description="Tenant.", min_length=1)
    budget: float = Field(ge=0, description="Spend allowed at this partner (cost units).")


class BurstRule(ApiModel):
    after_seconds: int = Field(600, ge=0, description="Burst a job queued at home this long.")
    when_never_fits: bool = Field(True, description="Burst at once a job no local pool can ever fit.")


class LinkLimits(ApiModel):
    max_jobs: int | None = Field(None, ge=0, description="Most jobs placed at the partner at once.")
    max_accelerators: int | None = Field(None, ge=0, description="Most accelerators used there.")


class FederationLinkSpec(ApiModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.allowedResidency) || "
                    "self.allowedResidency.all(r, r == 'any' || r == self.jurisdiction)",
                    "message": "spec.allowedResidency may hold only 'any' and the link's own jurisdiction",
                    "fieldPath": ".allowedResidency",
                    "reason": "FieldValueInvalid",
                },
            ]
        },
    )

    kubeconfig_secret_ref: SecretKeyRef = Field(
        description="Secret with the partner's kubeconfig; never logged or copied into status."
    )
    jurisdiction: Jurisdiction = Field(description="Where the partner is: hk, mainland or overseas.")
    remote_namespace: str = Field(
        "estuary-burst", description="Namespace jobs are created in there.", min_length=1, max_length=63
    )
    allowed_tenants: list[str] = Field(
        default_factory=list,
        max_length=256,
        description="Tenants whose jobs may go there; empty: none.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    allowed_residency: list[Residency] = Field(
        ["any"],
        max_length=4,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description=(
            "Residency classes that may go there; a class other than 'any' must equal the jurisdiction."
        ),
    )
    burst: BurstRule = Field(
        default_factory=BurstRule,
        description="When to burst.",
    )
    costs: list[AcceleratorCost] = Field(default_factory=list, description="Price per type.")
    budgets: list[TenantBudget] = Field(
        default_factory=list,
        max_length=256,
        description="Spend limit per tenant; a tenant without one may not burst here.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["tenant"]},
    )
    limits: LinkLimits = Field(
        default_factory=LinkLimits,
        description="Limits at the partner.",
    )
    lease_seconds: int = Field(
        120,
        ge=30,
        le=3600,
        description="Remote jobs stop themselves when the origin has not renewed their lease this long.",
    )
    heartbeat_seconds: int = Field(15, ge=5, le=600, description="How often the partner is polled.")


class PartnerCapacity(StatusModel):
    vendor: str = Field(description="Vendor.")
    model: str = Field(description="Model.")
    capacity: int = Field(0, description="Accelerators in the partner's pools.")
    free: int = Field(0, description="Accelerators free there.")
    relative_throughput: float | None = Field(
        None, description="Relative throughput of the partner's pools of this type."
    )


class TenantSpend(StatusModel):
    tenant: str = Field(description="Tenant.")
    accelerator_hours: float = Field(0.0, description="Accelerator-hours used at the partner.")
    spend: float = Field(0.0, description="Cost of those hours.")


class FederationLinkStatus(StatusModel):
    reachable: bool = Field(False, description="Whether the partner answered the last heartbeat.")
    last_heartbeat: str | None = Field(None, description="Last successful contact (RFC 3339).")
    capacity: list[PartnerCapacity] = Field(default_factory=list, description="Partner capacity.")
    jobs: list[str] = Field(default_factory=list, description="Local jobs placed there (ns/name).")
    spend: list[TenantSpend] = Field(
        default_factory=list,
        description="Spend by tenant: the totals of the link's spend records (ConfigMaps "
        "estuary-spend-<link>-<month> in Estuary's namespace), which budgets are checked against.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Conditions (metav1.Condition).",
        json_schema_extra=CONDITIONS_BY_TYPE,
    )


class FederationLink(ApiModel):
    """A partner cluster running Estuary, with the rules for sending it jobs."""

    api_version: Literal["estuary.dev/v1alpha1"] = Field("estuary.dev/v1alpha1", description="API version.")
    kind: Literal["FederationLink"] = Field("FederationLink", description="Kind.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: FederationLinkSpec = Field(description="Partner, credentials and burst rules.")
    status: FederationLinkStatus | None = Field(None, description="Reachability, capacity, spend.")
