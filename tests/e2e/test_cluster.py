"""The local control plane itself: simulated accelerator nodes, real scheduling, kwok Stages.

These tests pin down what the operator's e2e tests rely on: the ci cluster's node shape, that
kube-scheduler binds pods that fit (and respects taints), that Estuary's kwok Stages finish
worker pods after the simulated duration or fail them, and that a second cluster can run next to
the first (federation).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from devcluster.clusters import Cluster
from devcluster.topology import ClusterSpec, NodePool


def get_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def wait_pod(
    cluster: Cluster, ns: str, name: str, done: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    pod: dict[str, Any] = {}
    while time.monotonic() < deadline:
        pod = get_json(cluster, "pod", name, "-n", ns)
        if done(pod):
            return pod
        time.sleep(0.3)
    raise AssertionError(
        f"pod {ns}/{name} did not get there in {timeout}s; status: {json.dumps(pod.get('status'), indent=1)}"
    )


def phase(value: str) -> Callable[[dict[str, Any]], bool]:
    return lambda pod: pod.get("status", {}).get("phase") == value


def make_pod(
    cluster: Cluster,
    ns: str,
    name: str,
    *,
    vendor: str = "nvidia",
    resource: str = "nvidia.com/gpu",
    count: int = 1,
    tolerate: bool = True,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> None:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}, "annotations": annotations or {}},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"estuary.dev/vendor": vendor},
            "containers": [
                {
                    "name": "main",
                    "image": "example.invalid/worker:1",
                    "resources": {
                        "requests": {resource: str(count), "cpu": "1"},
                        "limits": {resource: str(count), "cpu": "1"},
                    },
                }
            ],
        },
    }
    if tolerate:
        pod["spec"]["tolerations"] = [
            {"key": "estuary.dev/accelerator", "operator": "Equal", "value": vendor, "effect": "NoSchedule"}
        ]
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))


def test_ci_nodes_show_accelerators(cluster: Cluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in get_json(cluster, "nodes")["items"]}
    assert sorted(nodes) == ["ascend-0", "ascend-1", "ascend-2", "h800-0", "h800-1", "h800-2"]
    for name, node in nodes.items():
        alloc, labels = node["status"]["allocatable"], node["metadata"]["labels"]
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", name
        assert (alloc["cpu"], alloc["memory"], alloc["pods"]) == ("64", "512Gi", "110")
        assert labels["kubernetes.io/hostname"] == name
        assert labels["type"] == "kwok"
        if name.startswith("h800"):
            assert alloc["nvidia.com/gpu"] == "8"
            assert node["status"]["capacity"]["nvidia.com/gpu"] == "8"
            assert (labels["estuary.dev/vendor"], labels["estuary.dev/model"]) == ("nvidia", "H800")
        else:
            assert alloc["huawei.com/Ascend910"] == "8"
            assert (labels["estuary.dev/vendor"], labels["estuary.dev/model"]) == ("huawei", "Ascend910B")
        assert [t["key"] for t in node["spec"]["taints"]] == ["estuary.dev/accelerator"]

    # The same through kubectl's table output, as a user would see it.
    out = cluster.kubectl(
        "get",
        "nodes",
        "-o",
        "custom-columns=N:.metadata.name,G:.status.allocatable.nvidia\\.com/gpu,"
        "A:.status.allocatable.huawei\\.com/Ascend910",
        "--no-headers",
    ).stdout
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert rows["h800-0"] == ["8", "<none>"]
    assert rows["ascend-2"] == ["<none>", "8"]


def test_gpu_pod_is_bound_by_scheduler_and_runs(cluster: Cluster, namespace: str) -> None:
    make_pod(cluster, namespace, "gpu")
    pod = wait_pod(cluster, namespace, "gpu", phase("Running"))
    assert pod["spec"]["nodeName"].startswith("h800-")
    assert pod["status"]["containerStatuses"][0]["state"].get("running") is not None
    # Without the toleration the accelerator taint keeps it off every node.
    make_pod(cluster, namespace, "untolerated", tolerate=False)
    pod = wait_pod(
        cluster,
        namespace,
        "untolerated",
        lambda p: any(
            c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
            for c in p.get("status", {}).get("conditions", [])
        ),
    )
    assert "nodeName" not in pod["spec"]
    # More accelerators than any node has: unschedulable too.
    make_pod(cluster, namespace, "too-big", vendor="huawei", resource="huawei.com/Ascend910", count=9)
    wait_pod(
        cluster,
        namespace,
        "too-big",
        lambda p: any(
            c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
            for c in p.get("status", {}).get("conditions", [])
        ),
    )


def _seconds(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def test_worker_succeeds_after_simulated_duration(cluster: Cluster, namespace: str) -> None:
    make_pod(
        cluster,
        namespace,
        "w0",
        vendor="huawei",
        resource="huawei.com/Ascend910",
        count=8,
        labels={"estuary.dev/job-name": "job1"},
        annotations={"estuary.dev/sim-duration-ms": "3000"},
    )
    running = wait_pod(cluster, namespace, "w0", phase("Running"))
    assert running["spec"]["nodeName"].startswith("ascend-")
    done = wait_pod(cluster, namespace, "w0", lambda p: p["status"]["phase"] != "Running")
    assert done["status"]["phase"] == "Succeeded"
    term = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (0, "Completed")
    # Timestamps have one-second resolution: 3 s of simulated work shows as at least 2 s.
    assert _seconds(term["finishedAt"]) - _seconds(running["status"]["startTime"]) >= 2


def test_worker_fails_after_simulated_time(cluster: Cluster, namespace: str) -> None:
    make_pod(
        cluster,
        namespace,
        "w0",
        labels={"estuary.dev/job-name": "job2"},
        annotations={"estuary.dev/sim-fail-after-ms": "500"},
    )
    done = wait_pod(cluster, namespace, "w0", phase("Failed"))
    term = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (1, "Error")
    # Both annotations: the failure wins.
    make_pod(
        cluster,
        namespace,
        "w1",
        labels={"estuary.dev/job-name": "job2"},
        annotations={"estuary.dev/sim-fail-after-ms": "500", "estuary.dev/sim-duration-ms": "500"},
    )
    assert wait_pod(cluster, namespace, "w1", phase("Failed"))["status"]["phase"] == "Failed"


def test_pods_without_simulation_annotations_keep_running(cluster: Cluster, namespace: str) -> None:
    make_pod(cluster, namespace, "plain-worker", labels={"estuary.dev/job-name": "job3"})
    # The annotation alone does not finish a pod that is not an Estuary worker.
    make_pod(cluster, namespace, "not-a-worker", annotations={"estuary.dev/sim-duration-ms": "200"})
    # A value that is not whole milliseconds is ignored rather than read as 0 ms.
    make_pod(
        cluster,
        namespace,
        "bad-value",
        labels={"estuary.dev/job-name": "job3"},
        annotations={"estuary.dev/sim-duration-ms": "1.5s"},
    )
    names = ("plain-worker", "not-a-worker", "bad-value")
    for name in names:
        wait_pod(cluster, namespace, name, phase("Running"))
    time.sleep(3)
    for name in names:
        assert get_json(cluster, "pod", name, "-n", namespace)["status"]["phase"] == "Running"


def test_second_cluster_runs_alongside(
    cluster: Cluster, cluster_factory: Callable[[str | ClusterSpec], Cluster]
) -> None:
    spec = ClusterSpec(
        name="second",
        jurisdiction="mainland",
        node_pools=(
            NodePool(
                name="a800",
                count=1,
                vendor="nvidia",
                model="A800",
                resource="nvidia.com/gpu",
                accelerators_per_node=4,
                cpu="32",
                memory="256Gi",
            ),
        ),
    )
    partner = cluster_factory(spec)
    assert partner.kubeconfig != cluster.kubeconfig
    servers = {
        json.loads(c.kubectl("config", "view", "--raw", "-o", "json").stdout)["clusters"][0]["cluster"][
            "server"
        ]
        for c in (cluster, partner)
    }
    assert len(servers) == 2 and all(s.startswith("https://127.0.0.1:") for s in servers)
    partner_nodes = get_json(partner, "nodes")["items"]
    assert [n["metadata"]["name"] for n in partner_nodes] == ["a800-0"]
    assert partner_nodes[0]["status"]["allocatable"]["nvidia.com/gpu"] == "4"
    assert len(get_json(cluster, "nodes")["items"]) == 6  # the first cluster is untouched
    # Both answer through the Python client too.
    from kubernetes import client

    for c in (cluster, partner):
        with c.api_client() as api:
            assert client.CoreV1Api(api).list_node().items


def test_kubeconfig_is_self_contained(cluster: Cluster) -> None:
    """Certificates are embedded, so the file can go into a Secret (FederationLink credentials)."""
    conf = json.loads(cluster.kubectl("config", "view", "--raw", "-o", "json").stdout)
    assert "certificate-authority-data" in conf["clusters"][0]["cluster"]
    assert "client-certificate-data" in conf["users"][0]["user"]
    assert "client-key-data" in conf["users"][0]["user"]
