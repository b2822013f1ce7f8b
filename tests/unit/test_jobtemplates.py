"""Job templates: valid AIJobs, one source for the plugin, the portal and examples/templates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from estuary import jobtemplates
from estuary.api.aijob import AIJob
from estuary.jobtemplates import TemplateError, instantiate

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / "operator" / "estuary" / "job_templates"
EXAMPLES_DIR = REPO_ROOT / "examples" / "templates"


def test_examples_templates_are_byte_identical_to_the_shipped_templates() -> None:
    shipped = {p.name: p.read_bytes() for p in PACKAGE_DIR.glob("*.yaml")}
    examples = {p.name: p.read_bytes() for p in EXAMPLES_DIR.glob("*.yaml")}
    assert shipped.keys() == examples.keys(), "examples/templates must hold exactly the shipped templates"
    for name, text in shipped.items():
        assert examples[name] == text, (
            f"examples/templates/{name} differs: cp operator/estuary/job_templates/*.yaml examples/templates/"
        )


def test_every_template_is_a_valid_aijob_with_a_title_and_description() -> None:
    templates = jobtemplates.all_templates()
    assert len(templates) >= 8
    for t in templates:
        AIJob.model_validate(t.manifest)
        assert t.title and t.title != t.name, t.name
        assert len(t.description) > 40, t.name
        assert [p.name for p in t.parameters] == [
            "image",
            "workers",
            "accelerators_per_worker",
            "accelerator_types",
            "dataset_pvc",
            "command",
        ]


def test_the_common_cases_are_covered() -> None:
    by_name = {t.name: t for t in jobtemplates.all_templates()}

    def vendors(name: str) -> set[str]:
        return {a["vendor"] for a in by_name[name].manifest["spec"]["accelerators"]}

    assert by_name["pytorch-ddp"].framework == "pytorch" and vendors("pytorch-ddp") == {"nvidia"}
    assert by_name["pytorch-fsdp"].framework == "pytorch" and vendors("pytorch-fsdp") == {"nvidia"}
    assert by_name["pytorch-ascend"].framework == "pytorch" and vendors("pytorch-ascend") == {"huawei"}
    assert by_name["mindspore-ascend"].framework == "mindspore" and vendors("mindspore-ascend") == {"huawei"}
    assert by_name["deepspeed"].framework == "deepspeed"
    assert by_name["jax"].framework == "jax"
    megatron = by_name["megatron-pretrain"].manifest["spec"]
    assert "pretrain_gpt.py" in megatron["args"][0] and megatron["workers"] >= 4
    debug = by_name["debug"].manifest["spec"]
    assert (debug["workers"], debug["acceleratorsPerWorker"], debug["framework"]) == (1, 1, "custom")


def test_instantiate_keeps_the_template_and_names_the_job() -> None:
    job = instantiate("pytorch-ddp", job_name="resnet", namespace="physics")
    assert job["metadata"] == {
        "name": "resnet",
        "namespace": "physics",
        "annotations": {"estuary.dev/template": "pytorch-ddp"},
    }
    shipped = yaml.safe_load((PACKAGE_DIR / "pytorch-ddp.yaml").read_text())
    assert job["spec"] == shipped["spec"]


def test_instantiate_applies_every_parameter() -> None:
    job = instantiate(
        "pytorch-ddp",
        job_name="resnet",
        namespace="physics",
        image="registry.example.edu/me/train:1",
        workers=4,
        accelerators_per_worker=2,
        accelerator_types=["nvidia/H800", "nvidia/A800"],
        command=["train.py", "--lr", "0.1"],
    )
    spec = AIJob.model_validate(job).spec
    assert (spec.workers, spec.accelerators_per_worker) == (4, 2)
    assert [(a.vendor, a.model, a.image) for a in spec.accelerators] == [
        ("nvidia", "H800", "registry.example.edu/me/train:1"),
        ("nvidia", "A800", "registry.example.edu/me/train:1"),
    ]
    assert spec.args == ["train.py", "--lr", "0.1"] and spec.command is None


def test_requested_types_take_the_templates_image_of_that_vendor() -> None:
    job = instantiate("debug", job_name="dbg", namespace="physics", accelerator_types=["huawei/Ascend910B"])
    assert job["spec"]["accelerators"] == [
        {"vendor": "huawei", "model": "Ascend910B", "image": "ascendai/pytorch:2.2.0"}
    ]


def test_a_custom_templates_command_replaces_the_command() -> None:
    job = instantiate("debug", job_name="dbg", namespace="physics", command=["jupyter", "lab"])
    assert job["spec"]["command"] == ["jupyter", "lab"] and "args" not in job["spec"]


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"name": "tensorflow"}, "no job template 'tensorflow'"),
        ({"accelerator_types": ["cambricon"]}, "has no image for cambricon"),
        ({"workers": 0}, "not a valid AIJob"),
        ({"accelerator_types": ["/H800"]}, "not vendor or vendor/model"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(kwargs: dict, says: str) -> None:  # type: ignore[type-arg]
    name = kwargs.pop("name", "pytorch-ddp")
    with pytest.raises(TemplateError, match=says):
        instantiate(name, job_name="j", namespace="ns", **kwargs)


def test_a_given_image_serves_a_vendor_the_template_lacks() -> None:
    job = instantiate(
        "pytorch-ddp", job_name="j", namespace="ns", accelerator_types=["cambricon"], image="mlu:1"
    )
    assert job["spec"]["accelerators"] == [{"vendor": "cambricon", "image": "mlu:1"}]


def test_a_dataset_claim_is_mounted_read_only_at_data_in_the_worker_container() -> None:
    manifest = instantiate("pytorch-ddp", job_name="imagenet-run", namespace="astro", dataset_pvc="imagenet")
    job = AIJob.model_validate(manifest)  # the AIJob model (and its pod schema) accepts it
    pod = manifest["spec"]["template"]["spec"]
    assert {"name": "dataset", "persistentVolumeClaim": {"claimName": "imagenet", "readOnly": True}} in pod[
        "volumes"
    ]
    [worker] = [c for c in pod["containers"] if c["name"] == "worker"]
    assert {"name": "dataset", "mountPath": "/data", "readOnly": True} in worker["volumeMounts"]
    assert job.spec.template is not None
