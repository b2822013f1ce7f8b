"""pydantic models of Estuary's custom resources; the CRDs are generated from them."""

from estuary.api.aijob import AIJob, AIJobSpec, AIJobStatus, Placement, RunRecord, Verdict
from estuary.api.base import API_VERSION, GROUP, VERSION, Condition
from estuary.api.computepool import ComputePool, ComputePoolSpec, ComputePoolStatus, TenantUsage
from estuary.api.federationlink import FederationLink, FederationLinkSpec, FederationLinkStatus
from estuary.api.usageledger import UsageLedger, UsageLedgerSpec, UsageLedgerStatus, UsageRecord

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "AIJob",
    "AIJobSpec",
    "AIJobStatus",
    "ComputePool",
    "ComputePoolSpec",
    "ComputePoolStatus",
    "Condition",
    "FederationLink",
    "FederationLinkSpec",
    "FederationLinkStatus",
    "Placement",
    "RunRecord",
    "TenantUsage",
    "UsageLedger",
    "UsageLedgerSpec",
    "UsageLedgerStatus",
    "UsageRecord",
    "Verdict",
]
