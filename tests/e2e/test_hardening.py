"""Hardening and ownership against a real API server: conditions that converge, jobs `kubectl wait`
can follow, workers the API server refuses, and pods that are not Estuary's (issues 16 and 17).

The same rules run through the fake API in tests/unit/control/test_isolation.py and
test_refusals.py; here the API server's own validation, owner references and watch events decide.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from devcluster import topology
from devcluster.clusters import Cluster
from tests.e2e.kube_helpers import GROUP, NVIDIA, VERSION, Kube, aijob
from tests.e2e.operator_process import OperatorProcess, wait_for


def _ready(kube: Kube, pool: str) -> dict[str, Any]:
    raw = kube.custom.get_cluster_custom_object(GROUP, VERSION, "computepools", pool)
    return next((c for c in (raw.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), {})


@pytest.fixture
def spare_pool(kube: Kube, estuary: OperatorProcess) -> Iterator[str]:
    pool = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ComputePool",
        "metadata": {"name": "spare"},
        "spec": {"vendor": "nvidia", "model": "L40", "nodeSelector": {"estuary.dev/node-pool": "spare"}},
    }
    kube.apply(pool)
    yield "spare"
    kube.kubectl("delete", "cpool", "spare", "--wait=false", check=False)
    kube.kubectl("delete", "node", "spare-0", "--wait=false", "--ignore-not-found", check=False)


def test_a_pool_reports_ready_once_the_cause_of_not_ready_is_removed(kube: Kube, spare_pool: str) -> None:
    wait_for(lambda: _ready(kube, spare_pool).get("reason") == "NoNodes", timeout=30, what="Ready=False")
    before = _ready(kube, spare_pool)
    assert before["status"] == "False" and "estuary.dev/node-pool=spare" in before["message"]
    assert before["observedGeneration"] == 1

    def warned() -> bool:
        events = kube.core.list_namespaced_event("default", field_selector="involvedObject.name=spare").items
        return any(e.reason == "NoNodes" and e.type == "Warning" for e in events)

    wait_for(warned, timeout=30, what="a NoNodes warning event on the pool")  # events follow the status
    spare = topology.NodePool("spare", 1, "nvidia", "L40", "nvidia.com/gpu", 8, cpu="64", memory="512Gi")
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(topology.render_node(spare, "spare-0")))
    wait_for(lambda: _ready(kube, spare_pool).get("status") == "True", timeout=60, what="Ready=True")
    status = kube.custom.get_cluster_custom_object(GROUP, VERSION, "computepools", spare_pool)["status"]
    assert status["capacity"] == 8 and [c["type"] for c in status["conditions"]] == ["Ready"]


def test_kubectl_wait_for_condition_succeeded(cluster: Cluster, kube: Kube, jobs_ns: str) -> None:
    kube.apply(aijob("waited", jobs_ns, [NVIDIA], annotations={"estuary.dev/sim-duration-ms": "3000"}))
    proc = cluster.kubectl(
        "wait", "--for=condition=Succeeded", "aij/waited", "-n", jobs_ns, "--timeout=90s", timeout=120
    )
    assert "condition met" in proc.stdout
    conditions = {c["type"]: c for c in kube.status(jobs_ns, "waited")["conditions"]}
    assert conditions["Succeeded"]["status"] == "True" and conditions["Running"]["status"] == "False"
    assert conditions["Admitted"]["observedGeneration"] == 1


def test_a_worker_the_api_server_refuses_holds_the_job_with_its_words_until_the_spec_changes(
    kube: Kube, jobs_ns: str
) -> None:
    kube.apply(aijob("badenv", jobs_ns, [NVIDIA], env=[{"name": "A=B", "value": "1"}]))
    wait_for(
        lambda: kube.status(jobs_ns, "badenv").get("reason") == "InvalidPodTemplate", timeout=30, what="held"
    )
    status = kube.status(jobs_ns, "badenv")
    assert status["phase"] == "Queued" and "placement" not in status and kube.pods(jobs_ns, "badenv") == []
    assert "the API server refused Pod" in status["message"] and "A=B" in status["message"]
    assert status["hold"]["generation"] == 1
    version = kube.job(jobs_ns, "badenv")["metadata"]["resourceVersion"]
    kube.custom.patch_namespaced_custom_object(
        GROUP, VERSION, jobs_ns, "aijobs", "badenv", {"spec": {"env": [{"name": "A", "value": "1"}]}}
    )
    assert version != kube.job(jobs_ns, "badenv")["metadata"]["resourceVersion"]
    wait_for(lambda: kube.phase(jobs_ns, "badenv") == "Running", timeout=60, what="fixed job Running")


def _tenant_pod(name: str, node: str, gpus: int, labels: dict[str, str]) -> dict[str, Any]:
    amount = {"nvidia.com/gpu": str(gpus), "cpu": "1", "memory": "1Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "nodeName": node,
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {"name": "c", "image": "busybox", "resources": {"requests": amount, "limits": amount}}
            ],
        },
    }


def test_a_pod_labelled_as_a_worker_counts_as_usage_and_a_taken_name_holds_the_job(
    kube: Kube, jobs_ns: str
) -> None:
    nodes = sorted(n["metadata"]["name"] for n in kube.nodes() if "h800" in n["metadata"]["name"])
    spoof = _tenant_pod("spoof", nodes[0], 8, {"estuary.dev/job-name": "somejob", "estuary.dev/attempt": "1"})
    kube.core.create_namespaced_pod(jobs_ns, spoof)
    taken = _tenant_pod("late-worker-0", nodes[1], 0, {"estuary.dev/job-name": "late"})
    kube.core.create_namespaced_pod(jobs_ns, taken)
    wait_for(lambda: _allocated(kube) == 8, timeout=60, what="the spoofing pod counted in h800")
    kube.apply(aijob("wide", jobs_ns, [NVIDIA], workers=3))
    wait_for(
        lambda: kube.status(jobs_ns, "wide").get("reason") == "InsufficientCapacity", timeout=30, what="wait"
    )
    kube.apply(aijob("late", jobs_ns, [NVIDIA], workers=1))
    wait_for(
        lambda: kube.status(jobs_ns, "late").get("reason") == "NameConflict", timeout=30, what="conflict"
    )
    status = kube.status(jobs_ns, "late")
    assert f"Pod {jobs_ns}/late-worker-0 already exists and is not this job's own" in status["message"]
    assert "placement" not in status
    kube.delete_job(jobs_ns, "wide")  # nothing waits ahead of it for the two free nodes
    kube.core.delete_namespaced_pod("late-worker-0", jobs_ns, grace_period_seconds=0)
    wait_for(
        lambda: kube.phase(jobs_ns, "late") == "Running", timeout=60, what="late Running once the pod went"
    )
    pod = kube.core.read_namespaced_pod("late-worker-0", jobs_ns)
    assert pod.metadata.owner_references[0].uid == kube.job(jobs_ns, "late")["metadata"]["uid"]
    assert nodes[0] not in kube.status(jobs_ns, "late")["placement"]["nodes"]
    kube.core.delete_namespaced_pod("spoof", jobs_ns, grace_period_seconds=0)


def _allocated(kube: Kube) -> int:
    raw = kube.custom.get_cluster_custom_object(GROUP, VERSION, "computepools", "h800")
    return int((raw.get("status") or {}).get("allocated") or 0)
