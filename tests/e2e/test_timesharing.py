"""Time-sharing carried out on the real control plane: a short job overtakes a long one, a job moves
from a slow pool to a fast one when it frees, and a job that cannot be preempted is never touched.

The session's operator runs the policy in seconds (tests/e2e/conftest.py, TIME_SHARING_IN_SECONDS);
pods on kwok nodes finish after `estuary.dev/sim-duration-ms` (hack/stages/estuary-worker.yaml).
"""

from __future__ import annotations

import re
import time
import urllib.request
from typing import Any

from devcluster.clusters import Cluster
from tests.e2e.kube_helpers import ASCEND, NVIDIA, Kube, aijob
from tests.e2e.operator_process import OperatorProcess, wait_for

SHARING = {"preemptible": True, "timeSharing": True, "gracePeriodSeconds": 0}
SLICE_S = 5  # ESTUARY_TIME_SHARING_MIN_SLICE_SECONDS of the session's operator


def _job(name: str, ns: str, workers: int, run_ms: int, **spec: Any) -> dict[str, Any]:
    spec.setdefault("preemption", SHARING)
    spec.setdefault("accelerators", [NVIDIA])
    accelerators = spec.pop("accelerators")
    annotations = {"estuary.dev/sim-duration-ms": str(run_ms)}
    return aijob(name, ns, accelerators, workers=workers, annotations=annotations, **spec)


def _running(kube: Kube, ns: str, name: str, timeout: float = 60) -> dict[str, Any]:
    return dict(
        wait_for(
            lambda: (s := kube.status(ns, name)).get("phase") == "Running" and s,
            timeout=timeout,
            what=f"{ns}/{name} Running",
        )
    )


def _reasons(kube: Kube, ns: str, name: str) -> dict[str, str]:
    return {e["reason"]: e["message"] for e in kube.events(ns, name)}


def _outcomes(kube: Kube, ns: str, name: str) -> list[str]:
    return [run.get("outcome") or "open" for run in kube.status(ns, name).get("runs", [])]


def _metric(url: str, pattern: str) -> float:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#") and re.fullmatch(pattern, line.rsplit(" ", 1)[0])
    )


def test_a_short_job_overtakes_a_long_one(kube: Kube, jobs_ns: str, cluster: Cluster) -> None:
    """Both take the whole H800 pool; the long one has had its slice and more service than the
    short one, so it yields (no backoff), the short one runs and finishes, the long one resumes
    on a new attempt with the service it attained."""
    kube.apply(_job("long", jobs_ns, 3, 600_000))
    _running(kube, jobs_ns, "long")
    time.sleep(SLICE_S + 1)
    kube.apply(_job("short", jobs_ns, 3, 3000))
    wait_for(lambda: kube.phase(jobs_ns, "short") == "Succeeded", timeout=90, what="short Succeeded")
    yielded = _reasons(kube, jobs_ns, "long")["Yielded"]
    assert f"{jobs_ns}/short (queue 0" in yielded and "(Service)" in yielded, yielded
    resumed = _running(kube, jobs_ns, "long", timeout=60)
    assert resumed["attempt"] == 2 and _outcomes(kube, jobs_ns, "long") == ["Yielded", "open"]
    assert resumed["attainedService"] >= 100 / 3600  # at least the 100 accelerator-seconds of queue 1
    assert "Preempted" not in _reasons(kube, jobs_ns, "short")
    wide = cluster.kubectl("get", "aij", "-n", jobs_ns, "-o", "wide").stdout
    assert "ATTAINED" in wide.splitlines()[0]
    row = next(line for line in wide.splitlines() if line.startswith("long "))
    assert str(resumed["attainedService"]) in row, wide


def test_a_job_moves_from_a_slow_pool_to_a_fast_one_when_it_frees(
    kube: Kube, jobs_ns: str, estuary: OperatorProcess
) -> None:
    """The H800 pool is full, so the mover starts on Ascend (a quarter of the speed, by its own
    hint); when the H800 job finishes, the move pays for itself and the mover goes there."""
    moves = r'estuary_migrations_total\{.*source_pool="ascend",target_pool="h800".*\}'
    before = _metric(estuary.metrics_url, moves)
    kube.apply(_job("blocker", jobs_ns, 3, 12_000, preemption={"preemptible": False}))
    _running(kube, jobs_ns, "blocker")
    slow = {**ASCEND, "relativeThroughput": 0.25}
    kube.apply(_job("mover", jobs_ns, 1, 600_000, accelerators=[NVIDIA, slow]))
    first = _running(kube, jobs_ns, "mover")
    assert first["placement"]["pool"] == "ascend"
    wait_for(lambda: kube.phase(jobs_ns, "blocker") == "Succeeded", timeout=60, what="blocker Succeeded")
    moved = wait_for(
        lambda: (
            (s := kube.status(jobs_ns, "mover")).get("phase") == "Running"
            and s["placement"]["pool"] == "h800"
            and s
        ),
        timeout=60,
        what="mover Running on h800",
    )
    assert moved["attempt"] == 2 and moved["attainedService"] > 0
    assert _outcomes(kube, jobs_ns, "mover") == ["Migrating", "open"]
    message = _reasons(kube, jobs_ns, "mover")["Migrating"]
    assert "moves from ascend to h800" in message and "left on ascend vs" in message, message
    assert _metric(estuary.metrics_url, moves) == before + 1


def test_a_job_that_cannot_be_preempted_is_never_touched(kube: Kube, jobs_ns: str) -> None:
    """The most-served job of the pool is not preemptible: the short job's turn comes from the
    preemptible one beside it, and the pinned job runs on, first attempt, untouched."""
    pinned = {**SHARING, "preemptible": False}
    kube.apply(_job("pinned", jobs_ns, 1, 600_000, preemption=pinned))
    _running(kube, jobs_ns, "pinned")
    kube.apply(_job("long", jobs_ns, 2, 600_000))
    _running(kube, jobs_ns, "long")
    time.sleep(SLICE_S + 1)
    kube.apply(_job("short", jobs_ns, 2, 3000))
    wait_for(lambda: kube.phase(jobs_ns, "short") == "Succeeded", timeout=90, what="short Succeeded")
    _running(kube, jobs_ns, "long", timeout=60)
    assert _outcomes(kube, jobs_ns, "long") == ["Yielded", "open"]
    status = kube.status(jobs_ns, "pinned")
    assert (status["phase"], status["attempt"]) == ("Running", 1)
    assert _outcomes(kube, jobs_ns, "pinned") == ["open"]
    assert not {"Yielded", "Preempted", "Migrating"} & set(_reasons(kube, jobs_ns, "pinned"))
