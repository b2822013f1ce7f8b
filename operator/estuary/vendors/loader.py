"""Load and validate vendor profiles: the shipped data file plus any a platform team adds.

Code asks `profiles()[key]` for a vendor's facts; no vendor fact is written anywhere else.
"""

from __future__ import annotations

import os
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

ENV_EXTRA = "ESTUARY_VENDOR_PROFILES"
_RESOURCE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9][-A-Za-z0-9_.]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AcceleratorModel(BaseModel):
    """Peak dense throughput of one accelerator model, each figure with where it comes from."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    fp16_tflops: float | None = Field(None, gt=0)
    bf16_tflops: float | None = Field(None, gt=0)
    fp8_tflops: float | None = Field(None, gt=0)
    fp32_tflops: float | None = Field(None, gt=0)
    source_kind: Literal["vendor", "reported", "none"]
    source: str | None = Field(None, pattern=r"^https://")
    note: str = ""

    @model_validator(mode="after")
    def _figures_have_a_source(self) -> AcceleratorModel:
        figures = (self.fp16_tflops, self.bf16_tflops, self.fp8_tflops, self.fp32_tflops)
        if any(f is not None for f in figures) and (self.source is None or self.source_kind == "none"):
            raise ValueError(
                f"model {self.name}: every figure needs a source (and sourceKind vendor or reported)"
            )
        return self

    @property
    def half_precision_tflops(self) -> float | None:
        """The figure PFLOPS are counted in: dense FP16, else dense BF16."""
        return self.fp16_tflops if self.fp16_tflops is not None else self.bf16_tflops

    def answers_to(self, model: str) -> bool:
        wanted = model.lower()
        return wanted == self.name.lower() or wanted in (a.lower() for a in self.aliases)


class VendorProfile(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    display_name: str
    resource_names: tuple[str, ...] = Field(min_length=1)
    node_labels: dict[str, str] = Field(default_factory=dict)
    visible_devices_env: tuple[str, ...] = Field(min_length=1)
    plugin_devices_env: tuple[str, ...] = ()
    collective: str
    torch_backend: str
    env: dict[str, str] = Field(default_factory=dict)
    models: tuple[AcceleratorModel, ...] = ()

    @field_validator("resource_names")
    @classmethod
    def _resource_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        bad = [n for n in names if not _RESOURCE.match(n)]
        if bad:
            raise ValueError(f"not an extended resource name (domain/name): {', '.join(bad)}")
        return names

    @field_validator("visible_devices_env", "plugin_devices_env")
    @classmethod
    def _env_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        bad = [n for n in names if not _ENV_NAME.match(n)]
        if bad:
            raise ValueError(f"not an environment variable name: {', '.join(bad)}")
        return names

    @property
    def default_resource(self) -> str:
        return self.resource_names[0]

    def model(self, name: str) -> AcceleratorModel | None:
        """The model of this vendor that `name` (a ComputePool's spec.model) means, if known."""
        return next((m for m in self.models if m.answers_to(name)), None)


class ProfileError(ValueError):
    """A vendor profile file is malformed; the message names the file, entry and field."""


def parse(text: str, source: str) -> list[VendorProfile]:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ProfileError(f"{source}: not valid YAML: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), list):
        raise ProfileError(f"{source}: expected a mapping with a 'profiles' list")
    out = []
    for i, entry in enumerate(data["profiles"]):
        try:
            out.append(VendorProfile.model_validate(entry))
        except ValidationError as err:
            name = entry.get("key", "?") if isinstance(entry, dict) else "?"
            fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise ProfileError(f"{source}: profiles[{i}] ({name}): {fields}") from err
    return out


def load(extra_paths: list[Path] | None = None) -> dict[str, VendorProfile]:
    """The shipped profiles, overridden and extended by `extra_paths` in order."""
    shipped = resources.files("estuary.vendors").joinpath("profiles.yaml").read_text()
    merged = {p.key: p for p in parse(shipped, "estuary/vendors/profiles.yaml")}
    for path in extra_paths or []:
        merged.update({p.key: p for p in parse(path.read_text(), str(path))})
    return merged


@cache
def profiles() -> dict[str, VendorProfile]:
    """Profiles in effect: shipped ones plus the files named in $ESTUARY_VENDOR_PROFILES."""
    extra = [Path(p) for p in os.environ.get(ENV_EXTRA, "").split(",") if p.strip()]
    return load(extra)


def tflops_per_accelerator(vendor: str, model: str) -> float | None:
    """Peak dense FP16/BF16 TFLOPS of one accelerator of `vendor`/`model`, when the profiles know it."""
    profile = profiles().get(vendor)
    found = profile.model(model) if profile is not None else None
    return found.half_precision_tflops if found is not None else None


def vendor_for_resource(resource: str) -> VendorProfile | None:
    return next((p for p in profiles().values() if resource in p.resource_names), None)
