"""A MindSpore script's distributed steps under msrun: join the cluster msrun built, all-reduce,
and save a checkpoint in ESTUARY_CHECKPOINT_DIR when the job declares one."""

import argparse
import json
import os
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import ops
from mindspore.communication import get_group_size, get_rank, init

parser = argparse.ArgumentParser()
parser.add_argument("--out", type=Path, required=True)
parser.add_argument("--device", default="CPU")
args = parser.parse_args()

ms.set_device(args.device)
init()
rank, world = get_rank(), get_group_size()
total = ops.AllReduce()(ms.Tensor(np.array([rank + 1.0], dtype=np.float32)))
record = {
    "rank": rank,
    "world": world,
    "sum": float(total.asnumpy()[0]),
    "attempt": os.environ["ESTUARY_ATTEMPT"],
}
args.out.mkdir(parents=True, exist_ok=True)
(args.out / f"rank-{rank}.json").write_text(json.dumps(record))
print("ESTUARY-TEST", json.dumps(record), flush=True)
