"""Agentless partners end to end: a provider cluster WITHOUT Estuary (no CRDs, no operator), where
the home cluster's operator creates the workers itself, reached with kubeconfigs whose RBAC allows
one namespace each.

The provider ("cloud", mainland) has 4 H800 nodes and three namespaces, each with a ResourceQuota
of 32 GPUs: guangzhou (link cloud-gz, cluster gz), beijing (link cloud-bj) and partitioned (link
cloud-px, reached through a TCP proxy the test can cut). kwok plays the provider's kubelets; for
the partition test a stand-in kubelet runs the fenced pods as real processes
(tests/e2e/provider_tools.py), so the fence really stops the workers.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.clusters import Cluster
from devcluster.topology import ClusterSpec, NodePool, Taint
from tests import podsim
from tests.e2e.kube_helpers import GROUP, NVIDIA, VERSION, Kube, aijob
from tests.e2e.operator_process import OperatorProcess, wait_for
from tests.e2e.provider_tools import KubeletStandIn, TcpProxy, token_kubeconfig

HOME_NS = "estuary-system"
NAMESPACES = ("guangzhou", "beijing", "partitioned")
LEASE, HEARTBEAT, MARGIN = 30, 5, 21  # lease.margin(30, 0)
OFFER = {
    "vendor": "nvidia",
    "model": "H800",
    "nodeSelector": {"cloud.example/gpu": "h800"},
    "tolerations": [{"key": "cloud.example/gpu", "operator": "Exists"}],
}
EDIT = ["get", "list", "watch", "create", "patch", "delete"]
ROLE_RULES = [
    {"apiGroups": [""], "resources": ["pods", "services", "configmaps"], "verbs": EDIT},
    {"apiGroups": [""], "resources": ["resourcequotas"], "verbs": ["get", "list"]},
]


def _provider_spec() -> ClusterSpec:
    gpu = NodePool(
        name="gpu",
        count=4,
        vendor="nvidia",
        model="H800",
        resource="nvidia.com/gpu",
        accelerators_per_node=8,
        cpu="64",
        memory="512Gi",
        labels={"cloud.example/gpu": "h800"},
        taints=(Taint("cloud.example/gpu", "NoSchedule", "h800"),),
    )
    return ClusterSpec(name="cloud", jurisdiction="mainland", node_pools=(gpu,))


def _namespace(handle: Cluster, kube: Kube, ns: str) -> dict[str, str]:
    """A provider namespace: its quota, the origin's identity (edit-like rights there only) and
    the workers' (may read ConfigMaps: the fence reads its lease). Returns their tokens."""
    handle.kubectl("create", "namespace", ns, check=False)
    amounts = {"requests.nvidia.com/gpu": "32", "requests.cpu": "256", "requests.memory": "2Ti"}
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "gpus", "namespace": ns},
            "spec": {"hard": amounts},
        }
    )
    tokens = {}
    for sa, rules in (
        ("estuary-origin", ROLE_RULES),
        ("estuary-workers", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
    ):
        handle.kubectl("create", "serviceaccount", sa, "-n", ns, check=False)
        kube.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": sa, "namespace": ns},
                "rules": rules,
            }
        )
        kube.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": sa, "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
                "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
            }
        )
        tokens[sa] = handle.kubectl("create", "token", sa, "-n", ns, "--duration=4h").stdout.strip()
    return tokens


class Provider:
    def __init__(
        self, handle: Cluster, kube: Kube, tokens: dict[str, dict[str, str]], proxy: TcpProxy
    ) -> None:
        self.handle, self.kube, self.tokens, self.proxy = handle, kube, tokens, proxy

    def kubeconfig(self, ns: str, sa: str = "estuary-origin", proxied: bool = False) -> str:
        server = f"https://127.0.0.1:{self.proxy.port}" if proxied else None
        return token_kubeconfig(self.handle.kubeconfig, self.tokens[ns][sa], server)

    def configmaps(self, ns: str) -> list[dict[str, Any]]:
        return [
            self.kube.api.sanitize_for_serialization(c)
            for c in self.kube.core.list_namespaced_config_map(
                ns, label_selector="estuary.dev/origin-cluster"
            ).items
        ]

    def pods(self, ns: str) -> list[dict[str, Any]]:
        listed = self.kube.core.list_namespaced_pod(ns)
        return [self.kube.api.sanitize_for_serialization(p) for p in listed.items]


@pytest.fixture(scope="module")
def provider(cluster_factory: Callable[[str | ClusterSpec], Cluster]) -> Iterator[Provider]:
    handle = cluster_factory(_provider_spec())
    kube = Kube(handle.api_client(), handle.kubectl)
    tokens = {ns: _namespace(handle, kube, ns) for ns in NAMESPACES}
    port = int(
        yaml.safe_load(handle.kubeconfig.read_text())["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1]
    )
    proxy = TcpProxy(port)
    yield Provider(handle, kube, tokens, proxy)
    proxy.close()


def _link(name: str, ns: str, tenant: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FederationLink",
        "metadata": {"name": name, "namespace": HOME_NS},
        "spec": {
            "mode": "Agentless",
            "kubeconfigSecretRef": {"name": f"{name}-kubeconfig"},
            "jurisdiction": "mainland",
            "remoteNamespace": ns,
            "provider": {"offers": [OFFER], "kueueQueue": "team-a", "serviceAccountName": "estuary-workers"},
            "allowedTenants": [tenant],
            "allowedResidency": ["any", "mainland"],
            "budgets": [{"tenant": tenant, "budget": 100000}],
            "costs": [{"vendor": "nvidia", "costPerAcceleratorHour": 2.0}],
            "network": {"egressCostPerGB": 0.1},
            "burst": {"afterSeconds": 600, "whenNeverFits": True},
            "leaseSeconds": LEASE,
            "heartbeatSeconds": HEARTBEAT,
            **spec,
        },
    }


def _secret(name: str, kubeconfig: str) -> dict[str, Any]:
    data = {"kubeconfig": base64.b64encode(kubeconfig.encode()).decode()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": HOME_NS},
        "data": data,
    }


def link_status(kube: Kube, name: str) -> dict[str, Any]:
    obj = kube.custom.get_namespaced_custom_object(GROUP, VERSION, HOME_NS, "federationlinks", name)
    return dict(obj.get("status") or {})


@pytest.fixture(scope="module")
def links(cluster: Cluster, kube: Kube, estuary: OperatorProcess, provider: Provider) -> Iterator[list[str]]:
    cluster.kubectl("create", "namespace", HOME_NS, check=False)
    made = []
    for name, ns, tenant, spec in (
        ("cloud-gz", "guangzhou", "default", {"clusterName": "gz"}),
        ("cloud-bj", "beijing", "default", {"clusterName": "bj"}),
        ("cloud-px", "partitioned", "px", {}),
    ):
        kube.apply(_secret(f"{name}-kubeconfig", provider.kubeconfig(ns, proxied=name == "cloud-px")))
        kube.apply(_link(name, ns, tenant, **spec))
        made.append(name)
    for name in made:
        try:
            wait_for(
                lambda n=name: link_status(kube, n).get("reachable"),
                timeout=60,
                what=f"link {name} reachable",
            )
        except AssertionError:
            pytest.fail(f"{link_status(kube, name)}\n{estuary.log_tail()}", pytrace=False)
    yield made
    for name in made:
        kube.custom.delete_namespaced_custom_object(GROUP, VERSION, HOME_NS, "federationlinks", name)
        kube.core.delete_namespaced_secret(f"{name}-kubeconfig", HOME_NS)


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def test_the_provider_runs_no_estuary_and_its_credentials_reach_one_namespace(provider: Provider) -> None:
    assert provider.handle.kubectl("get", "crd", "aijobs.estuary.dev", check=False).returncode != 0
    scoped = provider.handle.kubeconfig.parent / "origin-guangzhou.kubeconfig"
    scoped.write_text(provider.kubeconfig("guangzhou"))
    own = provider.handle.kubectl("--kubeconfig", str(scoped), "get", "pods", "-n", "guangzhou", check=False)
    other = provider.handle.kubectl("--kubeconfig", str(scoped), "get", "pods", "-n", "beijing", check=False)
    nodes = provider.handle.kubectl("--kubeconfig", str(scoped), "get", "nodes", check=False)
    assert own.returncode == 0 and other.returncode != 0 and "forbidden" in other.stderr.lower()
    assert nodes.returncode != 0


def test_a_job_bursts_to_the_agentless_provider_and_completes_there(
    kube: Kube, jobs_ns: str, links: list[str], provider: Provider
) -> None:
    kube.apply(
        aijob(
            "cloudy",
            jobs_ns,
            [NVIDIA],
            workers=4,
            burst={"enabled": True},
            annotations={"estuary.dev/sim-duration-ms": "8000"},
        )
    )
    wait_for(
        lambda: (kube.status(jobs_ns, "cloudy").get("placement") or {}).get("link"),
        timeout=30,
        what="cloudy sent",
    )
    link = kube.status(jobs_ns, "cloudy")["placement"]["link"]
    ns = {"cloud-gz": "guangzhou", "cloud-bj": "beijing"}[link]
    wait_for(
        lambda: kube.phase(jobs_ns, "cloudy") == "Running", timeout=60, what="cloudy Running at the provider"
    )
    pods = [
        p for p in provider.pods(ns) if p["metadata"]["labels"].get("estuary.dev/origin-name") == "cloudy"
    ]
    assert len(pods) == 4
    for pod in pods:
        spec = pod["spec"]
        assert "affinity" not in spec and spec["nodeSelector"] == {"cloud.example/gpu": "h800"}
        assert spec["nodeName"].startswith("estuary-cloud") or spec["nodeName"]  # placed by the provider
        assert [c["name"] for c in spec["initContainers"]] == ["fence-wait", "fence"]
        assert pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ConfigMap"
    status = kube.status(jobs_ns, "cloudy")
    assert status["placement"]["pool"] == ns and len(set(status["placement"]["nodes"])) == 4
    assert kube.pods(jobs_ns, "cloudy") == []  # nothing at home
    network = link_status(kube, link)["network"]
    assert network["rttMilliseconds"] > 0 and network["bandwidthMbps"] > 0
    capacity = link_status(kube, link)["capacity"]
    assert capacity[0]["capacity"] == 32  # from the namespace's ResourceQuota: its nodes are unreadable
    wait_for(lambda: kube.phase(jobs_ns, "cloudy") == "Succeeded", timeout=60, what="cloudy Succeeded")
    spent = wait_for(
        lambda: sum(e.get("spend", 0) for e in link_status(kube, link).get("spend") or []),
        timeout=20,
        what="spend",
    )
    assert spent > 0
    kube.delete_job(jobs_ns, "cloudy")
    wait_for(
        lambda: not provider.configmaps(ns) and not provider.pods(ns),
        timeout=60,
        what="the attempt removed at the provider",
    )


def test_a_job_whose_data_is_in_guangzhou_prefers_the_guangzhou_partner(
    kube: Kube, jobs_ns: str, links: list[str], provider: Provider
) -> None:
    data = [{"name": "ct-scans", "cluster": "gz", "jurisdiction": "mainland", "size": "2T"}]
    kube.apply(aijob("scan-seg", jobs_ns, [NVIDIA], workers=4, burst={"enabled": True}, datasets=data))
    wait_for(
        lambda: (kube.status(jobs_ns, "scan-seg").get("placement") or {}).get("link"),
        timeout=30,
        what="scan-seg sent",
    )
    status = kube.status(jobs_ns, "scan-seg")
    assert status["placement"]["link"] == "cloud-gz"
    message = condition(status, "Burst")["message"]
    print(
        f"\nBurst condition: {message}\nlink cloud-bj network: {link_status(kube, 'cloud-bj').get('network')}"
    )
    assert "ct-scans already in gz" in message
    assert (
        "not cloud-bj: data there ~" in message and "400.00 to move it" in message
    )  # 2,000 GB x 0.1 x 2 links
    assert [c["metadata"]["name"] for c in provider.configmaps("beijing")] == []


def test_a_partition_longer_than_the_lease_never_leaves_two_copies_running(
    cluster: Cluster,
    kube: Kube,
    namespace: str,
    estuary: OperatorProcess,
    links: list[str],
    provider: Provider,
    tmp_path: Path,
) -> None:
    """The fenced workers (real processes) stop within the lease while the partition lasts; the
    origin gives the job up only after lease + margin and runs it at home; sampled every second,
    never both at once."""
    prefix = podsim.unshare_prefix()
    if prefix is None:
        pytest.skip(
            "the stand-in kubelet needs a new PID namespace (unshare --pid); "
            "the fence with real processes is covered in tests/unit/fence"
        )
    cluster.kubectl("label", "namespace", namespace, "estuary.dev/tenant=px")
    workers_kc = tmp_path / "workers.kubeconfig"
    workers_kc.write_text(provider.kubeconfig("partitioned", "estuary-workers"))
    kubelet = KubeletStandIn(provider.kube, "partitioned", workers_kc, tmp_path / "pods", prefix)
    kube.apply(aijob("filler", namespace, [NVIDIA], workers=3))
    wait_for(lambda: kube.phase(namespace, "filler") == "Running", timeout=60, what="filler Running at home")
    kube.apply(
        aijob(
            "fenced",
            namespace,
            [NVIDIA],
            workers=1,
            burst={"enabled": True, "afterSeconds": 5},
            preemption={"gracePeriodSeconds": 0},
        )
    )
    try:
        wait_for(
            lambda: kubelet.alive("partitioned") or kubelet.alive(""),
            timeout=90,
            what="the worker process at the provider",
        )
        wait_for(
            lambda: kube.phase(namespace, "fenced") == "Running", timeout=30, what="fenced Running there"
        )
        samples: list[tuple[float, bool, bool]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                away = bool(kubelet.alive(""))
                home = any(p["status"].get("phase") == "Running" for p in kube.pods(namespace, "fenced"))
                samples.append((time.monotonic(), away, home))
                stop.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        provider.proxy.cut()
        cut = time.monotonic()
        kube.delete_job(namespace, "filler")  # room at home, once the job is given back
        fenced_at = wait_for(
            lambda: not kubelet.alive("") and time.monotonic(),
            timeout=LEASE + 20,
            interval=0.5,
            what="the fence to stop the worker",
        )
        running_home = wait_for(
            lambda: (
                (kube.status(namespace, "fenced").get("placement") or {}).get("cluster") == "local"
                and time.monotonic()
            ),
            timeout=LEASE + MARGIN + 60,
            interval=1,
            what="the job given back and run at home",
        )
        wait_for(
            lambda: kube.phase(namespace, "fenced") == "Running", timeout=60, what="fenced Running at home"
        )
        time.sleep(3)
        stop.set()
        sampler.join(timeout=5)
        both = [t - cut for t, away, home in samples if away and home]
        print(
            f"\npartition: worker fenced {fenced_at - cut:.1f}s after the cut, job running at home "
            f"{running_home - cut:.1f}s after it; {len(samples)} samples, {len(both)} with two copies"
        )
        assert not both, f"running in both clusters at {both}"
        assert fenced_at - cut <= LEASE + HEARTBEAT + 10, f"fenced {fenced_at - cut:.0f}s after the cut"
        assert running_home - cut >= LEASE, f"given back {running_home - cut:.0f}s after the cut"
        assert fenced_at < running_home
        [pod] = [
            p
            for p in provider.pods("partitioned")
            if p["metadata"]["labels"].get("estuary.dev/origin-name") == "fenced"
        ]
        assert pod["status"]["phase"] == "Failed"  # the fence's effect on the pod, at the provider
        fence = next(s for s in pod["status"]["initContainerStatuses"] if s["name"] == "fence")
        assert fence["state"]["terminated"]["message"].startswith("fenced: lease not confirmed for 30s")
        assert condition(kube.status(namespace, "fenced"), "Running").get("reason") in (
            "PartnerLost",
            "Running",
            "AllWorkersRunning",
        )
    finally:
        provider.proxy.heal()
        kubelet.close()
    wait_for(
        lambda: not provider.configmaps("partitioned"),
        timeout=60,
        what="the old attempt removed once the partition healed",
    )
    assert kubelet.errors == [] or all("Connection" in e or "Max retries" in e for e in kubelet.errors)
