"""The parts of an AIJob that shape its worker pods: the pod template, checkpoints, extra env.

The template's PodSpec schema is the real one (`podspec.py`); what Estuary owns in it is refused
by CEL rules from `ownership.py`. The rules here span several fields of the spec (a checkpoint
volume must exist in the template, /dev/shm fits in the memory), so they sit on AIJobSpec.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from estuary.api import ownership
from estuary.api.base import ApiModel


def _cel(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """Schema extra holding CEL validation rules (from `ownership`)."""
    return {"x-kubernetes-validations": rules}


class EnvVar(ApiModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra=_cel(ownership.env_var_rules()),
    )

    name: str = Field(description="Environment variable name.", min_length=1)
    value: str = Field("", description="Value.")


class TemplateMetadata(ApiModel):
    labels: dict[str, str] | None = Field(
        None,
        max_length=64,
        description="Labels for every worker pod (merged with Estuary's estuary.dev/* labels).",
        json_schema_extra=_cel(ownership.metadata_key_rules("labels")),
    )
    annotations: dict[str, str] | None = Field(
        None,
        max_length=64,
        description="Annotations for every worker pod.",
        json_schema_extra=_cel(ownership.metadata_key_rules("annotations")),
    )


class WorkerTemplate(ApiModel):
    """What the job adds to its worker pods; Estuary owns the rest (docs/jobs.md, "Ownership")."""

    metadata: TemplateMetadata | None = Field(None, description="Labels and annotations of the workers.")
    spec: dict[str, Any] | None = Field(
        None,
        description="A Kubernetes PodSpec merged into every worker pod: volumes, initContainers, "
        "sidecar containers, imagePullSecrets, serviceAccountName, securityContext, nodeSelector and "
        "tolerations (which also filter the pools Estuary considers), ... The container named worker, "
        "if listed, adds volumeMounts, env, envFrom, securityContext, probes and the like to the "
        "training container. Fields Estuary owns are refused.",
        json_schema_extra={"x-estuary-pod-spec": True},
    )


class Checkpoint(ApiModel):
    """Where workers keep checkpoints: Estuary mounts the volume and says where, and which attempt."""

    volume: str = Field(
        description="Name of a volume in spec.template.spec.volumes (e.g. a PersistentVolumeClaim).",
        min_length=1,
        max_length=63,
    )
    mount_path: str = Field(
        "/checkpoints",
        description="Where the worker container sees it; every worker gets ESTUARY_CHECKPOINT_DIR=<this>.",
        pattern=r"^/",
        max_length=1024,
    )
    sub_path: str | None = Field(
        None,
        description="Sub-path of the volume to mount (e.g. one directory per job on a shared PVC).",
        max_length=1024,
    )


_WORKER_MOUNTS = (
    "!has(self.template) || !has(self.template.spec) || !has(self.template.spec.containers) || "
    "self.template.spec.containers.all(c, c.name != 'worker' || !has(c.volumeMounts) || "
    "c.volumeMounts.all(m, {}))"
)

# CEL rules on AIJobSpec that relate the template to other fields of the spec.
TEMPLATE_RULES: list[dict[str, Any]] = [
    {
        "rule": "!has(self.checkpoint) || (has(self.template) && has(self.template.spec) && "
        "has(self.template.spec.volumes) && "
        "self.template.spec.volumes.exists(v, v.name == self.checkpoint.volume))",
        "message": "spec.checkpoint.volume must name a volume in spec.template.spec.volumes",
        "fieldPath": ".checkpoint.volume",
        "reason": "FieldValueInvalid",
    },
    {
        "rule": _WORKER_MOUNTS.format("!has(self.checkpoint) || m.mountPath != self.checkpoint.mountPath"),
        "message": "the worker container must not mount anything at spec.checkpoint.mountPath: "
        "Estuary mounts the checkpoint volume there",
        "fieldPath": ".template.spec.containers",
        "reason": "FieldValueForbidden",
    },
    {
        "rule": _WORKER_MOUNTS.format("!has(self.shmSize) || m.mountPath != '/dev/shm'"),
        "message": "the worker container must not mount anything at /dev/shm when "
        "spec.shmSize is set: Estuary mounts a memory-backed volume there",
        "fieldPath": ".template.spec.containers",
        "reason": "FieldValueForbidden",
    },
    {
        "rule": "!has(self.shmSize) || (isQuantity(string(self.shmSize)) && "
        "quantity(string(self.shmSize)).isLessThan(quantity(string(self.resources.memory))))",
        "message": "spec.shmSize must be a quantity below spec.resources.memory: /dev/shm is "
        "memory, and its pages count against the worker's memory limit",
        "fieldPath": ".shmSize",
        "reason": "FieldValueInvalid",
    },
]
