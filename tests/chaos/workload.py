"""The chaos tier's workload and fault schedule: pure functions of a seed.

Four tenants share the Hong Kong pools of examples/ (pools-hk.yaml with tenants/quotas.yaml:
H800 physics 16+8, chemistry 8+8 lending 8, biology 8, everyone else 0+8; Ascend physics 8,
chemistry 8, biology 16). Each job's shape is drawn within what its tenant may ever hold, so every
job can finish, except the few built never to fit (``NEVER_FITS``), which must end Queued with
reason NeverFits. Physics jobs may accept the partner's A800 and burst (the example link allows
physics only); some accept only A800, so they never fit at home and burst at once.

The same seed gives the same jobs, arrival times and fault moments; what the processes make of
them (the interleaving on a real control plane) is not deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

GROUP, VERSION = "estuary.dev", "v1alpha1"
H800 = {"vendor": "nvidia", "model": "H800", "image": "example.org/train:cuda12"}
ASCEND = {"vendor": "huawei", "model": "Ascend910B", "image": "example.org/train:cann8"}
A800 = {"vendor": "nvidia", "model": "A800", "image": "example.org/train:cuda12"}

# tenant -> (namespace label value, the most accelerators of each type it may ever hold at home)
TENANTS = {
    "physics": {"h800": 24, "ascend": 8},
    "chemistry": {"h800": 16, "ascend": 8},
    "biology": {"h800": 8, "ascend": 32},  # Ascend: 16 nominal, no borrowing limit set
    "astronomy": {"h800": 8, "ascend": 0},  # the "*" quota: borrow up to 8 H800, no Ascend
}
NEVER_FITS = ("biology-never-fits-0", "biology-never-fits-1")  # 5 x 8 H800: biology may hold 8


@dataclass(frozen=True)
class JobPlan:
    tenant: str
    name: str
    workers: int
    per_worker: int
    accelerators: tuple[dict[str, str], ...]
    priority: int
    duration_ms: int
    submit_at: float  # seconds after the start of the run
    fails: bool = False  # every attempt fails (restarts, then Failed)
    burst: bool = False

    def manifest(self) -> dict[str, Any]:
        notes = {"estuary.dev/sim-duration-ms": str(self.duration_ms)}
        if self.fails:
            notes = {"estuary.dev/sim-fail-after-ms": str(self.duration_ms)}
        spec: dict[str, Any] = {
            "workers": self.workers,
            "acceleratorsPerWorker": self.per_worker,
            "accelerators": [dict(a) for a in self.accelerators],
            "resources": {"cpu": "1", "memory": "2Gi"},
            "priority": self.priority,
            "preemption": {"gracePeriodSeconds": 0},
            "restartPolicy": {"maxRestarts": 1, "backoffSeconds": 2},
        }
        if self.burst:
            spec["burst"] = {"enabled": True, "afterSeconds": 20}
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "AIJob",
            "metadata": {"name": self.name, "namespace": self.tenant, "annotations": notes},
            "spec": spec,
        }


def _shape(rnd: random.Random, limit: int) -> tuple[int, int]:
    """(workers, accelerators per worker) within `limit` accelerators; mostly small gangs."""
    while True:
        workers, per = rnd.choice([1, 1, 1, 2, 2, 3, 4]), rnd.choice([1, 2, 2, 4, 4, 8])
        if workers * per <= limit:
            return workers, per


def _types(rnd: random.Random, tenant: str) -> tuple[tuple[dict[str, str], ...], bool]:
    """Accepted types, and whether the job may burst."""
    room = TENANTS[tenant]
    if tenant == "physics":
        roll = rnd.random()
        if roll < 0.12:
            return (A800,), True  # runs only at the partner
        if roll < 0.4:
            return (H800, A800), True
        return ((H800, ASCEND) if rnd.random() < 0.5 else (H800,)), False
    if not room["ascend"]:
        return (H800,), False
    return rnd.choice([(H800,), (ASCEND,), (H800, ASCEND), (ASCEND,)]), False


def jobs(seed: int, count: int = 150, arrive_over_s: float = 180.0) -> list[JobPlan]:
    """`count` jobs spread over four tenants, plus the never-fitting ones, in submission order."""
    rnd = random.Random(seed)
    plans = []
    tenants = list(TENANTS)
    for i in range(count):
        tenant = tenants[i % len(tenants)]
        accelerators, burst = _types(rnd, tenant)
        models = {a["model"] for a in accelerators}
        limits = [TENANTS[tenant]["h800"]] if "H800" in models else []
        limits += [TENANTS[tenant]["ascend"]] if "Ascend910B" in models else []
        limits += [16] if "A800" in models else []  # the partner has 2 A800 nodes
        workers, per = _shape(rnd, min([16, *limits]))  # a gang of at most 2 nodes: no long waits
        plans.append(
            JobPlan(
                tenant=tenant,
                name=f"{tenant}-{i:03d}",
                workers=workers,
                per_worker=per,
                accelerators=accelerators,
                priority=rnd.choice([0, 0, 10, 50, 100]),
                duration_ms=rnd.randint(4, 25) * 1000,
                submit_at=round(rnd.uniform(0, arrive_over_s), 1),
                fails=rnd.random() < 0.03,
                burst=burst,
            )
        )
    for name in NEVER_FITS:
        plans.append(
            JobPlan("biology", name, 5, 8, (H800,), 0, 5000, round(rnd.uniform(0, arrive_over_s), 1))
        )
    return sorted(plans, key=lambda p: p.submit_at)


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the start of the run
    action: str  # kill | api-stall | api-refuse | api-back | cut | heal
    detail: float = 0.0  # kill: seconds until the restart


def faults(
    seed: int,
    kills: int = 5,
    window_s: float = 300.0,
    stall_s: float = 15.0,
    refuse_s: float = 20.0,
    partition_s: float = 75.0,
) -> list[Fault]:
    """`kills` SIGKILLs of the operator at random moments at least 20 s apart (each restarted 1-8 s
    later); one API-server outage as the operator sees it (its connections hang for `stall_s`,
    then are dropped and refused for `refuse_s`); one federation partition; all within
    `window_s`."""
    rnd = random.Random(seed + 1)
    moments: list[float] = []
    while len(moments) < kills:
        at = round(rnd.uniform(15, window_s), 1)
        if all(abs(at - m) >= 20 for m in moments):
            moments.append(at)
    out = [Fault(at, "kill", round(rnd.uniform(1, 8), 1)) for at in moments]
    down = round(rnd.uniform(0.3, 0.6) * window_s, 1)
    cut = round(rnd.uniform(0.1, 0.4) * window_s, 1)
    out += [
        Fault(down, "api-stall"),
        Fault(down + stall_s, "api-refuse"),
        Fault(down + stall_s + refuse_s, "api-back"),
    ]
    out += [Fault(cut, "cut"), Fault(cut + partition_s, "heal")]
    return sorted(out, key=lambda f: f.at)
