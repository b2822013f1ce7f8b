"""The FederationLink custom resource: a partner cluster Estuary may burst jobs to.

Two kinds of partner (`spec.mode`): `Estuary`, a cluster that runs Estuary too (a copy of the
job is created there as an AIJob, its own operator runs it), and `Agentless`, a plain namespace at
a provider that will not install Estuary (the origin creates the worker pods there itself; see
docs/federation.md, "Agentless partners").
"""

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
    Toleration,
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
    max_data_seconds: int | None = Field(
        None,
        ge=0,
        description="Refuse a job whose datasets would take longer than this to move there "
        "(empty: no limit); docs/federation.md shows when moving data pays.",
    )


class LinkLimits(ApiModel):
    max_jobs: int | None = Field(None, ge=0, description="Most jobs placed at the partner at once.")
    max_accelerators: int | None = Field(None, ge=0, description="Most accelerators used there.")


class SigningKeyRef(ApiModel):
    name: str = Field(description="Name of a Secret in Estuary's own namespace.", min_length=1)
    key: str = Field("signing-key", description="Key in the Secret holding the signing key.")


class ProviderOffer(ApiModel):
    """One accelerator type an agentless provider offers in the namespace."""

    vendor: str = Field(description="Vendor profile key, e.g. nvidia.", min_length=1, max_length=63)
    model: str = Field(description="Accelerator model, e.g. H800.", min_length=1, max_length=63)
    resource_name: str | None = Field(
        None, description="Extended resource the provider's nodes advertise (default: the vendor's)."
    )
    accelerators: int | None = Field(
        None,
        ge=0,
        description="Most accelerators of this type the link may use there "
        "(default: the namespace's ResourceQuota for the resource).",
    )
    node_selector: dict[str, str] | None = Field(
        None, description="Node labels the provider's nodes of this type carry."
    )
    tolerations: list[Toleration] | None = Field(None, description="Taints of those nodes to tolerate.")
    relative_throughput: float = Field(1.0, gt=0, description="Speed relative to the reference type.")


class ProviderSpec(ApiModel):
    """What an agentless provider offers in `remoteNamespace`, and how to submit there."""

    offers: list[ProviderOffer] = Field(
        default_factory=list,
        max_length=32,
        description="Accelerator types offered; empty: discovered from the namespace's ResourceQuota "
        "(vendor from the resource name, any model).",
    )
    discover: bool = Field(
        True,
        description="Read the namespace's ResourceQuota (and the nodes, where allowed) for capacity.",
    )
    kueue_queue: str | None = Field(
        None,
        max_length=63,
        description="The provider's Kueue LocalQueue: pods are labelled for it and "
        "submitted as one pod group, so the provider's own admission applies.",
    )
    service_account_name: str = Field(
        "default",
        min_length=1,
        max_length=253,
        description="Service account the workers run as there; it must be allowed to get "
        "ConfigMaps in the namespace (the fence sidecar reads its lease).",
    )
    fence_image: str | None = Field(
        None, description="Image with the `estuary fence` sidecar (default: the operator's own image)."
    )


class NetworkSpec(ApiModel):
    """The path to the partner, for data-aware placement."""

    egress_cost_per_gb: float = Field(
        0.0,
        ge=0,
        alias="egressCostPerGB",
        description="Price of moving one GB (10^9 bytes) to or from there.",
    )
    bandwidth_mbps: float | None = Field(
        None, gt=0, description="Declared bandwidth (e.g. a dedicated line); default: as measured."
    )
    probe_seconds: int = Field(
        600, ge=30, le=86400, description="How often the heartbeat measures bandwidth."
    )


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
                {
                    "rule": "self.mode != 'Agentless' || has(self.provider)",
                    "message": "spec.provider is required when spec.mode is Agentless",
                    "fieldPath": ".provider",
                    "reason": "FieldValueRequired",
                },
                {
                    "rule": "self.mode != 'Estuary' || has(self.signingKeySecretRef)",
                    "message": "spec.signingKeySecretRef is required when spec.mode is Estuary: the "
                    "partner treats only copies signed with a key it knows as federation copies",
                    "fieldPath": ".signingKeySecretRef",
                    "reason": "FieldValueRequired",
                },
            ]
        },
    )

    mode: Literal["Estuary", "Agentless"] = Field(
        "Estuary",
        description="Estuary: the partner runs Estuary (copies are AIJobs there). Agentless: a "
        "plain namespace at a provider; Estuary creates the worker pods there itself.",
    )
    kubeconfig_secret_ref: SecretKeyRef = Field(
        description="Secret with the partner's kubeconfig; never logged or copied into status."
    )
    signing_key_secret_ref: SigningKeyRef | None = Field(
        None,
        description="Estuary mode: the key copies are signed with; the partner holds the same key "
        "under this cluster's name (see docs/federation.md).",
    )
    provider: ProviderSpec | None = Field(None, description="Agentless mode: what the provider offers.")
    fencing: bool = Field(
        False,
        description="Estuary mode: ask the partner to run the fence beside the copy's workers, so "
        "they stop when the lease lapses even if the partner's control plane is lost (its workers' "
        "service account must be allowed to get AIJobs there). Agentless links are always fenced.",
    )
    cluster_name: str | None = Field(
        None,
        max_length=63,
        description="The partner's cluster id, as datasets name it (default: the link's name).",
    )
    network: NetworkSpec = Field(default_factory=NetworkSpec, description="The path to the partner.")
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


class NetworkStatus(StatusModel):
    rtt_milliseconds: float | None = Field(None, description="Round-trip time to the partner's API.")
    bandwidth_mbps: float | None = Field(None, description="Bandwidth used for data-movement estimates.")
    source: str | None = Field(None, description="measured or declared.")
    measured_at: str | None = Field(None, description="When bandwidth was last measured (RFC 3339).")


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
    network: NetworkStatus | None = Field(None, description="Measured round-trip time and bandwidth.")


class FederationLink(ApiModel):
    """A partner cluster (running Estuary, or an agentless namespace), with the rules for sending it jobs."""

    api_version: Literal["estuary.dev/v1alpha1"] = Field("estuary.dev/v1alpha1", description="API version.")
    kind: Literal["FederationLink"] = Field("FederationLink", description="Kind.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: FederationLinkSpec = Field(description="Partner, credentials and burst rules.")
    status: FederationLinkStatus | None = Field(None, description="Reachability, capacity, spend.")
