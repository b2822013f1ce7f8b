"""The distributed-training environment and launch command of one worker, for every vendor.

Processes per worker come from `acceleratorsPerWorker`, never from a resource whose name contains
"gpu" (the mistake that breaks Ascend, MLU, DCU and XPU jobs in other operators). One process per
accelerator: WORLD_SIZE counts processes, NODE_RANK counts workers.
"""

from __future__ import annotations

from dataclasses import dataclass

from estuary.api.aijob import AIJobSpec
from estuary.vendors.loader import VendorProfile

LABEL_PREFIX = "estuary.dev/"


@dataclass(frozen=True, slots=True)
class Rendezvous:
    """Where worker 0 listens, and this worker's place in the gang."""

    master_addr: str
    master_port: int
    rank: int
    workers: int


def _processes_per_worker(spec: AIJobSpec) -> int:
    return max(spec.accelerators_per_worker, 1)


def distributed_env(spec: AIJobSpec, profile: VendorProfile, rdv: Rendezvous) -> dict[str, str]:
    """Environment for one worker: vendor devices and collectives, then the rendezvous."""
    nproc = _processes_per_worker(spec)
    devices = ",".join(str(i) for i in range(spec.accelerators_per_worker))
    env: dict[str, str] = dict(profile.env)
    if spec.accelerators_per_worker:
        env.update({name: devices for name in profile.visible_devices_env})
    env.update(
        {
            "ESTUARY_VENDOR": profile.key,
            "ESTUARY_COLLECTIVE": profile.collective,
            "ESTUARY_DIST_BACKEND": profile.torch_backend,
            "MASTER_ADDR": rdv.master_addr,
            "MASTER_PORT": str(rdv.master_port),
            "NNODES": str(rdv.workers),
            "NODE_RANK": str(rdv.rank),
            "NPROC_PER_NODE": str(nproc),
            "LOCAL_WORLD_SIZE": str(nproc),
            "WORLD_SIZE": str(rdv.workers * nproc),
            "RANK": str(rdv.rank * nproc),  # global rank of this worker's first process
            # torchrun reads its flags from PET_* variables.
            "PET_NNODES": str(rdv.workers),
            "PET_NPROC_PER_NODE": str(nproc),
            "PET_NODE_RANK": str(rdv.rank),
            "PET_MASTER_ADDR": rdv.master_addr,
            "PET_MASTER_PORT": str(rdv.master_port),
        }
    )
    if spec.framework == "mindspore":
        # msrun on node rank 0 also starts the MS_SCHED process at MS_SCHED_HOST:MS_SCHED_PORT.
        env.update(
            {
                "MS_ROLE": "MS_WORKER",
                "MS_SCHED_HOST": rdv.master_addr,
                "MS_SCHED_PORT": str(rdv.master_port),
                "MS_WORKER_NUM": str(rdv.workers * nproc),
                "MS_LOCAL_WORKER": str(nproc),
                "MS_NODE_RANK": str(rdv.rank),
            }
        )
    if spec.framework == "jax":
        env.update(
            {
                "JAX_COORDINATOR_ADDRESS": f"{rdv.master_addr}:{rdv.master_port}",
                "JAX_NUM_PROCESSES": str(rdv.workers),
                "JAX_PROCESS_ID": str(rdv.rank),
                "JAX_LOCAL_DEVICE_COUNT": str(spec.accelerators_per_worker),
            }
        )
    if spec.framework == "deepspeed":
        env["DS_ACCELERATOR"] = {"huawei": "npu", "cambricon": "mlu"}.get(profile.key, "cuda")
    for var in spec.env or []:
        env[var.name] = var.value  # the job's own settings win
    return env


_DEFAULT_COMMANDS: dict[str, list[str]] = {
    "pytorch": ["torchrun"],
    "deepspeed": [
        "deepspeed",
        "--no_ssh",
        "--nnodes=$(NNODES)",
        "--node_rank=$(NODE_RANK)",
        "--num_gpus=$(NPROC_PER_NODE)",
        "--master_addr=$(MASTER_ADDR)",
        "--master_port=$(MASTER_PORT)",
    ],
    "mindspore": [
        "msrun",
        "--worker_num=$(MS_WORKER_NUM)",
        "--local_worker_num=$(MS_LOCAL_WORKER)",
        "--master_addr=$(MS_SCHED_HOST)",
        "--master_port=$(MS_SCHED_PORT)",
        "--node_rank=$(NODE_RANK)",
        "--join=True",
    ],
    "jax": ["python"],
    "mpi": ["python"],
}


def launch_command(spec: AIJobSpec) -> tuple[list[str], list[str]]:
    """(command, args) for the worker container; an explicit spec.command wins."""
    args = list(spec.args or [])
    if spec.command:
        return list(spec.command), args
    return list(_DEFAULT_COMMANDS.get(spec.framework, [])), args
