"""The ComputePool custom resource: one homogeneous set of accelerator nodes and its quotas."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from estuary.api.base import CONDITIONS_BY_TYPE, ApiModel, Condition, StatusModel, Toleration, with_rules

_IMMUTABLE: dict[str, Any] = {
    "x-kubernetes-validations": [
        {"rule": "self == oldSelf", "message": "is immutable: create a new ComputePool instead"}
    ]
}
_KEYED_BY_TENANT: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["tenant"]}


class TenantQuotaSpec(ApiModel):
    """A tenant's share of this pool, in accelerators."""

    model_config = with_rules(
        {
            "rule": "!has(self.lendingLimit) || self.lendingLimit <= self.nominal",
            "message": "lendingLimit must not exceed nominal",
            "fieldPath": ".lendingLimit",
            "reason": "FieldValueInvalid",
        },
    )

    tenant: str = Field(
        description="Tenant (the estuary.dev/tenant label of its namespaces); '*' "
        "applies to tenants not listed.",
        min_length=1,
        max_length=63,
    )
    nominal: int = Field(0, ge=0, description="Accelerators guaranteed to the tenant.")
    borrowing_limit: int | None = Field(
        None,
        ge=0,
        description="How many accelerators above nominal "
        "the tenant may borrow from others' idle quota (empty: no "
        "limit).",
    )
    lending_limit: int | None = Field(
        None, ge=0, description="How much of its idle nominal quota others may borrow (empty: all)."
    )
    weight: float = Field(1.0, gt=0, description="Fair-share weight for borrowed capacity.")


class ComputePoolSpec(ApiModel):
    vendor: str = Field(
        description="Vendor profile key, e.g. nvidia or huawei (immutable).",
        min_length=1,
        max_length=63,
        json_schema_extra=_IMMUTABLE,
    )
    model: str = Field(
        description="Accelerator model, e.g. H800 or Ascend910B (immutable).",
        min_length=1,
        max_length=63,
        json_schema_extra=_IMMUTABLE,
    )
    resource_name: str | None = Field(
        None,
        description="Extended resource name; empty: the vendor "
        "profile's default (e.g. huawei.com/Ascend910).",
    )
    node_selector: dict[str, str] = Field(description="Labels that select this pool's nodes.", min_length=1)
    tolerations: list[Toleration] | None = Field(
        None, description="Taints of these nodes that workers tolerate."
    )
    relative_throughput: float = Field(
        1.0,
        gt=0,
        description="Speed of one accelerator relative to "
        "the reference type, used to pick the type that finishes "
        "a job soonest.",
    )
    cost_per_accelerator_hour: float = Field(0.0, ge=0, description="Cost of one accelerator-hour.")
    quotas: list[TenantQuotaSpec] | None = Field(
        None,
        max_length=256,
        description="Per-tenant quotas; empty: no quota enforced in this pool.",
        json_schema_extra=_KEYED_BY_TENANT,
    )


class TenantUsage(StatusModel):
    tenant: str = Field(description="Tenant.")
    used: int = Field(0, description="Accelerators its running jobs hold.")
    nominal: int = Field(0, description="Its nominal quota.")
    borrowed: int = Field(0, description="Accelerators used above nominal.")
    lent: int = Field(0, description="Its idle nominal quota used by others.")


class ComputePoolStatus(StatusModel):
    resource_name: str | None = Field(None, description="Extended resource name in effect.")
    nodes: int = Field(0, description="Ready nodes the selector picks.")
    capacity: int = Field(0, description="Accelerators on ready nodes.")
    healthy: int = Field(0, description="Accelerators reported healthy.")
    allocated: int = Field(0, description="Accelerators held by jobs and other pods.")
    free: int = Field(0, description="Healthy accelerators not allocated.")
    tflops_per_accelerator: float | None = Field(
        None,
        description="Peak dense FP16/BF16 TFLOPS of one accelerator of this model, from the vendor "
        "profiles (empty when the model has no figure there).",
    )
    capacity_pflops: float | None = Field(
        None, description="Capacity in PFLOPS (dense FP16/BF16): capacity x tflopsPerAccelerator / 1000."
    )
    allocated_pflops: float | None = Field(None, description="Allocated accelerators in PFLOPS.")
    free_pflops: float | None = Field(None, description="Free accelerators in PFLOPS.")
    tenants: list[TenantUsage] = Field(default_factory=list, description="Per-tenant usage.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Conditions (metav1.Condition).",
        json_schema_extra=CONDITIONS_BY_TYPE,
    )
    observed_generation: int | None = Field(None, description="Spec generation last acted on.")


class ComputePool(ApiModel):
    """A homogeneous set of accelerator nodes (one vendor and model) with per-tenant quotas."""

    model_config = with_rules(
        {
            "rule": "self.metadata.name.size() <= 63",
            "message": "metadata.name must be at most 63 characters: it is the value of the "
            "estuary.dev/pool label on every worker pod placed on the pool",
            "reason": "FieldValueInvalid",
        },
    )

    api_version: Literal["estuary.dev/v1alpha1"] = Field("estuary.dev/v1alpha1", description="API version.")
    kind: Literal["ComputePool"] = Field("ComputePool", description="Kind.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: ComputePoolSpec = Field(description="Nodes, speed, cost and quotas.")
    status: ComputePoolStatus | None = Field(None, description="Observed capacity and usage.")
