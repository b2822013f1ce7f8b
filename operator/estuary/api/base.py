"""Shared pieces of the CRD models: camelCase aliases, Kubernetes-style small types.

Every CRD schema in `crds/` is generated from these models (see `crdgen.py`), so the description
of a field lives in exactly one place: its `Field(description=...)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "estuary.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

Jurisdiction = Literal["hk", "mainland", "overseas"]
Residency = Literal["any", "hk", "mainland", "overseas"]

# A Kubernetes quantity ("8", "500m", "64Gi", or a bare number): int-or-string in the schema.
Quantity = Annotated[
    int | str,
    Field(json_schema_extra={"x-kubernetes-int-or-string": True}),
]


class ApiModel(BaseModel):
    """Base of every CRD model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_wire(self) -> dict[str, Any]:
        """The object as the API server expects it (camelCase, no unset optional fields)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class StatusModel(ApiModel):
    """Status models tolerate fields written by newer operator versions."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Toleration(ApiModel):
    key: str | None = Field(
        None, description="Taint key to tolerate; empty with operator Exists tolerates every taint."
    )
    operator: Literal["Equal", "Exists"] = Field("Equal", description="Equal or Exists.")
    value: str | None = Field(None, description="Taint value to match (operator Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect to tolerate; empty tolerates every effect."
    )


class Condition(StatusModel):
    type: str = Field(description="Condition type, e.g. Admitted, Running, Finished, Reachable.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase machine-readable reason.")
    message: str = Field("", description="What happened and what to do about it.")
    last_transition_time: str | None = Field(None, description="When status last changed (RFC 3339).")


def set_condition(
    conditions: Sequence[Condition], type_: str, ok: bool, reason: str, message: str, now: str
) -> list[Condition]:
    """`conditions` with one condition set; its lastTransitionTime stays when its status does not
    change. Sorted by type, so rewriting the same conditions writes the same list."""
    value: Literal["True", "False"] = "True" if ok else "False"
    kept = [c for c in conditions if c.type != type_]
    old = next((c for c in conditions if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == value else now
    new = Condition(
        type=type_, status=value, reason=reason, message=message, last_transition_time=since or now
    )
    return sorted([*kept, new], key=lambda c: c.type)


class SecretKeyRef(ApiModel):
    name: str = Field(description="Name of a Secret in Estuary's own namespace.", min_length=1)
    key: str = Field("kubeconfig", description="Key in the Secret holding the kubeconfig.")
