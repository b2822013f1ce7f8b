"""A job's pod template on the real API server: what Estuary owns is refused by name, a malformed
template is refused by the real PodSpec schema, and a real training job's pods carry everything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.kube_helpers import ASCEND, NVIDIA, Kube, aijob, bound_claim
from tests.e2e.operator_process import wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "jobs"


def _job(name: str, namespace: str, **spec: Any) -> str:
    return yaml.safe_dump(aijob(name, namespace, [NVIDIA], workers=1, **spec))


def _worker(**fields: Any) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": "worker", **fields}]}}


def _sidecar(**fields: Any) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": "worker"}, {"name": "log", "image": "fluent-bit:3", **fields}]}}


_PVC = {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
_T = "spec.template.spec"

# (case, spec fields, text the API server's refusal must contain: the offending field)
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    (
        "master-addr",
        {"template": _worker(env=[{"name": "MASTER_ADDR", "value": "x"}])},
        f"{_T}.containers[0].env[0].name",
    ),
    (
        "pet-prefix",
        {"template": _worker(env=[{"name": "PET_NNODES", "value": "9"}])},
        f"{_T}.containers[0].env[0].name",
    ),
    (
        "secret-rank",
        {
            "template": _worker(
                env=[{"name": "RANK", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
            )
        },
        f"{_T}.containers[0].env[0].name",
    ),
    (
        "visible-devices-in-sidecar",
        {"template": _sidecar(env=[{"name": "ASCEND_RT_VISIBLE_DEVICES", "value": "0"}])},
        f"{_T}.containers[1].env[0].name",
    ),
    (
        "plugin-devices",
        {"template": _worker(env=[{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}])},
        f"{_T}.containers[0].env[0].name",
    ),
    (
        "msrun-variable",
        {"template": _worker(env=[{"name": "MS_ROLE", "value": "MS_SCHED"}])},
        f"{_T}.containers[0].env[0].name",
    ),
    ("spec-env-world-size", {"env": [{"name": "WORLD_SIZE", "value": "64"}]}, "spec.env[0].name"),
    (
        "accelerator-in-sidecar",
        {"template": _sidecar(resources={"limits": {"nvidia.com/gpu": 1}})},
        f"{_T}.containers[1].resources.limits",
    ),
    (
        "ascend-in-worker",
        {"template": _worker(resources={"requests": {"huawei.com/Ascend910": 1}})},
        f"{_T}.containers[0].resources.requests",
    ),
    (
        "worker-cpu",
        {"template": _worker(resources={"limits": {"cpu": "64"}})},
        f"{_T}.containers[0].resources.limits",
    ),
    ("worker-image", {"template": _worker(image="other:1")}, f"{_T}.containers[0].image"),
    ("node-name", {"template": {"spec": {"nodeName": "h800-0"}}}, f"{_T}.nodeName"),
    (
        "node-affinity",
        {
            "template": {
                "spec": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {"matchExpressions": [{"key": "k", "operator": "Exists"}]}
                                ]
                            }
                        }
                    }
                }
            }
        },
        f"{_T}.affinity",
    ),
    ("restart-policy", {"template": {"spec": {"restartPolicy": "Always"}}}, f"{_T}.restartPolicy"),
    ("hostname", {"template": {"spec": {"hostname": "h"}}}, f"{_T}.hostname"),
    (
        "grace",
        {"template": {"spec": {"terminationGracePeriodSeconds": 5}}},
        f"{_T}.terminationGracePeriodSeconds",
    ),
    (
        "estuary-label",
        {"template": {"metadata": {"labels": {"estuary.dev/job-name": "other"}}}},
        "spec.template.metadata.labels",
    ),
    (
        "reserved-volume",
        {"template": {"spec": {"volumes": [{"name": "estuary-shm", "emptyDir": {}}]}}},
        f"{_T}.volumes[0].name",
    ),
    # Malformed templates, refused by the real PodSpec schema.
    (
        "claim-name-number",
        {"template": {"spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": 5}}]}}},
        f"{_T}.volumes[0].persistentVolumeClaim.claimName",
    ),
    (
        "pull-policy-enum",
        {"template": _sidecar(imagePullPolicy="Sometimes")},
        f"{_T}.containers[1].imagePullPolicy",
    ),
    (
        "unknown-volume-type",
        {"template": {"spec": {"volumes": [{"name": "d", "pvc": {"claimName": "d"}}]}}},
        f"{_T}.volumes[0].pvc",
    ),
    (
        "sidecar-without-image",
        {"template": {"spec": {"containers": [{"name": "log"}]}}},
        f"{_T}.containers[0].image",
    ),
    (
        "init-named-worker",
        {"template": {"spec": {"initContainers": [{"name": "worker", "image": "busybox"}]}}},
        f"{_T}.initContainers[0].name",
    ),
    (
        "checkpoint-volume-missing",
        {"checkpoint": {"volume": "ckpt"}, "template": {"spec": {"volumes": [_PVC]}}},
        "spec.checkpoint.volume",
    ),
    ("shm-over-memory", {"shmSize": "16Gi"}, "spec.shmSize"),
    (
        "shm-mounted-twice",
        {
            "shmSize": "1Gi",
            "template": {
                "spec": {
                    "volumes": [{"name": "s", "emptyDir": {}}],
                    "containers": [
                        {"name": "worker", "volumeMounts": [{"name": "s", "mountPath": "/dev/shm"}]}
                    ],
                }
            },
        },
        f"{_T}.containers",
    ),
]


@pytest.mark.parametrize("case,spec,field", REFUSED, ids=[c[0] for c in REFUSED])
def test_template_setting_what_estuary_owns_or_malformed_is_refused_naming_the_field(
    cluster: Any, namespace: str, case: str, spec: dict[str, Any], field: str
) -> None:
    proc = cluster.kubectl("create", "-f", "-", input=_job(case, namespace, **spec), check=False)
    assert proc.returncode != 0, f"{case} was accepted"
    assert field in proc.stderr, proc.stderr


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_job_is_valid_for_the_real_api_server(
    cluster: Any, namespace: str, example: str
) -> None:
    proc = cluster.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        str(EXAMPLES / example),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def _prerequisites(kube: Kube, ns: str) -> None:
    bound_claim(kube, ns, "imagenet")
    bound_claim(kube, ns, "checkpoints")
    kube.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "trainer", "namespace": ns}}
    )
    for name, kind, data in (
        ("hf-token", "Opaque", {"token": "c2VjcmV0"}),
        ("campus-registry", "kubernetes.io/dockerconfigjson", {".dockerconfigjson": "e30="}),
    ):
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": ns},
                "type": kind,
                "data": data,
            }
        )


REAL_TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"team": "vision"}, "annotations": {"example.edu/grant": "ERC-42"}},
    "spec": {
        "serviceAccountName": "trainer",
        "imagePullSecrets": [{"name": "campus-registry"}],
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True, "fsGroup": 1000},
        "nodeSelector": {"estuary.dev/node-pool": "ascend"},  # a pool filter: the slower type, on purpose
        "volumes": [
            {"name": "dataset", "persistentVolumeClaim": {"claimName": "imagenet", "readOnly": True}},
            {"name": "ckpt", "persistentVolumeClaim": {"claimName": "checkpoints"}},
        ],
        "containers": [
            {
                "name": "worker",
                "volumeMounts": [{"name": "dataset", "mountPath": "/data", "readOnly": True}],
                "env": [
                    {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}}
                ],
            }
        ],
    },
}


def test_real_training_job_pods_carry_dataset_shm_pull_secret_secret_env_and_non_root_user(
    kube: Kube, jobs_ns: str
) -> None:
    _prerequisites(kube, jobs_ns)
    job = aijob(
        "resnet", jobs_ns, [NVIDIA, ASCEND], workers=2, template=REAL_TEMPLATE, shmSize="2Gi",
        checkpoint={"volume": "ckpt", "mountPath": "/checkpoints", "subPath": "resnet"},
    )  # fmt: skip
    kube.apply(job)
    wait_for(lambda: kube.phase(jobs_ns, "resnet") == "Running", timeout=90, what="resnet Running")
    assert kube.status(jobs_ns, "resnet")["placement"]["pool"] == "ascend"  # the template's nodeSelector
    pods = kube.pods(jobs_ns, "resnet")
    assert len(pods) == 2
    for pod in pods:
        spec = pod["spec"]
        assert spec["serviceAccountName"] == "trainer"
        assert spec["imagePullSecrets"] == [{"name": "campus-registry"}]
        assert (
            spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 1000
        )
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["dataset"]["persistentVolumeClaim"] == {"claimName": "imagenet", "readOnly": True}
        assert volumes["estuary-shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "2Gi"}
        worker = spec["containers"][0]
        assert worker["name"] == "worker" and worker["image"] == ASCEND["image"]
        mounts = {m["mountPath"]: m for m in worker["volumeMounts"]}
        assert mounts["/data"]["name"] == "dataset" and mounts["/dev/shm"]["name"] == "estuary-shm"
        assert mounts["/checkpoints"] == {"name": "ckpt", "mountPath": "/checkpoints", "subPath": "resnet"}
        env = {e["name"]: e for e in worker["env"]}
        assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token"}
        assert env["ESTUARY_CHECKPOINT_DIR"]["value"] == "/checkpoints"
        assert env["ESTUARY_ATTEMPT"]["value"] == str(kube.status(jobs_ns, "resnet")["attempt"]) == "1"
        assert env["ASCEND_RT_VISIBLE_DEVICES"]["value"] == "0,1,2,3,4,5,6,7"
        assert worker["resources"]["limits"]["memory"] == "8Gi"
        assert pod["metadata"]["labels"]["team"] == "vision"
        assert pod["metadata"]["annotations"]["example.edu/grant"] == "ERC-42"
        assert spec["nodeSelector"] == {"estuary.dev/node-pool": "ascend"}


def test_kubectl_explains_the_template_with_the_pod_schema(cluster: Any) -> None:
    out = cluster.kubectl("explain", "aijob.spec.template.spec.volumes").stdout
    assert "persistentVolumeClaim" in out and "emptyDir" in out
    out = cluster.kubectl("explain", "aijob.spec.template.spec.containers.env.valueFrom").stdout
    assert "secretKeyRef" in out
