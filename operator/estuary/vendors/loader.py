"""Load and validate vendor profiles: the shipped data file plus any a platform team adds.

Code asks `profiles()[key]` for a vendor's facts; no vendor fact is written anywhere else.
"""

from __future__ import annotations

import os
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

ENV_EXTRA = "ESTUARY_VENDOR_PROFILES"
_RESOURCE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9][-A-Za-z0-9_.]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


def vendor_for_resource(resource: str) -> VendorProfile | None:
    return next((p for p in profiles().values() if resource in p.resource_names), None)
