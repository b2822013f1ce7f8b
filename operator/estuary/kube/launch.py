"""The distributed-training environment and launch command of one worker, for every vendor.

Processes per worker come from `acceleratorsPerWorker`, never from a resource whose name contains
"gpu" (the mistake that breaks Ascend, MLU, DCU and XPU jobs in other operators). One process per
accelerator: WORLD_SIZE counts processes, NODE_RANK counts workers. JAX is the exception: one
process per worker drives all of its accelerators.

Every default launcher is proven by the framework itself in tests/framework (the pods' commands
and environment run as local processes); docs/jobs.md says what each one receives.
"""

from __future__ import annotations

from dataclasses import dataclass

from estuary.api.aijob import AIJobSpec
from estuary.vendors.loader import VendorProfile

LABEL_PREFIX = "estuary.dev/"
# How long a worker waits for worker 0's name (its record in the job's headless Service) before
# the launcher starts: msrun resolves the name once and exits when it is not there yet; the other
# launchers get the same start, so no rendezvous depends on how a launcher retries lookups.
MASTER_DNS_WAIT_SECONDS = 600
WAIT_FOR_MASTER = (
    "import os, socket, sys, time\n"
    "name, limit, start = os.environ['MASTER_ADDR'], float(sys.argv[1]), time.monotonic()\n"
    "while True:\n"
    "    try:\n"
    "        socket.getaddrinfo(name, None)\n"
    "        break\n"
    "    except OSError as err:\n"
    "        if time.monotonic() - start > limit:\n"
    "            sys.exit(f'estuary: worker 0 ({name}) did not resolve within {limit:.0f}s: {err}; '\n"
    "                     'is the job\\'s headless Service there?')\n"
    "        time.sleep(1)\n"
    "if time.monotonic() - start > 1:\n"
    "    print(f'estuary: {name} resolved after {time.monotonic() - start:.0f}s', flush=True)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)
# DeepSpeed's accelerator by vendor (DS_ACCELERATOR; deepspeed/accelerator/real_accelerator.py).
_DEEPSPEED_ACCELERATOR = {"huawei": "npu", "cambricon": "mlu"}


@dataclass(frozen=True, slots=True)
class Rendezvous:
    """Where worker 0 listens, and this worker's place in the gang."""

    master_addr: str
    master_port: int
    rank: int
    workers: int
    attempt: int = 0


def processes_per_worker(spec: AIJobSpec) -> int:
    if spec.framework == "jax":
        return 1
    return max(spec.accelerators_per_worker, 1)


def _framework_env(spec: AIJobSpec, profile: VendorProfile, rdv: Rendezvous) -> dict[str, str]:
    if spec.framework == "jax":
        # Read by jax.distributed.initialize(); num_processes=NNODES, process_id=NODE_RANK are
        # passed explicitly (JAX reads no variable for them outside SLURM, Open MPI or TPU VMs).
        return {"JAX_COORDINATOR_ADDRESS": f"{rdv.master_addr}:{rdv.master_port}"}
    if spec.framework == "deepspeed":
        return {"DS_ACCELERATOR": _DEEPSPEED_ACCELERATOR.get(profile.key, "cuda")}
    return {}


def distributed_env(spec: AIJobSpec, profile: VendorProfile, rdv: Rendezvous) -> dict[str, str]:
    """Environment for one worker: vendor devices and collectives, then the rendezvous."""
    nproc = processes_per_worker(spec)
    devices = ",".join(str(i) for i in range(spec.accelerators_per_worker))
    env: dict[str, str] = dict(profile.env)
    if spec.accelerators_per_worker:
        env.update({name: devices for name in profile.visible_devices_env})
    env.update(
        {
            "ESTUARY_VENDOR": profile.key,
            "ESTUARY_COLLECTIVE": profile.collective,
            "ESTUARY_DIST_BACKEND": profile.torch_backend,
            "ESTUARY_ATTEMPT": str(rdv.attempt),
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
    if nproc == 1:
        env["LOCAL_RANK"] = "0"  # one process: it is local rank 0 (launchers set it per process)
    if spec.checkpoint is not None:
        env["ESTUARY_CHECKPOINT_DIR"] = spec.checkpoint.mount_path
    env.update(_framework_env(spec, profile, rdv))
    for var in spec.env or []:
        env[var.name] = var.value  # the job's own settings win over the vendor's defaults
    return env


# The launcher each framework runs in every worker, after waiting for worker 0's name. msrun gets
# flags, not MS_* variables: it sets MS_ROLE, MS_SCHED_HOST, MS_SCHED_PORT, MS_WORKER_NUM,
# MS_NODE_ID, RANK_ID, RANK_SIZE and DEVICE_ID for each process it starts
# (mindspore/parallel/cluster/process_entity/_api.py).
_LAUNCHERS: dict[str, list[str]] = {
    "pytorch": ["torchrun"],
    # DeepSpeed through torchrun: deepspeed.init_distributed() reads torchrun's RANK, LOCAL_RANK,
    # WORLD_SIZE and MASTER_*; the `deepspeed` runner would need ssh or a hostfile on every node.
    "deepspeed": ["torchrun"],
    "mindspore": [
        "msrun",
        "--worker_num=$(WORLD_SIZE)",
        "--local_worker_num=$(LOCAL_WORLD_SIZE)",
        "--master_addr=$(MASTER_ADDR)",
        "--master_port=$(MASTER_PORT)",
        "--node_rank=$(NODE_RANK)",
        "--join=True",
    ],
    "jax": ["python"],
}


def launch_command(spec: AIJobSpec) -> tuple[list[str], list[str]]:
    """(command, args) for the worker container; an explicit spec.command wins."""
    args = list(spec.args or [])
    if spec.command:
        return list(spec.command), args
    launcher = _LAUNCHERS.get(spec.framework)
    if launcher is None:
        return [], args
    return ["python3", "-c", WAIT_FOR_MASTER, str(MASTER_DNS_WAIT_SECONDS), *launcher], args
