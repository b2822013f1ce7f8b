"""A JAX script's distributed steps: initialize from Estuary's environment, then sum across every
device of every process.

JAX reads JAX_COORDINATOR_ADDRESS itself; the process count and id are passed explicitly (JAX
reads no variable for them outside SLURM, Open MPI or Cloud TPU), as docs/jobs.md shows.
"""

import argparse
import json
import os
from pathlib import Path

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

parser = argparse.ArgumentParser()
parser.add_argument("--out", type=Path, required=True)
args = parser.parse_args()

jax.distributed.initialize(num_processes=int(os.environ["NNODES"]), process_id=int(os.environ["NODE_RANK"]))
devices = jax.devices()
mesh = jax.make_mesh((len(devices),), ("i",), devices=devices)
mine = [devices.index(d) for d in jax.local_devices()]
values = np.array([rank + 1.0 for rank in mine], dtype=np.float32)
array = jax.make_array_from_process_local_data(NamedSharding(mesh, P("i")), values)
total = jax.jit(lambda a: a.sum(), out_shardings=NamedSharding(mesh, P()))(array)
args.out.mkdir(parents=True, exist_ok=True)
for rank in mine:
    record = {"rank": rank, "world": len(devices), "sum": float(total), "process": jax.process_index()}
    (args.out / f"rank-{rank}.json").write_text(json.dumps(record))
    print("ESTUARY-TEST", json.dumps(record), flush=True)
jax.distributed.shutdown()
