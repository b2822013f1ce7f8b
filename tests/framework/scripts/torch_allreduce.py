"""A PyTorch training script's distributed steps: join the world its launcher formed, all-reduce,
and keep a checkpoint in ESTUARY_CHECKPOINT_DIR that a later attempt resumes from.

Run by tests/framework as the pods' args (under torchrun, or once per process by a custom command).
--steps N runs N steps of one all-reduce each; --step-seconds slows them so a test can evict the
job midway; a SIGTERM (eviction) saves the checkpoint and exits, as docs/jobs.md recommends.
"""

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

parser = argparse.ArgumentParser()
parser.add_argument("--out", type=Path, required=True)
parser.add_argument("--steps", type=int, default=1)
parser.add_argument("--step-seconds", type=float, default=0)
parser.add_argument("--deepspeed", action="store_true", help="initialise through deepspeed")
args = parser.parse_args()

stop = False


def on_sigterm(signum: int, frame: object) -> None:
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_sigterm)
backend = os.environ["ESTUARY_DIST_BACKEND"]
if args.deepspeed:
    import deepspeed
    import deepspeed.comm as comm

    deepspeed.init_distributed(dist_backend=backend)
    rank, world, all_reduce = comm.get_rank(), comm.get_world_size(), comm.all_reduce
else:
    dist.init_process_group(backend=backend)
    rank, world, all_reduce = dist.get_rank(), dist.get_world_size(), dist.all_reduce

ckpt_dir = os.environ.get("ESTUARY_CHECKPOINT_DIR")
ckpt = Path(ckpt_dir) / "state.pt" if ckpt_dir else None
start = torch.load(ckpt)["step"] if ckpt and ckpt.exists() else 0
step, total = start, None
while step < args.steps:
    value = torch.tensor([float(rank + 1)])
    all_reduce(value)
    total = value.item()
    step += 1
    if ckpt and rank == 0:
        torch.save({"step": step}, ckpt.with_suffix(".tmp"))
        os.replace(ckpt.with_suffix(".tmp"), ckpt)  # a checkpoint is whole or absent
    stop_now = torch.tensor([1.0 if stop else 0.0])
    all_reduce(stop_now)  # every rank stops at the same step
    if stop_now.item():
        break
    time.sleep(args.step_seconds)

record = {
    "rank": rank,
    "world": world,
    "sum": total,
    "local_rank": int(os.environ["LOCAL_RANK"]),
    "attempt": int(os.environ["ESTUARY_ATTEMPT"]),
    "resumed_from": start,
    "step": step,
    "stopped": stop,
}
args.out.mkdir(parents=True, exist_ok=True)
(args.out / f"rank-{rank}-attempt-{record['attempt']}.json").write_text(json.dumps(record))
print("ESTUARY-TEST", json.dumps(record), flush=True)
dist.barrier()
dist.destroy_process_group()
sys.exit(0)
