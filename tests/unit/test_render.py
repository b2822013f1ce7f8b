"""Worker pods carry the right resources, devices, collectives and rendezvous for every vendor."""

from typing import Any

import pytest

from estuary.api.aijob import AIJob
from estuary.kube import launch, render
from estuary.vendors import profiles


def make_job(**spec: Any) -> AIJob:
    body = {
        "metadata": {
            "name": "train",
            "namespace": "physics",
            "uid": "u-1",
            "annotations": {"estuary.dev/sim-duration-ms": "500", "other": "x"},
        },
        "spec": {
            "workers": 2,
            "acceleratorsPerWorker": 8,
            "accelerators": [{"vendor": "huawei", "image": "ms:910b"}],
            **spec,
        },
    }
    return AIJob.model_validate(body)


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"] if "value" in e}


def pod_for(vendor: str, resource: str, rank: int = 1, **spec: Any) -> dict[str, Any]:
    job = make_job(**spec)
    return render.worker_pod(
        job,
        job.spec.accelerators[0],
        profiles()[vendor],
        resource,
        "pool-a",
        "node-7",
        rank,
        2,
        3,
        [{"key": "t", "operator": "Exists"}],
    )


def test_ascend_worker_gets_hccl_devices_and_world_size_counting_processes() -> None:
    env = env_of(pod_for("huawei", "huawei.com/Ascend910"))
    assert env["ASCEND_RT_VISIBLE_DEVICES"] == "0,1,2,3,4,5,6,7"
    assert "ASCEND_VISIBLE_DEVICES" not in env  # set by the device plugin, never overridden
    assert env["ESTUARY_COLLECTIVE"] == "HCCL" and env["ESTUARY_DIST_BACKEND"] == "hccl"
    assert env["HCCL_CONNECT_TIMEOUT"] == "1800"
    assert (env["WORLD_SIZE"], env["LOCAL_WORLD_SIZE"], env["NODE_RANK"], env["RANK"]) == (
        "16",
        "8",
        "1",
        "8",
    )
    assert env["PET_NPROC_PER_NODE"] == "8" and env["PET_NNODES"] == "2"
    assert env["MASTER_ADDR"] == "train-worker-0.train.physics.svc"


@pytest.mark.parametrize(
    "vendor,resource",
    [
        ("cambricon", "cambricon.com/mlu"),
        ("hygon", "hygon.com/dcu"),
        ("kunlunxin", "kunlunxin.com/xpu"),
        ("enflame", "enflame.com/gcu"),
        ("mthreads", "mthreads.com/gpu"),
        ("metax", "metax-tech.com/gpu"),
    ],
)
def test_processes_per_worker_never_depend_on_a_gpu_named_resource(vendor: str, resource: str) -> None:
    pod = pod_for(vendor, resource)
    env = env_of(pod)
    assert env["LOCAL_WORLD_SIZE"] == "8" and env["WORLD_SIZE"] == "16"
    for var in profiles()[vendor].visible_devices_env:
        assert env[var] == "0,1,2,3,4,5,6,7"
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    assert limits[resource] == "8"


def test_pod_is_pinned_owned_labelled_and_requests_equal_limits() -> None:
    pod = pod_for("nvidia", "nvidia.com/gpu")
    resources = pod["spec"]["containers"][0]["resources"]
    assert (
        resources["requests"] == resources["limits"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "8"}
    )
    term = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["node-7"]
    assert pod["metadata"]["name"] == "train-worker-1"
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert pod["metadata"]["labels"][render.ATTEMPT_LABEL] == "3"
    assert pod["metadata"]["annotations"] == {
        "estuary.dev/sim-duration-ms": "500",
        "kubectl.kubernetes.io/default-container": "worker",
    }
    assert pod["spec"]["tolerations"] == [{"key": "t", "operator": "Exists"}]
    assert pod["spec"]["subdomain"] == "train" and pod["spec"]["restartPolicy"] == "Never"


def test_mindspore_workers_run_msrun_with_flags_after_waiting_for_the_master() -> None:
    pod = pod_for("huawei", "huawei.com/Ascend910", framework="mindspore", args=["train.py"])
    env = env_of(pod)
    assert not [name for name in env if name.startswith("MS_")]  # msrun sets them per process
    container = pod["spec"]["containers"][0]
    command = container["command"]
    assert command[:2] == ["python3", "-c"] and command[2] == launch.WAIT_FOR_MASTER
    assert command[4:6] == ["msrun", "--worker_num=$(WORLD_SIZE)"]
    assert "--master_addr=$(MASTER_ADDR)" in command and "--node_rank=$(NODE_RANK)" in command
    assert container["args"] == ["train.py"]


def test_deepspeed_and_pytorch_launch_through_torchrun_without_ssh() -> None:
    for framework in ("deepspeed", "pytorch"):
        pod = pod_for("nvidia", "nvidia.com/gpu", framework=framework, args=["train.py"])
        container = pod["spec"]["containers"][0]
        assert container["command"][4:] == ["torchrun"] and container["args"] == ["train.py"]
    assert env_of(pod_for("huawei", "huawei.com/Ascend910", framework="deepspeed"))["DS_ACCELERATOR"] == "npu"


def test_jax_runs_one_process_per_worker_with_the_coordinator_jax_reads() -> None:
    env = env_of(pod_for("nvidia", "nvidia.com/gpu", framework="jax", args=["train.py"]))
    assert env["JAX_COORDINATOR_ADDRESS"] == "train-worker-0.train.physics.svc:29500"
    assert (env["WORLD_SIZE"], env["RANK"], env["LOCAL_WORLD_SIZE"], env["LOCAL_RANK"]) == (
        "2",
        "1",
        "1",
        "0",
    )
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3,4,5,6,7"  # all of the worker's devices


def test_custom_command_and_job_env_win() -> None:
    pod = pod_for(
        "nvidia",
        "nvidia.com/gpu",
        framework="custom",
        command=["bash", "-c", "run"],
        env=[{"name": "NCCL_DEBUG", "value": "INFO"}],
    )
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["bash", "-c", "run"]
    assert env_of(pod)["NCCL_DEBUG"] == "INFO"


def test_headless_service_selects_the_workers() -> None:
    svc = render.service(make_job())
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"][render.JOB_LABEL] == "train"
    assert svc["spec"]["publishNotReadyAddresses"] is True
