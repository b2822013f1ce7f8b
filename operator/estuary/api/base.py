"""Shared pieces of the CRD models: camelCase aliases, Kubernetes-style small types.

Every CRD schema in `crds/` is generated from these models (see `crdgen.py`), so the description
of a field lives in exactly one place: its `Field(description=...)`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "estuary.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Label keys and values as the API server checks them (a taint key is a label key).
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"

Jurisdiction = Literal["hk", "mainland", "overseas"]
Residency = Literal["any", "hk", "mainland", "overseas"]

# A Kubernetes quantity ("8", "500m", "64Gi", or a bare number): int-or-string in the schema, and
# refused by the API server (CEL's quantity library) unless it parses and is not negative.
# state/codec.py checks again, for objects stored before this rule.
Quantity = Annotated[
    int | str,
    Field(
        json_schema_extra={
            "x-kubernetes-int-or-string": True,
            "x-kubernetes-validations": [
                {
                    "rule": "type(self) == int ? self >= 0 : "
                    "isQuantity(self) && !quantity(self).isLessThan(quantity('0'))",
                    "message": "must be a non-negative Kubernetes quantity, e.g. 4, 500m or 16Gi",
                    "reason": "FieldValueInvalid",
                }
            ],
            "maxLength": 64,
        }
    ),
]


def with_rules(*rules: dict[str, str]) -> ConfigDict:
    """The model config of an `ApiModel` whose schema carries these CEL rules
    (`x-kubernetes-validations`: rule, message, fieldPath, reason)."""
    return ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={"x-kubernetes-validations": [dict(rule) for rule in rules]},
    )


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
    """What the API server requires of a pod's toleration, checked when the object is applied (a
    ComputePool's or an AIJob's tolerations are copied into every worker pod)."""

    model_config = with_rules(
        {
            "rule": "self.operator != 'Exists' || !has(self.value) || self.value == ''",
            "message": "value must be empty when operator is Exists",
            "fieldPath": ".value",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": "self.operator == 'Exists' || (has(self.key) && self.key != '')",
            "message": "operator must be Exists when key is empty (it then tolerates every taint)",
            "fieldPath": ".operator",
            "reason": "FieldValueInvalid",
        },
    )

    key: str | None = Field(
        None,
        description="Taint key to tolerate (a label key); empty with operator Exists tolerates every taint.",
        json_schema_extra={"maxLength": 316, "pattern": LABEL_KEY_PATTERN},
    )
    operator: Literal["Equal", "Exists"] = Field("Equal", description="Equal or Exists.")
    value: str | None = Field(
        None,
        description="Taint value to match (operator Equal; a label value).",
        json_schema_extra={"maxLength": 63, "pattern": LABEL_VALUE_PATTERN},
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect to tolerate; empty tolerates every effect."
    )


# metav1.Condition's rules (k8s.io/apimachinery/pkg/apis/meta/v1/types.go), so `kubectl wait`,
# Argo CD and other generic tools read Estuary's conditions as they read any other's.
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
CONDITIONS_BY_TYPE: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


def _required_date_time(schema: dict[str, Any]) -> None:
    """A required RFC 3339 time in the schema, though a missing one reads as "" here."""
    schema.pop("default", None)
    schema["format"] = "date-time"


# Read leniently (a status written by an older operator still parses); the CRD schema requires what
# metav1.Condition requires.
class Condition(StatusModel):
    """One condition, in the shape of metav1.Condition."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        json_schema_extra={"required": ["type", "status", "lastTransitionTime", "reason", "message"]},
    )

    # Constraints are in the schema only (json_schema_extra): reading a status never fails on them.
    type: str = Field(
        description="Condition type: Admitted, Running, Succeeded, Failed, Burst (AIJob); Ready, "
        "Overlap (ComputePool); Ready, Accepting (FederationLink).",
        json_schema_extra={"maxLength": 316, "pattern": CONDITION_TYPE_PATTERN},
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        None,
        description="The .metadata.generation the condition was set from.",
        json_schema_extra={"minimum": 0},
    )
    last_transition_time: str = Field(
        "", description="When status last changed (RFC 3339).", json_schema_extra=_required_date_time
    )
    reason: str = Field(
        description="CamelCase machine-readable reason.",
        json_schema_extra={"maxLength": 1024, "pattern": CONDITION_REASON_PATTERN},
    )
    message: str = Field(
        "", description="What happened and what to do about it.", json_schema_extra={"maxLength": 32768}
    )


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    ok: bool,
    reason: str,
    message: str,
    now: str,
    generation: int | None = None,
) -> list[Condition]:
    """`conditions` with one condition set; its lastTransitionTime stays when its status does not
    change. Sorted by type, so rewriting the same conditions writes the same list."""
    value: Literal["True", "False"] = "True" if ok else "False"
    kept = [c for c in conditions if c.type != type_]
    old = next((c for c in conditions if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == value else now
    fields: dict[str, Any] = {
        "type": type_,
        "status": value,
        "reason": condition_reason(reason),
        "message": message,
        "last_transition_time": since or now,
    }
    generation = generation if generation is not None else (old.observed_generation if old else None)
    if generation is not None:  # never a null in the list: the API server would drop it
        fields["observed_generation"] = generation
    new = Condition(**fields)
    return sorted([*kept, new], key=lambda c: c.type)


def condition_reason(text: str) -> str:
    """`text` as a valid condition reason (metav1.Condition's pattern): other characters dropped."""
    reason = re.sub(r"[^A-Za-z0-9_,:]", "", text).lstrip("0123456789_,:").rstrip(",:")
    return reason or "Unknown"


def drop_condition(conditions: Sequence[Condition], type_: str) -> list[Condition]:
    return [c for c in conditions if c.type != type_]


def stamp_generation(conditions: Sequence[Condition], generation: int | None) -> list[Condition]:
    """Every condition marked as set from `generation` (the controller writes the whole list
    having observed that generation of the spec)."""
    if generation is None:
        return list(conditions)
    return [c.model_copy(update={"observed_generation": generation}) for c in conditions]


class SecretKeyRef(ApiModel):
    name: str = Field(description="Name of a Secret in Estuary's own namespace.", min_length=1)
    key: str = Field("kubeconfig", description="Key in the Secret holding the kubeconfig.")
