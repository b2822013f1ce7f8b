"""Every framework's default launcher starts a real 2-worker x 2-accelerator job.

Each test renders the job's two worker pods with Estuary's own renderer, runs them as local
processes (tests/framework/pods.py: their command, args and environment as the kubelet would give
them, each pod in a network namespace of its own), and checks what the framework says: the world
has 4 ranks 0..3, an all-reduce of rank+1 gives 10 everywhere, and every pod exits 0.

The only substitutions are named in each test's `overrides`: the collective runs on the CPU (gloo)
and, for JAX, the accelerators are CPU devices.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from estuary.api.aijob import AIJob
from estuary.kube import render
from estuary.vendors import profiles
from tests.framework import pods

SCRIPTS = Path(__file__).resolve().parent / "scripts"
WORKERS, PER_WORKER = 2, 2
WORLD = WORKERS * PER_WORKER
GLOO = {"ESTUARY_DIST_BACKEND": "gloo"}


def job(framework: str, args: list[str], **spec: Any) -> AIJob:
    return AIJob.model_validate(
        {
            "metadata": {"name": f"fw-{framework}", "namespace": "physics", "uid": "u-1"},
            "spec": {
                "framework": framework,
                "workers": WORKERS,
                "acceleratorsPerWorker": PER_WORKER,
                "accelerators": [{"vendor": "nvidia", "image": "local-venv"}],
                "masterPort": 29500,
                "args": args,
                **spec,
            },
        }
    )


def worker_pods(aijob: AIJob, attempt: int = 0, vendor: str = "nvidia") -> list[dict[str, Any]]:
    profile = profiles()[vendor]
    return [
        render.worker_pod(
            aijob,
            aijob.spec.accelerators[0],
            profile,
            profile.default_resource,
            "pool",
            f"node-{r}",
            r,
            WORKERS,
            attempt,
            [],
        )
        for r in range(WORKERS)
    ]


def run(
    pods_: list[dict[str, Any]], image_bin: Path, tmp: Path, overrides: dict[str, str], **kw: Any
) -> list[pods.Result]:
    results = pods.run_pods(pods_, image_bin, tmp / "pods", overrides, **kw)
    for r in results:
        assert r.returncode == 0, f"{r.name} exited {r.returncode}:\n{r.output[-4000:]}"
    return results


def records(out: Path) -> dict[int, dict[str, Any]]:
    found = [json.loads(p.read_text()) for p in sorted(out.glob("rank-*.json"))]
    return {r["rank"]: r for r in found}


def assert_world_formed(out: Path) -> dict[int, dict[str, Any]]:
    by_rank = records(out)
    assert sorted(by_rank) == list(range(WORLD)), f"ranks seen: {sorted(by_rank)}"
    for r in by_rank.values():
        assert r["world"] == WORLD and r["sum"] == sum(range(1, WORLD + 1)), r
    return by_rank


def test_pytorch_torchrun_forms_the_world(image_bin: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(
        worker_pods(job("pytorch", [str(SCRIPTS / "torch_allreduce.py"), "--out", str(out)])),
        image_bin,
        tmp_path,
        GLOO,
    )
    by_rank = assert_world_formed(out)
    assert sorted(r["local_rank"] for r in by_rank.values()) == [0, 0, 1, 1]


def test_deepspeed_forms_the_world_without_ssh(image_bin: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [str(SCRIPTS / "torch_allreduce.py"), "--deepspeed", "--out", str(out)]
    # The accelerator substitution for DeepSpeed: its CPU accelerator in place of CUDA (with cuda,
    # DeepSpeed binds each rank to cuda:LOCAL_RANK, which this machine lacks).
    run(worker_pods(job("deepspeed", args)), image_bin, tmp_path, {**GLOO, "DS_ACCELERATOR": "cpu"})
    assert_world_formed(out)


def test_jax_initializes_from_estuarys_environment(image_bin: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cpu = {
        "JAX_PLATFORMS": "cpu",
        "JAX_NUM_CPU_DEVICES": str(PER_WORKER),  # the worker's accelerators, as CPU devices
        "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",
    }
    run(
        worker_pods(job("jax", [str(SCRIPTS / "jax_allreduce.py"), "--out", str(out)])),
        image_bin,
        tmp_path,
        cpu,
    )
    by_rank = assert_world_formed(out)
    assert sorted(r["process"] for r in by_rank.values()) == [0, 0, 1, 1]  # one process per worker


def test_mindspore_msrun_waits_for_the_masters_name_and_forms_the_world(
    image_bin: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    aijob = job("mindspore", [str(SCRIPTS / "mindspore_allreduce.py"), "--out", str(out)])
    # The headless Service publishes worker 0's name 5 s after the pods start: msrun alone would
    # exit on the first failed lookup; Estuary's launcher waits for it.
    results = run(worker_pods(aijob, vendor="huawei"), image_bin, tmp_path, {}, publish_after=5)
    assert any("resolved after" in r.output for r in results)
    assert_world_formed(out)


def test_custom_command_starts_one_process_per_accelerator_from_the_documented_variables(
    image_bin: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    script = f"python3 {SCRIPTS / 'torch_allreduce.py'} --out {out}"
    # docs/jobs.md, "framework: custom": the command starts LOCAL_WORLD_SIZE processes; process i
    # has global rank RANK+i and local rank i (torch's env:// reads MASTER_*, RANK, WORLD_SIZE).
    command = [
        "sh",
        "-c",
        "pids=''; for i in $(seq 0 $((LOCAL_WORLD_SIZE - 1))); do "
        f'LOCAL_RANK=$i RANK=$((RANK + i)) {script} & pids="$pids $!"; done; '
        "rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc",
    ]
    run(worker_pods(job("custom", [], command=command)), image_bin, tmp_path, GLOO)
    by_rank = assert_world_formed(out)
    assert sorted(r["local_rank"] for r in by_rank.values()) == [0, 0, 1, 1]


def test_pytorch_job_evicted_with_sigterm_resumes_from_its_checkpoint(
    image_bin: Path, tmp_path: Path
) -> None:
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    ckpt.mkdir()
    args = [str(SCRIPTS / "torch_allreduce.py"), "--out", str(out), "--steps", "200", "--step-seconds", "0.1"]
    template = {"spec": {"volumes": [{"name": "ckpt", "emptyDir": {}}]}}
    # The checkpoint volume is a directory both pods share (a ReadWriteMany PVC in a cluster).
    aijob = job("pytorch", args, template=template, checkpoint={"volume": "ckpt", "mountPath": str(ckpt)})

    evicted = worker_pods(aijob, attempt=0)
    with _evict_when(ckpt / "state.pt", tmp_path / "pods-0"):
        pods.run_pods(evicted, image_bin, tmp_path / "pods-0", GLOO, timeout=300)
    first = records(out)
    assert sorted(first) == list(range(WORLD)) and all(r["stopped"] for r in first.values()), first
    stopped_at = first[0]["step"]
    assert 0 < stopped_at < 200

    run(worker_pods(aijob, attempt=1), image_bin, tmp_path, GLOO)
    resumed = [json.loads(p.read_text()) for p in sorted(out.glob("rank-*-attempt-1.json"))]
    assert len(resumed) == WORLD
    assert {r["resumed_from"] for r in resumed} == {stopped_at} and {r["step"] for r in resumed} == {200}


class _evict_when:
    """Once the first checkpoint exists, SIGTERM every pod's launcher, as the kubelet does when
    Estuary deletes a pod (the grace period is spec.preemption.gracePeriodSeconds)."""

    def __init__(self, marker: Path, pods_dir: Path) -> None:
        self.marker, self.pods_dir = marker, pods_dir

    def __enter__(self) -> None:
        import threading

        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        deadline = time.monotonic() + 240
        while not self.marker.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in pods.launcher_pids(self.pods_dir):
            os.kill(pid, signal.SIGTERM)

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.mark.parametrize("text,expected", [("--n=$(A)", "--n=1"), ("$$(A)", "$(A)"), ("$(B)", "$(B)")])
def test_kubelet_expansion_is_faithful(text: str, expected: str) -> None:
    assert pods.expand(text, {"A": "1"}) == expected
