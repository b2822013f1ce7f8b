"""The AIJob custom resource: one distributed training job, as its author writes it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from estuary.api.base import (
    CONDITIONS_BY_TYPE,
    ApiModel,
    Condition,
    Quantity,
    Residency,
    StatusModel,
    Toleration,
)
from estuary.api.dataset import Dataset
from estuary.api.hold import Hold
from estuary.api.placement import Placement as Placement  # where it was first defined
from estuary.api.template import TEMPLATE_RULES, Checkpoint, EnvVar, WorkerTemplate

# No `mpi`: mpirun starts its ranks on other nodes through ssh or a resource manager, which a
# worker pod has neither of; an MPI program runs as `custom` with its own bootstrap (docs/jobs.md).
Framework = Literal["pytorch", "deepspeed", "mindspore", "jax", "custom"]


class Phase(StrEnum):
    """Where an AIJob is in its life (`status.phase`); a job without a phase is new."""

    QUEUED = "Queued"  # waiting for the scheduler (also: being released after a failure or eviction)
    ADMITTED = "Admitted"  # placed; its workers are being created (or its copy, at a partner)
    RUNNING = "Running"  # every worker Running
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"  # spec.suspend: holds nothing


# The two sets every part of the operator reasons with, defined once.
FINISHED: frozenset[Phase] = frozenset({Phase.SUCCEEDED, Phase.FAILED})  # for good: never runs again
HOLDING: frozenset[Phase] = frozenset({Phase.ADMITTED, Phase.RUNNING})  # the gang should be running

# Condition types of `status.conditions`; who sets which is in docs/architecture.md.
ADMITTED_CONDITION = "Admitted"
RUNNING_CONDITION = "Running"
SUCCEEDED_CONDITION = "Succeeded"  # `kubectl wait --for=condition=Succeeded aij/<name>`
FAILED_CONDITION = "Failed"
BURST_CONDITION = "Burst"  # federation: whether the job may burst to a partner, and why not


class AcceleratorChoice(ApiModel):
    """One accelerator type the job's code runs on, with the image built for it."""

    vendor: str = Field(
        description="Vendor profile key, e.g. nvidia, huawei, cambricon, hygon.", min_length=1, max_length=63
    )
    model: str | None = Field(
        None,
        description="Accelerator model, e.g. H800 or Ascend910B; empty accepts any model of the vendor.",
        max_length=63,
    )
    image: str = Field(
        description="Container image for this accelerator type.",
        min_length=1,
        json_schema_extra={"pattern": r"^\S+$"},  # no blanks: the API server refuses them in a pod
    )
    relative_throughput: float | None = Field(
        None,
        gt=0,
        description="Optional hint: this job's speed on this type relative to the "
        "reference (overrides the pool's relativeThroughput).",
    )


class WorkerResources(ApiModel):
    cpu: Quantity = Field("4", description="CPU per worker (request = limit).")
    memory: Quantity = Field("16Gi", description="Memory per worker (request = limit).")


class Elastic(ApiModel):
    """Elastic range: the job may start with fewer workers when the full gang does not fit."""

    min_workers: int = Field(ge=1, description="Fewest workers the job may run with.")
    max_workers: int = Field(ge=1, description="Most workers the job may run with.")


class RestartPolicy(ApiModel):
    max_restarts: int = Field(
        3, ge=0, le=100, description="Gang restarts after a worker fails, before the job is Failed."
    )
    backoff_seconds: int = Field(
        10, ge=0, le=3600, description="Delay before the first restart; doubles with each restart."
    )


class Preemption(ApiModel):
    preemptible: bool = Field(
        True,
        description="Whether quota reclaim or a higher-priority job may evict this job (always whole gangs).",
    )
    grace_period_seconds: int = Field(
        30, ge=0, le=3600, description="Time workers get to checkpoint when evicted."
    )
    time_sharing: bool = Field(False, description="Take turns by attained service (docs/scheduling.md §12).")


class Burst(ApiModel):
    enabled: bool = Field(
        False, description="Whether the job may run at a partner cluster (FederationLink) instead of waiting."
    )
    after_seconds: int | None = Field(
        None, ge=0, description="Burst once queued this long (default: the link's threshold)."
    )


# Pools match vendor and model ignoring case, so the duplicate rule does too.
_SAME_TYPE = "(has(b.model) ? b.model.lowerAscii() : '') == (has(a.model) ? a.model.lowerAscii() : '')"


class AIJobSpec(ApiModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.elastic) || self.elastic.minWorkers <= self.elastic.maxWorkers",
                    "message": "spec.elastic.minWorkers must not exceed spec.elastic.maxWorkers",
                    "fieldPath": ".elastic.minWorkers",
                    "reason": "FieldValueInvalid",
                },
                {
                    "rule": "!has(self.elastic) || (self.workers >= self.elastic.minWorkers && "
                    "self.workers <= self.elastic.maxWorkers)",
                    "message": "spec.workers must lie within spec.elastic.minWorkers..maxWorkers",
                    "fieldPath": ".workers",
                    "reason": "FieldValueInvalid",
                },
                {
                    "rule": "self.accelerators.all(a, self.accelerators.filter(b, "
                    f"b.vendor.lowerAscii() == a.vendor.lowerAscii() && {_SAME_TYPE}).size() == 1)",
                    "message": "spec.accelerators lists the same vendor and model twice (in any case)",
                    "fieldPath": ".accelerators",
                    "reason": "FieldValueDuplicate",
                },
                *TEMPLATE_RULES,
                {
                    "rule": "self.framework != 'custom' || (has(self.command) && size(self.command) > 0)",
                    "message": "spec.command is required when spec.framework is custom",
                    "fieldPath": ".command",
                    "reason": "FieldValueRequired",
                },
            ]
        },
    )

    framework: Framework = Field(
        "pytorch",
        description="Launcher: pytorch (torchrun), deepspeed (through torchrun), "
        "mindspore (msrun), jax (your script, with JAX's coordinator variables), or custom (your "
        "command as is).",
    )
    workers: int = Field(
        1, ge=1, le=1024, description="Worker pods (nodes of the gang); all start at once or none does."
    )
    accelerators_per_worker: int = Field(
        1, ge=0, le=64, description="Whole accelerators per worker; one training process each."
    )
    accelerators: list[AcceleratorChoice] = Field(
        min_length=1,
        max_length=16,
        description="Accepted accelerator types in order of preference, "
        "each with its image; Estuary runs the job on the one that finishes it soonest.",
    )
    resources: WorkerResources = Field(
        default_factory=WorkerResources,
        description="CPU and memory per worker.",
    )
    command: list[str] | None = Field(None, description="Entrypoint; default depends on framework.")
    args: list[str] | None = Field(None, description="Arguments, e.g. the training script.")
    env: list[EnvVar] | None = Field(
        None,
        max_length=256,
        description="Extra environment for every worker (values only; valueFrom goes in the template's "
        "worker container).",
    )
    template: WorkerTemplate | None = Field(
        None,
        description="Pod template merged into every worker pod (see docs/jobs.md for what Estuary owns).",
    )
    shm_size: Quantity | None = Field(
        None,
        description="Size of a memory-backed /dev/shm in every worker (e.g. 16Gi, for DataLoader "
        "workers); it is part of spec.resources.memory, not added to it.",
    )
    checkpoint: Checkpoint | None = Field(
        None,
        description="Checkpoint volume: mounted into every worker, which gets ESTUARY_CHECKPOINT_DIR "
        "and ESTUARY_ATTEMPT to resume from.",
    )
    priority: int = Field(0, ge=-1000, le=1000, description="Higher runs first within a tenant.")
    residency: Residency = Field(
        "any",
        description="Jurisdiction the job's data must stay in: "
        "any, hk, mainland or overseas. Every placement honours it.",
    )
    burst: Burst = Field(
        default_factory=Burst,
        description="Whether and when the job may burst to a partner cluster.",
    )
    restart_policy: RestartPolicy = Field(
        default_factory=RestartPolicy,
        description="Gang restarts on worker failure.",
    )
    elastic: Elastic | None = Field(None, description="Optional elastic worker range.")
    preemption: Preemption = Field(
        default_factory=Preemption,
        description="Eviction settings.",
    )
    scheduling_timeout_seconds: int = Field(
        300,
        ge=10,
        le=86400,
        description="Release and requeue the gang if its workers stay unschedulable this long.",
    )
    suspend: bool = Field(False, description="Suspend: stop the workers and hold nothing.")
    ttl_seconds_after_finished: int | None = Field(
        None, ge=0, description="Delete the job this long after it Succeeded or Failed."
    )
    master_port: int = Field(29500, ge=1024, le=65535, description="Rendezvous port on worker 0.")
    node_selector: dict[str, str] | None = Field(
        None, description="Extra node labels workers need (merged with spec.template.spec.nodeSelector)."
    )
    tolerations: list[Toleration] | None = Field(
        None, description="Extra taints workers tolerate (added to spec.template.spec.tolerations)."
    )
    estimated_duration_seconds: int | None = Field(
        None, gt=0, description="Optional runtime estimate on a throughput-1.0 accelerator."
    )
    datasets: list[Dataset] | None = Field(
        None,
        max_length=32,
        description="Datasets the job reads; bursting adds the time and cost of moving them.",
    )

    @property
    def pod_spec(self) -> dict[str, Any]:
        """The template's pod spec (empty when the job has none)."""
        return (self.template.spec if self.template else None) or {}

    def pool_node_selector(self) -> dict[str, str]:
        """Node labels a worker's node must carry: spec.nodeSelector and the template's."""
        return {**(self.pod_spec.get("nodeSelector") or {}), **(self.node_selector or {})}

    def pool_tolerations(self) -> list[dict[str, Any]]:
        """Taints a worker tolerates: the template's, then spec.tolerations."""
        return list(self.pod_spec.get("tolerations") or []) + [t.to_wire() for t in self.tolerations or []]


class RemoteCopy(StatusModel):
    """Origin side: where the copy of a burst job lives (see docs/federation.md)."""

    link: str = Field(description="FederationLink the job was sent through.")
    namespace: str = Field(description="Namespace of the copy in the partner cluster.")
    name: str = Field(description="Name of the copy in the partner cluster.")
    uid: str | None = Field(None, description="UID of the copy, once the partner created it.")
    lease_seconds: int = Field(120, description="Lease the copy was created with.")


class LeaseObservation(StatusModel):
    """Partner side: the last lease renewal of a copy this cluster observed, on its own clock."""

    token: str | None = Field(None, description="Renewal token (annotation estuary.dev/lease-renew).")
    observed_at: str | None = Field(
        None, description="When this cluster credits that renewal (RFC 3339, this cluster's clock)."
    )


class Verdict(StatusModel):
    """How one accepted accelerator type (one pool) fares for a waiting job, as the scheduler sees it.

    Written by the operator so that a person with read access to the job alone (no cluster-wide
    rights) can see why it waits on each type: `kubectl estuary explain` reads only this object.
    """

    pool: str = Field(description="ComputePool offering the type.")
    vendor: str = Field(description="Accelerator vendor.")
    model: str = Field(description="Accelerator model.")
    fits: bool = Field(description="Whether the job would fit in this pool now (quota, capacity, nodes).")
    reason: str | None = Field(None, description="Why not, machine-readable (e.g. QuotaExceeded).")
    message: str = Field("", description="Why not, with the numbers.")
    relative_runtime: float = Field(
        1.0, description="Expected runtime on this type relative to the reference type (lower is sooner)."
    )


class RunRecord(StatusModel):
    """One gang attempt's hold on accelerators: the basis of the job's usage (accelerator-hours).

    Opened when the gang is admitted (its accelerators are the tenant's from then on) and closed
    when it ends or is released. The operator also copies each record into the tenant's
    UsageLedger, which outlives the job (see docs/usage.md).
    """

    attempt: int = Field(description="Gang attempt (status.attempt when admitted).")
    cluster: str = Field(description="Cluster the attempt ran in ('local' or a FederationLink name).")
    pool: str = Field(description="ComputePool.")
    vendor: str = Field(description="Accelerator vendor.")
    model: str = Field(description="Accelerator model.")
    accelerators: int = Field(description="Accelerators held: workers x acceleratorsPerWorker.")
    start_time: str = Field(description="When the accelerators were allocated (admission, RFC 3339).")
    end_time: str | None = Field(None, description="When they were released; empty while the attempt runs.")
    outcome: str | None = Field(
        None, description="How the attempt ended: Succeeded, Failed, or the reason it was released."
    )
    tenant: str | None = Field(None, description="Tenant whose quota the attempt used (fixed at admission).")


class AIJobStatus(StatusModel):
    phase: Phase | None = Field(
        None, description="Queued, Admitted, Running, Succeeded, Failed or Suspended."
    )
    placement: Placement | None = Field(None, description="Where the job runs.")
    accelerator: str | None = Field(None, description="vendor/model the job runs on (for kubectl get).")
    queue_position: int | None = Field(None, description="Place in the queue while Queued.")
    reason: str | None = Field(None, description="Why the job waits or ended (machine-readable).")
    message: str | None = Field(None, description="Why the job waits or ended, with the numbers.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Conditions (metav1.Condition).",
        json_schema_extra=CONDITIONS_BY_TYPE,
    )
    restarts: int = Field(0, description="Gang restarts after worker failures.")
    attained_service: float | None = Field(None, ge=0, description="Accelerator-hours x type speed so far.")
    attempt: int = Field(0, description="Current gang attempt (restarts and requeues).")
    queued_at: str | None = Field(None, description="When the job (re)entered the queue.")
    retry_after: str | None = Field(
        None, description="Not before this time will a restarting or evicted gang be admitted again."
    )
    admitted_at: str | None = Field(None, description="When the current gang was admitted.")
    start_time: str | None = Field(None, description="When all workers were first Running.")
    completion_time: str | None = Field(None, description="When the job Succeeded or Failed.")
    observed_generation: int | None = Field(None, description="Spec generation last acted on.")
    hold: Hold | None = Field(
        None, description="Why the job is kept out of the queue until its spec changes (or a pod goes)."
    )
    remote: RemoteCopy | None = Field(
        None, description="Origin side: the copy of this job at a partner cluster, while it runs there."
    )
    lease: LeaseObservation | None = Field(
        None,
        description="Partner side (a copy sent by another "
        "cluster): the origin's last lease renewal seen here.",
    )
    verdicts: list[Verdict] | None = Field(
        None,
        description="While Queued: how the job fares on each accepted type, in the job's order of "
        "preference.",
    )
    runs: list[RunRecord] = Field(
        default_factory=list,
        description="Accelerator use of the most recent attempts, oldest first (the last 20).",
    )


class AIJob(ApiModel):
    """A distributed training job; Estuary queues it and runs all its workers at once."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.metadata.name.size() <= 50 && "
                    "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
                    "message": "metadata.name must be a DNS label of at most 50 characters that starts "
                    "with a letter: it names the job's worker pods and Service",
                    "reason": "FieldValueInvalid",
                },
            ]
        },
    )

    api_version: Literal["estuary.dev/v1alpha1"] = Field("estuary.dev/v1alpha1", description="API version.")
    kind: Literal["AIJob"] = Field("AIJob", description="Kind.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: AIJobSpec = Field(description="What the job needs.")
    status: AIJobStatus | None = Field(None, description="What Estuary observed and decided.")
