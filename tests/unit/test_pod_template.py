"""A job's pod template reaches every worker pod, with what Estuary owns set on top of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from estuary.api import ownership
from estuary.api.aijob import AIJob
from estuary.kube import render
from estuary.state import codec
from estuary.vendors import profiles

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"team": "nlp"}, "annotations": {"policy.example.edu/owner": "alice"}},
    "spec": {
        "serviceAccountName": "trainer",
        "imagePullSecrets": [{"name": "campus-registry"}],
        "securityContext": {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 1000},
        "priorityClassName": "research",
        "nodeSelector": {"rack": "r7"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "nlp", "effect": "NoSchedule"}],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": "imagenet", "readOnly": True}},
            {"name": "ckpt", "persistentVolumeClaim": {"claimName": "ckpt"}},
        ],
        "initContainers": [{"name": "stage", "image": "busybox", "command": ["true"]}],
        "containers": [
            {
                "name": "worker",
                "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
                "env": [
                    {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
                    {"name": "NCCL_DEBUG", "value": "INFO"},
                ],
                "resources": {"limits": {"rdma/hca": "1"}},
            },
            {"name": "metrics", "image": "exporter:1"},
        ],
    },
}


def make_job(**spec: Any) -> AIJob:
    return AIJob.model_validate(
        {
            "metadata": {"name": "train", "namespace": "physics", "uid": "u-1"},
            "spec": {
                "workers": 2,
                "acceleratorsPerWorker": 2,
                "accelerators": [{"vendor": "nvidia", "image": "pt:cuda"}],
                "resources": {"cpu": "8", "memory": "64Gi"},
                **spec,
            },
        }
    )


def render_pod(job: AIJob, vendor: str = "nvidia", rank: int = 1, attempt: int = 2) -> dict[str, Any]:
    resource = profiles()[vendor].default_resource
    pool_toleration = [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    return render.worker_pod(
        job,
        job.spec.accelerators[0],
        profiles()[vendor],
        resource,
        "h800",
        "n-3",
        rank,
        2,
        attempt,
        pool_toleration,
    )


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


def test_template_pod_fields_reach_every_worker() -> None:
    pod = render_pod(make_job(template=TEMPLATE))
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "trainer"
    assert spec["imagePullSecrets"] == [{"name": "campus-registry"}]
    assert spec["securityContext"]["runAsUser"] == 1000 and spec["priorityClassName"] == "research"
    assert [v["name"] for v in spec["volumes"]] == ["data", "ckpt"]
    assert spec["initContainers"][0]["name"] == "stage"
    assert [c["name"] for c in spec["containers"]] == ["worker", "metrics"]
    assert pod["metadata"]["labels"]["team"] == "nlp"
    assert pod["metadata"]["labels"][render.JOB_LABEL] == "train"
    assert pod["metadata"]["annotations"]["policy.example.edu/owner"] == "alice"


def test_worker_container_merges_the_template_under_what_estuary_owns() -> None:
    worker = container(render_pod(make_job(template=TEMPLATE)), "worker")
    assert worker["image"] == "pt:cuda"
    assert worker["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    names = [e["name"] for e in worker["env"]]
    assert len(names) == len(set(names)), "one entry per variable"
    # Estuary's variables come first, so the job's may refer to them as $(MASTER_ADDR).
    assert names.index("MASTER_ADDR") < names.index("HF_TOKEN")
    by_name = {e["name"]: e for e in worker["env"]}
    assert by_name["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf", "key": "token"}
    assert by_name["NCCL_DEBUG"] == {
        "name": "NCCL_DEBUG",
        "value": "INFO",
    }  # the job's value wins over a default
    limits = worker["resources"]["limits"]
    assert limits == {"rdma/hca": "1", "cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "2"}
    assert worker["resources"]["requests"]["nvidia.com/gpu"] == "2"


def test_estuary_owns_the_node_pin_restart_policy_hostname_and_grace() -> None:
    pod = render_pod(make_job(template=TEMPLATE, preemption={"gracePeriodSeconds": 120}))
    spec = pod["spec"]
    term = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["n-3"]
    assert (spec["restartPolicy"], spec["hostname"], spec["subdomain"]) == (
        "Never",
        "train-worker-1",
        "train",
    )
    assert spec["terminationGracePeriodSeconds"] == 120
    assert spec["nodeSelector"] == {"rack": "r7"}
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists"},
        {"key": "dedicated", "operator": "Equal", "value": "nlp", "effect": "NoSchedule"},
    ]


def test_shm_is_a_memory_backed_volume_within_the_memory_limit() -> None:
    pod = render_pod(make_job(template=TEMPLATE, shmSize="16Gi"))
    shm = next(v for v in pod["spec"]["volumes"] if v["name"] == "estuary-shm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    worker = container(pod, "worker")
    assert {"name": "estuary-shm", "mountPath": "/dev/shm"} in worker["volumeMounts"]
    assert worker["resources"]["limits"]["memory"] == "64Gi"  # /dev/shm is part of it, not added


def test_checkpoint_volume_is_mounted_with_its_directory_and_the_attempt() -> None:
    job = make_job(template=TEMPLATE, checkpoint={"volume": "ckpt", "mountPath": "/ckpt", "subPath": "train"})
    worker = container(render_pod(job, attempt=3), "worker")
    assert {"name": "ckpt", "mountPath": "/ckpt", "subPath": "train"} in worker["volumeMounts"]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["ESTUARY_CHECKPOINT_DIR"] == "/ckpt" and env["ESTUARY_ATTEMPT"] == "3"


def test_a_job_without_template_gets_a_lone_worker_container() -> None:
    pod = render_pod(make_job())
    assert [c["name"] for c in pod["spec"]["containers"]] == ["worker"]
    assert "volumes" not in pod["spec"] and "nodeSelector" not in pod["spec"]
    assert pod["spec"]["enableServiceLinks"] is False


def test_template_node_selector_and_tolerations_filter_pools() -> None:
    job = make_job(template=TEMPLATE, nodeSelector={"zone": "a"})
    request = codec.job_request(job, "physics")
    assert request.node_selector == {"rack": "r7", "zone": "a"}
    assert [(t.key, t.value, t.effect) for t in request.tolerations] == [("dedicated", "nlp", "NoSchedule")]


@pytest.mark.parametrize("framework", ["pytorch", "deepspeed", "mindspore", "jax", "custom"])
@pytest.mark.parametrize("vendor", sorted(profiles()))
def test_every_variable_estuary_sets_is_one_the_crd_refuses_in_a_template(
    framework: str, vendor: str
) -> None:
    extra = {"command": ["run"]} if framework == "custom" else {}
    job = make_job(framework=framework, checkpoint={"volume": "ckpt"}, template=TEMPLATE, **extra)
    env = {e["name"] for e in container(render_pod(job, vendor), "worker")["env"] if "value" in e}
    defaults = set(profiles()[vendor].env) | {"NCCL_DEBUG"}  # vendor defaults, and the template's own
    not_owned = {n for n in env - defaults if not ownership.is_owned_env(n)}
    assert not not_owned, f"set by Estuary but a template could set them too: {sorted(not_owned)}"


def test_custom_command_gets_local_rank_only_for_one_process_per_worker() -> None:
    def env(apw: int) -> dict[str, str]:
        job = make_job(framework="custom", command=["run"], acceleratorsPerWorker=apw)
        return {e["name"]: e["value"] for e in container(render_pod(job), "worker")["env"] if "value" in e}

    assert env(1)["LOCAL_RANK"] == "0"
    several = env(2)
    assert "LOCAL_RANK" not in several  # the command starts LOCAL_WORLD_SIZE processes and numbers them
    assert (several["RANK"], several["LOCAL_WORLD_SIZE"], several["WORLD_SIZE"]) == ("2", "2", "4")


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "jobs"
EXAMPLE_JOBS = [
    (f"{path.relative_to(EXAMPLES)}:{doc['metadata']['name']}", doc)
    for path in sorted(EXAMPLES.rglob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc and doc.get("kind") == "AIJob"
]


@pytest.mark.parametrize("name,doc", EXAMPLE_JOBS, ids=[n for n, _ in EXAMPLE_JOBS])
def test_every_example_job_parses_renders_and_sets_nothing_estuary_owns(
    name: str, doc: dict[str, Any]
) -> None:
    job = AIJob.model_validate({**doc, "metadata": {**doc["metadata"], "namespace": "physics", "uid": "u"}})
    spec = job.spec
    vendor = spec.accelerators[0].vendor
    pod = render.worker_pod(
        job,
        spec.accelerators[0],
        profiles()[vendor],
        profiles()[vendor].default_resource,
        "p",
        "n",
        0,
        spec.workers,
        0,
        [],
    )
    assert container(pod, "worker")["image"] == spec.accelerators[0].image
    template_env = [e["name"] for c in spec.pod_spec.get("containers", []) for e in c.get("env", [])]
    assert not [n for n in template_env if ownership.is_owned_env(n)]
    names = {v["name"] for v in spec.pod_spec.get("volumes", [])}
    assert spec.checkpoint is None or spec.checkpoint.volume in names


def test_examples_cover_every_framework() -> None:
    assert {doc["spec"].get("framework", "pytorch") for _, doc in EXAMPLE_JOBS} >= {
        "pytorch",
        "deepspeed",
        "mindspore",
        "jax",
    }


def test_ownership_table_in_the_docs_names_everything_the_crd_refuses() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "jobs.md").read_text()
    table = docs[docs.index("### Ownership") : docs.index("### `/dev/shm`")]
    names = [
        *ownership.OWNED_POD_FIELDS,
        *ownership.OWNED_WORKER_FIELDS,
        *ownership.RENDEZVOUS_ENV,
        *ownership.MINDSPORE_ENV,
        *ownership.device_env(),
        *ownership.OWNED_ENV_PREFIXES,
    ]
    missing = [n for n in names if f"`{n}" not in table]
    assert not missing, f"docs/jobs.md's ownership table does not mention: {missing}"


def test_an_owned_variable_that_slipped_past_the_crd_never_beats_estuarys_value() -> None:
    # Only possible for a vendor profile added after the CRD was generated; the value still wins.
    template = {
        "spec": {"containers": [{"name": "worker", "env": [{"name": "CUDA_VISIBLE_DEVICES", "value": "7"}]}]}
    }
    worker = container(render_pod(make_job(template=template)), "worker")
    values = [e["value"] for e in worker["env"] if e["name"] == "CUDA_VISIBLE_DEVICES"]
    assert values == ["0,1"]
