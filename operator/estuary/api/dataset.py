"""A dataset an AIJob names (`spec.datasets`): where it lives and how big it is, so bursting can
add the time and cost of moving it (federation/datamove.py) and keep it where its residency says."""

from __future__ import annotations

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from estuary.api.base import ApiModel, Jurisdiction, Quantity, Residency


class Dataset(ApiModel):
    """A dataset the job reads: where it lives and how big it is (for data-aware bursting)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.residency == 'any' || self.residency == self.jurisdiction",
                    "message": "a dataset's residency must be 'any' or its own jurisdiction",
                    "fieldPath": ".residency",
                    "reason": "FieldValueInvalid",
                },
            ]
        },
    )

    name: str = Field(description="Dataset name (for messages).", min_length=1, max_length=63)
    cluster: str = Field(
        "local",
        max_length=63,
        description="Cluster holding it: 'local' (this one) or a FederationLink's cluster name.",
    )
    jurisdiction: Jurisdiction = Field(description="Where it is stored: hk, mainland or overseas.")
    size: Quantity = Field(description="Size in bytes (a quantity: 500Gi, 2Ti).")
    residency: Residency = Field(
        "any", description="Jurisdiction it must stay in (any: it may be moved anywhere)."
    )
