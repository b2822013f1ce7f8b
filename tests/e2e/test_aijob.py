"""An AIJob runs whole, on the accelerator type that finishes it soonest, with the right env."""

from __future__ import annotations

from collections import Counter
from typing import Any

from devcluster.clusters import Cluster
from tests.e2e.kube_helpers import ASCEND, NVIDIA, Kube, aijob, env_of
from tests.e2e.operator_process import OperatorProcess, wait_for


def running(kube: Kube, ns: str, name: str, timeout: float = 60) -> dict[str, Any]:
    wait_for(lambda: kube.phase(ns, name) == "Running", timeout=timeout, what=f"{name} Running")
    return kube.status(ns, name)


def test_job_accepting_both_types_lands_on_the_faster_nvidia_pool_with_nvidia_env(
    kube: Kube, jobs_ns: str
) -> None:
    kube.apply(aijob("both", jobs_ns, [ASCEND, NVIDIA], workers=2))
    status = running(kube, jobs_ns, "both")
    assert status["placement"]["pool"] == "h800" and status["accelerator"] == "nvidia/H800"
    pods = sorted(kube.pods(jobs_ns, "both"), key=lambda p: p["metadata"]["name"])
    assert [p["spec"]["nodeName"] for p in pods] == status["placement"]["nodes"]
    for rank, pod in enumerate(pods):
        env = env_of(pod)
        assert env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3,4,5,6,7"
        assert env["ESTUARY_COLLECTIVE"] == "NCCL"
        assert (env["WORLD_SIZE"], env["NODE_RANK"], env["LOCAL_WORLD_SIZE"]) == ("16", str(rank), "8")
        assert env["MASTER_ADDR"] == f"both-worker-0.both.{jobs_ns}.svc"
        container = pod["spec"]["containers"][0]
        assert container["image"] == NVIDIA["image"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert container["resources"]["requests"] == container["resources"]["limits"]
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "AIJob"
    assert kube.core.read_namespaced_service("both", jobs_ns).spec.cluster_ip == "None"


def test_ascend_job_gets_hccl_settings_and_world_size_of_all_processes(kube: Kube, jobs_ns: str) -> None:
    kube.apply(aijob("npu", jobs_ns, [ASCEND], workers=2, framework="mindspore"))
    status = running(kube, jobs_ns, "npu")
    assert status["placement"]["pool"] == "ascend"
    for pod in kube.pods(jobs_ns, "npu"):
        env = env_of(pod)
        assert env["ASCEND_RT_VISIBLE_DEVICES"] == "0,1,2,3,4,5,6,7"
        assert env["ESTUARY_COLLECTIVE"] == "HCCL" and env["ESTUARY_DIST_BACKEND"] == "hccl"
        assert env["WORLD_SIZE"] == "16" and env["LOCAL_WORLD_SIZE"] == "8"
        command = pod["spec"]["containers"][0]["command"]
        assert "msrun" in command and "--worker_num=$(WORLD_SIZE)" in command  # msrun sets MS_* itself
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        assert limits["huawei.com/Ascend910"] == "8" and "nvidia.com/gpu" not in limits


def test_gang_that_does_not_fit_waits_holding_nothing_then_starts_when_capacity_frees(
    kube: Kube, jobs_ns: str
) -> None:
    kube.apply(aijob("filler", jobs_ns, [NVIDIA], workers=3))
    running(kube, jobs_ns, "filler")
    kube.apply(aijob("gang", jobs_ns, [NVIDIA], workers=2))
    wait_for(
        lambda: kube.status(jobs_ns, "gang").get("reason") == "InsufficientCapacity",
        timeout=30,
        what="gang to wait for capacity",
    )
    status = kube.status(jobs_ns, "gang")
    assert status["phase"] == "Queued" and "placement" not in status
    assert "nvidia.com/gpu" in status["message"] and "h800" in status["message"]
    assert status["queuePosition"] == 1
    assert kube.pods(jobs_ns, "gang") == []
    kube.delete_job(jobs_ns, "filler")
    status = running(kube, jobs_ns, "gang", timeout=90)
    assert len(kube.pods(jobs_ns, "gang")) == 2


def test_workers_that_all_succeed_make_the_job_succeeded_then_ttl_deletes_it(
    kube: Kube, jobs_ns: str
) -> None:
    kube.apply(
        aijob(
            "ok",
            jobs_ns,
            [NVIDIA],
            workers=2,
            per_worker=4,
            ttlSecondsAfterFinished=5,
            annotations={"estuary.dev/sim-duration-ms": "3000"},
        )
    )
    wait_for(lambda: kube.phase(jobs_ns, "ok") == "Succeeded", timeout=90, what="ok Succeeded")
    status = kube.status(jobs_ns, "ok")
    assert status["completionTime"] and status["startTime"]
    assert status["placement"]["pool"] == "h800"  # where it ran stays on record
    reasons = {e["reason"] for e in kube.events(jobs_ns, "ok")}
    assert "Succeeded" in reasons and not {"Admitted", "Started"} & reasons  # no happy-path events
    conditions = {c["type"]: c for c in status["conditions"]}  # they say it, with the time
    assert (
        conditions["Admitted"]["status"] == "True"
        and "admitted to pool h800" in conditions["Admitted"]["message"]
    )
    assert conditions["Running"]["reason"] == "Succeeded" and conditions["Succeeded"]["status"] == "True"

    def deleted() -> bool:
        return not any(
            j["metadata"]["name"] == "ok"
            for j in kube.custom.list_namespaced_custom_object("estuary.dev", "v1alpha1", jobs_ns, "aijobs")[
                "items"
            ]
        )

    wait_for(deleted, timeout=60, what="the job deleted by its time-to-live")


def test_failing_worker_restarts_the_whole_gang_then_fails_with_the_cause(kube: Kube, jobs_ns: str) -> None:
    kube.apply(
        aijob(
            "bad",
            jobs_ns,
            [ASCEND],
            workers=2,
            per_worker=2,
            annotations={"estuary.dev/sim-fail-after-ms": "1500"},
            restartPolicy={"maxRestarts": 1, "backoffSeconds": 1},
        )
    )
    wait_for(lambda: kube.phase(jobs_ns, "bad") == "Failed", timeout=120, what="bad Failed")
    status = kube.status(jobs_ns, "bad")
    assert status["restarts"] == 1 and status["attempt"] == 2
    assert status["reason"] == "WorkerFailed"
    assert "exited with code 1" in status["message"] and "limit 1" in status["message"]
    reasons = Counter(e["reason"] for e in kube.events(jobs_ns, "bad"))
    assert reasons["Restarting"] >= 1 and reasons["Failed"] >= 1


def test_deleting_a_job_removes_its_pods_and_service(kube: Kube, jobs_ns: str) -> None:
    kube.apply(aijob("gone", jobs_ns, [NVIDIA], workers=1))
    running(kube, jobs_ns, "gone")
    kube.delete_job(jobs_ns, "gone")
    wait_for(lambda: not kube.pods(jobs_ns, "gone"), timeout=60, what="pods deleted")
    wait_for(lambda: not kube.core.list_namespaced_service(jobs_ns).items, timeout=60, what="service deleted")


def test_suspend_releases_the_gang_and_resume_requeues_it(kube: Kube, jobs_ns: str) -> None:
    kube.apply(aijob("pause", jobs_ns, [NVIDIA], workers=1))
    running(kube, jobs_ns, "pause")
    kube.apply(aijob("pause", jobs_ns, [NVIDIA], workers=1, suspend=True))
    wait_for(
        lambda: (
            kube.phase(jobs_ns, "pause") == "Suspended" and "placement" not in kube.status(jobs_ns, "pause")
        ),
        timeout=60,
        what="suspended",
    )
    assert kube.pods(jobs_ns, "pause") == []
    kube.apply(aijob("pause", jobs_ns, [NVIDIA], workers=1, suspend=False))
    running(kube, jobs_ns, "pause")


def test_kubectl_get_aij_shows_phase_accelerator_workers_pool_reason_and_age(
    cluster: Cluster, kube: Kube, jobs_ns: str
) -> None:
    kube.apply(aijob("shown", jobs_ns, [NVIDIA], workers=1))
    kube.apply(aijob("huge", jobs_ns, [NVIDIA], workers=9))
    running(kube, jobs_ns, "shown")
    wait_for(lambda: kube.status(jobs_ns, "huge").get("reason"), timeout=30, what="huge reason")
    out = cluster.kubectl("get", "aij", "-n", jobs_ns).stdout
    header = out.splitlines()[0].split()
    assert header[:7] == ["NAME", "PHASE", "ACCELERATOR", "WORKERS", "POOL", "CLUSTER", "REASON"]
    assert header[-1] == "AGE"
    shown = next(line for line in out.splitlines() if line.startswith("shown"))
    assert "Running" in shown and "nvidia/H800" in shown and "h800" in shown and "local" in shown
    huge = next(line for line in out.splitlines() if line.startswith("huge"))
    assert "Queued" in huge and "NeverFits" in huge


def test_operator_killed_during_admission_never_duplicates_or_overbooks(
    kube: Kube, jobs_ns: str, estuary: OperatorProcess
) -> None:
    names = [f"batch-{i}" for i in range(8)]
    for i, name in enumerate(names):  # 8 jobs x 2 workers x 4 = 64 accelerators > 48 present
        kube.apply(
            aijob(
                name,
                jobs_ns,
                [NVIDIA, ASCEND] if i % 2 else [ASCEND, NVIDIA],
                workers=2,
                per_worker=4,
                annotations={"estuary.dev/sim-duration-ms": "8000"},
            )
        )
    wait_for(lambda: kube.pods(jobs_ns), timeout=60, what="first pods")
    estuary.kill()
    estuary.start()
    seen_over: list[str] = []

    def check_and_done() -> bool:
        pods = [p for p in kube.pods(jobs_ns) if p["status"].get("phase") not in ("Succeeded", "Failed")]
        names_seen = Counter(p["metadata"]["name"] for p in pods)
        assert all(c == 1 for c in names_seen.values())
        per_node: Counter[str] = Counter()
        for pod in pods:
            limits = pod["spec"]["containers"][0]["resources"]["limits"]
            for res in ("nvidia.com/gpu", "huawei.com/Ascend910"):
                if pod["spec"].get("nodeName") and res in limits:
                    per_node[pod["spec"]["nodeName"]] += int(limits[res])
        seen_over.extend(n for n, used in per_node.items() if used > 8)
        return all(kube.phase(jobs_ns, n) == "Succeeded" for n in names)

    wait_for(check_and_done, timeout=240, interval=1, what="every batch job to succeed")
    assert not seen_over, f"nodes over their allocatable: {seen_over}"
    for name in names:
        assert kube.status(jobs_ns, name)["attempt"] == 1
