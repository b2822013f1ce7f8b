"""Job templates: ready AIJobs for the common cases, filled in from a few parameters.

Why it exists: a researcher should not have to write an AIJob from nothing. The templates are
plain AIJob manifests shipped as package data (`estuary/job_templates/*.yaml`; the same files are
`examples/templates/`, a test keeps them identical), so one source serves `kubectl estuary run
--template`, the portal's form and `kubectl apply -f`. A template's title and description are
annotations of the manifest; `instantiate` drops them and keeps `estuary.dev/template`, so a job
says which template it came from.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

from estuary.api.aijob import AIJob
from estuary.api.ownership import WORKER_CONTAINER

DATA_DIR = "job_templates"
TEMPLATE_ANNOTATION = "estuary.dev/template"
_TITLE = "estuary.dev/template-title"
_DESCRIPTION = "estuary.dev/template-description"


class TemplateError(ValueError):
    """A template name or parameter is wrong; the message says which and what is allowed."""


@dataclass(frozen=True, slots=True)
class Parameter:
    """One field of a template a person may set (the portal renders one form input per parameter)."""

    name: str  # keyword of `instantiate`
    title: str
    kind: Literal["string", "integer", "list"]
    description: str
    default: str | int | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class JobTemplate:
    name: str
    title: str
    description: str
    framework: str
    parameters: tuple[Parameter, ...]
    manifest: dict[str, Any]  # the AIJob as shipped (a copy; change it freely)


def _types(spec: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        f"{a['vendor']}/{a['model']}" if a.get("model") else a["vendor"] for a in spec["accelerators"]
    )


def _command(spec: dict[str, Any]) -> tuple[str, ...] | None:
    if spec.get("framework") == "custom":
        return tuple(spec.get("command") or ()) or None
    return tuple(spec.get("args") or ()) or None


def _parameters(spec: dict[str, Any]) -> tuple[Parameter, ...]:
    custom = spec.get("framework") == "custom"
    return (
        Parameter(
            "image",
            "Image",
            "string",
            "Container image for every accepted type (empty: the template's image for each type).",
            None,
        ),
        Parameter("workers", "Workers", "integer", "Worker pods; all start at once.", spec.get("workers", 1)),
        Parameter(
            "accelerators_per_worker",
            "Accelerators per worker",
            "integer",
            "Whole accelerators per worker (one training process each).",
            spec.get("acceleratorsPerWorker", 1),
        ),
        Parameter(
            "accelerator_types",
            "Accelerator types",
            "list",
            "Accepted types in order of preference: vendor or vendor/model (e.g. nvidia/H800, huawei).",
            _types(spec),
        ),
        Parameter(
            "dataset_pvc",
            "Dataset volume",
            "string",
            "A PersistentVolumeClaim in the job's namespace, mounted read-only at /data on every worker.",
            None,
        ),
        Parameter(
            "command",
            "Command" if custom else "Script and arguments",
            "list",
            "The command each worker runs."
            if custom
            else "What the launcher runs on every worker: the training script and its arguments.",
            _command(spec),
        ),
    )


def _load(text: str, source: str) -> JobTemplate:
    manifest = yaml.safe_load(text)
    AIJob.model_validate(manifest)  # a shipped template that is not a valid AIJob is a bug
    notes = manifest["metadata"].get("annotations") or {}
    name = notes.get(TEMPLATE_ANNOTATION) or manifest["metadata"]["name"]
    if name != manifest["metadata"]["name"]:
        raise TemplateError(f"{source}: annotation {TEMPLATE_ANNOTATION} must equal metadata.name")
    spec = manifest["spec"]
    return JobTemplate(
        name=name,
        title=notes.get(_TITLE, name),
        description=" ".join(str(notes.get(_DESCRIPTION, "")).split()),
        framework=spec.get("framework", "pytorch"),
        parameters=_parameters(spec),
        manifest=manifest,
    )


@cache
def _templates() -> dict[str, JobTemplate]:
    folder = resources.files("estuary").joinpath(DATA_DIR)
    found = sorted((f for f in folder.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    loaded = [_load(f.read_text(), f"estuary/{DATA_DIR}/{f.name}") for f in found]
    return {t.name: t for t in loaded}


def all_templates() -> list[JobTemplate]:
    """Every shipped template, by name."""
    return [copy.deepcopy(t) for t in _templates().values()]


def template(name: str) -> JobTemplate:
    found = _templates().get(name)
    if found is None:
        raise TemplateError(f"no job template {name!r}; templates: {', '.join(_templates())}")
    return copy.deepcopy(found)


def _parse_type(text: str) -> tuple[str, str | None]:
    vendor, _, model = text.strip().partition("/")
    if not vendor:
        raise TemplateError(f"accelerator type {text!r} is not vendor or vendor/model")
    return vendor, model or None


def _accelerators(
    shipped: list[dict[str, Any]], types: list[str] | None, image: str | None, name: str
) -> list[dict[str, Any]]:
    """The accepted types: the template's, or the requested ones with an image each."""
    if not types:
        return [{**a, "image": image or a["image"]} for a in shipped]
    out = []
    for text in types:
        vendor, model = _parse_type(text)
        same_vendor = [a for a in shipped if a["vendor"] == vendor]
        exact = [a for a in same_vendor if (a.get("model") or "").lower() == (model or "").lower()]
        source = (exact or same_vendor or [{}])[0]
        chosen_image = image or source.get("image")
        if not chosen_image:
            raise TemplateError(f"template {name} has no image for {text}; give an image for it (--image)")
        choice: dict[str, Any] = {"vendor": vendor, "image": chosen_image}
        if model:
            choice["model"] = model
        out.append(choice)
    return out


def instantiate(
    name: str,
    *,
    job_name: str,
    namespace: str,
    image: str | None = None,
    workers: int | None = None,
    accelerators_per_worker: int | None = None,
    accelerator_types: list[str] | None = None,
    dataset_pvc: str | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """An AIJob manifest from template `name`; parameters left None keep the template's value.

    `command` is what the launcher runs (spec.args: the script and its arguments) for launcher
    frameworks, and the command itself (spec.command) for framework custom. The result is
    validated against the AIJob model (the CRD's schema), so a bad parameter fails here.
    """
    chosen = template(name)
    manifest = chosen.manifest
    shipped = manifest["metadata"].get("annotations") or {}
    annotations = {k: v for k, v in shipped.items() if k not in (_TITLE, _DESCRIPTION)}
    manifest["metadata"] = {"name": job_name, "namespace": namespace, "annotations": annotations}
    spec = manifest["spec"]
    if workers is not None:
        spec["workers"] = workers
    if accelerators_per_worker is not None:
        spec["acceleratorsPerWorker"] = accelerators_per_worker
    spec["accelerators"] = _accelerators(spec["accelerators"], accelerator_types, image, name)
    if command:
        spec["command" if chosen.framework == "custom" else "args"] = list(command)
    if dataset_pvc:
        _mount_dataset(spec, dataset_pvc)
    try:
        AIJob.model_validate(manifest)
    except ValueError as err:
        raise TemplateError(f"template {name} with these parameters is not a valid AIJob: {err}") from err
    return manifest


DATASET_VOLUME, DATASET_PATH = "dataset", "/data"


def _mount_dataset(spec: dict[str, Any], claim: str) -> None:
    """Mount the PersistentVolumeClaim `claim` read-only at /data in every worker, through the
    worker pod template (the `worker` container, which Estuary fills in)."""
    pod = spec.setdefault("template", {}).setdefault("spec", {})
    volumes = pod.setdefault("volumes", [])
    if any(v.get("name") == DATASET_VOLUME for v in volumes):
        raise TemplateError(
            f"the template already has a volume named {DATASET_VOLUME!r}; set --dataset there"
        )
    volumes.append({"name": DATASET_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
    containers = pod.setdefault("containers", [])
    worker = next((c for c in containers if c.get("name") == WORKER_CONTAINER), None)
    if worker is None:
        worker = {"name": WORKER_CONTAINER}
        containers.insert(0, worker)
    mount = {"name": DATASET_VOLUME, "mountPath": DATASET_PATH, "readOnly": True}
    worker.setdefault("volumeMounts", []).append(mount)
