"""Agentless partners: a namespace at a provider without Estuary, where the origin creates the
workers itself. The home cluster is a real operator loop over the fake API; the provider is only
an API server (nobody runs there but the tests, playing kube-scheduler and the kubelet)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from tests.fakeapi import Clock, FakeApiServer, FakeProviderKube

from estuary.federation import lease

from .world import NS, Cluster, aijob, kubeconfig, make_cluster

CLOUD = "cloud-a"
LEASE = 30
MARGIN = lease.margin(LEASE, 0)
AgentlessWorld = tuple[Clock, Cluster, FakeApiServer]


def namespace(conf: dict[str, Any]) -> str:
    """The namespace a test kubeconfig's credentials are limited to (its token: "ns:<name>")."""
    token = str(conf["users"][0]["user"]["token"])
    return token.removeprefix("ns:") if token.startswith("ns:") else CLOUD


def quota(hard: int, used: int = 0, ns: str = CLOUD) -> dict[str, Any]:
    amounts = {"requests.nvidia.com/gpu": str(hard), "requests.cpu": "512", "requests.memory": "4Ti"}
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "gpu-quota", "namespace": ns},
        "spec": {"hard": amounts},
        "status": {"hard": amounts, "used": {"requests.nvidia.com/gpu": str(used)}},
    }


def provider_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "offers": [
            {
                "vendor": "nvidia",
                "model": "H800",
                "nodeSelector": {"cloud.example/gpu": "h800"},
                "tolerations": [{"key": "cloud.example/gpu", "operator": "Exists"}],
            }
        ],
        "kueueQueue": "team-a",
        "serviceAccountName": "estuary-workers",
    }
    spec.update(overrides)
    return spec


def agentless_link(name: str = "cloud", **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "mode": "Agentless",
        "kubeconfigSecretRef": {"name": "cloud-kubeconfig"},
        "jurisdiction": "mainland",
        "remoteNamespace": CLOUD,
        "provider": provider_spec(),
        "allowedTenants": ["physics"],
        "allowedResidency": ["any", "mainland"],
        "budgets": [{"tenant": "physics", "budget": 1000}],
        "costs": [{"vendor": "nvidia", "costPerAcceleratorHour": 3.0}],
        "burst": {"afterSeconds": 600, "whenNeverFits": True},
        "leaseSeconds": LEASE,
        "heartbeatSeconds": 5,
    }
    spec.update(overrides)
    return {
        "apiVersion": "estuary.dev/v1alpha1",
        "kind": "FederationLink",
        "metadata": {"name": name, "namespace": "estuary-system"},
        "spec": spec,
    }


@pytest.fixture
def world() -> AgentlessWorld:
    clock = Clock()
    cloud = FakeApiServer("cloud", clock)
    cloud.put({"kind": "Namespace", "metadata": {"name": CLOUD}})
    cloud.put(quota(32))
    home = make_cluster(
        "hk", clock, "hk", nodes=3, provider=lambda conf: FakeProviderKube(cloud, namespace(conf))
    )
    home.server.put(
        {
            "kind": "Secret",
            "metadata": {"name": "cloud-kubeconfig", "namespace": "estuary-system"},
            "data": {"kubeconfig": base64.b64encode(kubeconfig("good").encode()).decode()},
        }
    )
    home.server.put(agentless_link())
    return clock, home, cloud


def cycle(clock: Clock, home: Cluster, seconds: float = 2.0, heartbeat: bool = True) -> None:
    home.step()
    if heartbeat:
        home.heartbeat("cloud")
    home.step()
    clock.advance(seconds)


def pods(cloud: FakeApiServer) -> list[dict[str, Any]]:
    return sorted(cloud.items("pods"), key=lambda p: p["metadata"]["name"])


def until_released(clock: Clock, home: Cluster, name: str = "big", cycles: int = 12) -> dict[str, Any]:
    """Cycle until the job no longer holds a placement (the attempt is removed first: a listing
    that begins a request timeout after the last renewal must show it gone)."""
    for _ in range(cycles):
        cycle(clock, home)
        if "placement" not in home.status(NS, name) or home.status(NS, name).get("phase") == "Failed":
            break
    return home.status(NS, name)


def burst(clock: Clock, home: Cluster, cloud: FakeApiServer, name: str = "big", **spec: Any) -> str:
    """Send a 4 x 8 H800 job (never fits at home) and return its attempt's name at the provider."""
    home.server.put(aijob(name, **spec))
    for _ in range(3):
        cycle(clock, home)
    [record] = cloud.items("configmaps")
    return str(record["metadata"]["name"])


def test_the_origin_creates_the_gang_there_unpinned_in_the_providers_queue_with_the_fence(
    world: AgentlessWorld,
) -> None:
    clock, home, cloud = world
    name = burst(clock, home, cloud)
    record = cloud.get("configmaps", f"{CLOUD}/{name}")
    assert record is not None
    notes = record["metadata"]["annotations"]
    assert notes["estuary.dev/origin-accelerator"] == "nvidia/H800" and notes["estuary.dev/workers"] == "4"
    assert json.loads(record["data"]["aijob.json"])["spec"]["workers"] == 4
    workers = pods(cloud)
    assert [p["metadata"]["name"] for p in workers] == [f"{name}-worker-{r}" for r in range(4)]
    [service] = cloud.items("services")
    assert service["spec"]["clusterIP"] == "None"
    for pod in workers:
        meta, spec = pod["metadata"], pod["spec"]
        assert "affinity" not in spec  # no node pin: the provider's scheduler places them
        assert spec["nodeSelector"] == {"cloud.example/gpu": "h800"}
        assert {"key": "cloud.example/gpu", "operator": "Exists"} in spec["tolerations"]
        assert spec["serviceAccountName"] == "estuary-workers"
        assert meta["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
        assert meta["labels"]["kueue.x-k8s.io/pod-group-name"] == name
        assert meta["annotations"]["kueue.x-k8s.io/pod-group-total-count"] == "4"
        assert meta["ownerReferences"][0]["kind"] == "ConfigMap"
        assert meta["ownerReferences"][0]["uid"] == record["metadata"]["uid"]
        assert spec["shareProcessNamespace"] is True
        assert [c["name"] for c in spec["initContainers"]] == ["fence-wait", "fence"]
        assert spec["initContainers"][1]["image"] == "estuary:test"
        assert f"configmap/{name}" in spec["initContainers"][1]["args"]
        env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
        assert env["MASTER_ADDR"] == f"{name}-worker-0.{name}.{CLOUD}.svc" and env["WORLD_SIZE"] == "32"
        assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    status = home.status(NS, "big")
    assert status["phase"] == "Admitted" and status["placement"]["cluster"] == "cloud"
    link = home.link_status("cloud")
    assert link["reachable"] and link["capacity"] == [
        {"vendor": "nvidia", "model": "H800", "capacity": 32, "free": 32, "relativeThroughput": 1.0}
    ]


def test_the_lease_is_renewed_every_heartbeat_and_the_job_runs_and_succeeds_with_spend(
    world: AgentlessWorld,
) -> None:
    clock, home, cloud = world
    name = burst(clock, home, cloud)
    tokens = set()
    cloud.set_pods("Running", startTime="2027-01-15T08:00:00Z")
    for _ in range(3):
        cycle(clock, home, seconds=5)
        record = cloud.get("configmaps", f"{CLOUD}/{name}")
        assert record is not None
        tokens.add(record["metadata"]["annotations"]["estuary.dev/lease-renew"])
    assert len(tokens) == 3  # a new token each heartbeat
    status = home.status(NS, "big")
    assert status["phase"] == "Running" and status["placement"]["nodes"] == [f"node-{r}" for r in range(4)]
    finished = {"state": {"terminated": {"exitCode": 0, "finishedAt": "2027-01-15T08:30:00Z"}}}
    cloud.set_pods("Succeeded", startTime="2027-01-15T08:00:00Z", containerStatuses=[finished])
    cycle(clock, home)
    status = home.status(NS, "big")
    assert status["phase"] == "Succeeded" and "succeeded at partner cloud" in status["message"]
    [spent] = home.link_status("cloud")["spend"]
    assert spent["acceleratorHours"] == pytest.approx(16.0) and spent["spend"] == pytest.approx(48.0)
    for _ in range(20):  # finished: no more renewals, the record stays until the job is deleted
        cycle(clock, home, seconds=5)
    assert cloud.get("configmaps", f"{CLOUD}/{name}") is not None
    home.server.delete("aijobs", f"{NS}/big")
    cycle(clock, home)
    assert cloud.items("configmaps") == [] and cloud.items("pods") == [] and cloud.items("services") == []


def test_workers_not_all_running_within_the_timeout_remove_the_attempt_and_requeue_it(
    world: AgentlessWorld,
) -> None:
    clock, home, cloud = world
    burst(clock, home, cloud, schedulingTimeoutSeconds=30)
    status = until_released(clock, home, cycles=30)  # the provider's Kueue keeps them gated
    assert status["phase"] == "Queued" and status["reason"] == "SchedulingTimeout", status
    assert "did not all run within 30s" in status["message"]
    assert cloud.items("pods") == [] and cloud.items("configmaps") == []
    cycle(clock, home)
    assert cloud.items("pods") == []  # not sent straight back to the provider that could not start it
    burst_condition = next(c for c in home.status(NS, "big")["conditions"] if c["type"] == "Burst")
    assert burst_condition["status"] == "False" and burst_condition["reason"] == "RefusedRecently"


def test_a_failed_worker_removes_the_whole_attempt_then_restarts_the_job_with_backoff(
    world: AgentlessWorld,
) -> None:
    clock, home, cloud = world
    burst(clock, home, cloud, restartPolicy={"maxRestarts": 1, "backoffSeconds": 10})
    cloud.set_pods("Running")
    cycle(clock, home)
    failed = {"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
    first = pods(cloud)[1]["metadata"]["name"]
    cloud.set_pods("Failed", job=first.rsplit("-worker-", 1)[0], containerStatuses=[failed])
    cycle(clock, home)
    assert home.status(NS, "big")["message"].startswith("removing the attempt at provider cloud")
    status = until_released(clock, home)
    assert status["phase"] == "Queued" and status["reason"] == "Restarting" and status["restarts"] == 1
    assert "exited with code 137 (OOMKilled)" in status["message"] and status["retryAfter"]
    assert cloud.items("pods") == []
    for _ in range(8):  # backoff over: a new attempt, which fails again: no restarts left
        cycle(clock, home)
    assert len(cloud.items("configmaps")) == 1
    cloud.set_pods("Failed", containerStatuses=[failed])
    status = until_released(clock, home)
    assert status["phase"] == "Failed" and "restarted 1 times (limit 1)" in status["message"]
    assert cloud.items("pods") == []


def test_a_fenced_attempt_is_removed_and_requeued_without_counting_a_restart(world: AgentlessWorld) -> None:
    clock, home, cloud = world
    burst(clock, home, cloud)
    fence = {"name": "fence", "state": {"terminated": {"message": "fenced: lease not confirmed for 30s"}}}
    cloud.set_pods("Failed", initContainerStatuses=[fence])
    status = until_released(clock, home)
    assert status["phase"] == "Queued" and status["reason"] == "Fenced" and status.get("restarts", 0) == 0
    assert "fenced: lease not confirmed" in status["message"]


def test_a_provider_that_cannot_be_reached_is_given_up_only_after_lease_and_margin(
    world: AgentlessWorld,
) -> None:
    clock, home, cloud = world
    name = burst(clock, home, cloud)
    cloud.set_pods("Running")
    cycle(clock, home)
    cloud.down = True
    lost = clock.mono()
    while "placement" in home.status(NS, "big"):
        cycle(clock, home)
        assert clock.mono() - lost < LEASE + MARGIN + 20
    assert clock.mono() - lost >= LEASE + MARGIN - 5  # the last renewal was up to one heartbeat before
    running = next(c for c in home.status(NS, "big")["conditions"] if c["type"] == "Running")
    assert running["reason"] == "PartnerLost"
    cloud.down = False
    cycle(clock, home)  # reachable again: the old attempt is an orphan and is removed
    assert cloud.get("configmaps", f"{CLOUD}/{name}") is None
    assert all(p["metadata"]["labels"]["estuary.dev/job-name"] != name for p in cloud.items("pods"))


def test_capacity_is_discovered_from_the_quota_when_no_offer_is_declared(world: AgentlessWorld) -> None:
    clock, home, cloud = world
    home.server.put(agentless_link(provider={"kueueQueue": "team-a"}))
    cloud.put(quota(32, used=8))
    home.server.put(aijob("h800-only"))
    any_model = aijob("any-nvidia")
    any_model["spec"]["accelerators"] = [{"vendor": "nvidia", "image": "img"}]
    home.server.put(any_model)
    for _ in range(3):
        cycle(clock, home)
    link = home.link_status("cloud")
    assert link["capacity"] == [
        {"vendor": "nvidia", "model": "", "capacity": 32, "free": 24, "relativeThroughput": 1.0}
    ]  # the quota's hard limit and what it says is used
    assert home.status(NS, "any-nvidia")["placement"]["cluster"] == "cloud"
    refused = next(c for c in home.status(NS, "h800-only")["conditions"] if c["type"] == "Burst")
    assert refused["reason"] == "NoAcceptedType"


def test_credentials_for_one_namespace_are_enough(world: AgentlessWorld) -> None:
    clock, home, cloud = world
    burst(clock, home, cloud)
    assert {c["metadata"]["namespace"] for c in cloud.items("configmaps")} == {CLOUD}
    assert home.link_status("cloud")["reachable"]  # nodes unreadable (403): capacity from the quota


def test_suspending_removes_the_workers_and_resuming_creates_them_again(world: AgentlessWorld) -> None:
    clock, home, cloud = world
    burst(clock, home, cloud)
    home.server.patch("aijobs", f"{NS}/big", {"spec": {"suspend": True}})
    for _ in range(2):
        cycle(clock, home)
    assert cloud.items("pods") == [] and len(cloud.items("configmaps")) == 1
    home.server.patch("aijobs", f"{NS}/big", {"spec": {"suspend": False}})
    for _ in range(2):
        cycle(clock, home)
    assert len(cloud.items("pods")) == 4
    cloud.set_pods("Running")
    cycle(clock, home)
    assert home.status(NS, "big")["phase"] == "Running"


def test_residency_and_tenants_hold_for_agentless_links_too(world: AgentlessWorld) -> None:
    clock, home, cloud = world
    home.server.put(aijob("hk-only", residency="hk"))
    for _ in range(3):
        cycle(clock, home)
    burst_condition = next(c for c in home.status(NS, "hk-only")["conditions"] if c["type"] == "Burst")
    assert (
        burst_condition["reason"] == "ResidencyForbids"
        and "link cloud is mainland" in burst_condition["message"]
    )
    assert cloud.items("configmaps") == []


def test_the_heartbeat_measures_round_trip_and_bandwidth_and_the_link_shows_them(
    world: AgentlessWorld,
) -> None:
    clock, home, cloud = world
    cloud.path.rtt_s, cloud.path.bandwidth_bps = 0.03, 2e9  # 4 MB of OpenAPI in 16 ms + 30 ms
    cycle(clock, home)
    network = home.link_status("cloud")["network"]
    assert network["source"] == "measured" and network["measuredAt"]
    assert network["rttMilliseconds"] == 30.0  # /version: 500 bytes, a round trip
    assert network["bandwidthMbps"] == pytest.approx(4e6 * 8 / (0.03 + 0.016) / 1e6, rel=0.02)
    home.server.patch(
        "federationlinks", "estuary-system/cloud", {"spec": {"network": {"bandwidthMbps": 10000}}}
    )
    cycle(clock, home)
    network = home.link_status("cloud")["network"]
    assert network["source"] == "declared" and network["bandwidthMbps"] == 10000


def test_a_job_whose_data_is_in_guangzhou_goes_to_the_guangzhou_provider_with_the_numbers(
    world: AgentlessWorld,
) -> None:
    clock, home, cloud = world
    for ns, link, cluster in (("guangzhou", "cloud-gz", "gz"), ("beijing", "cloud-bj", "bj")):
        cloud.put({"kind": "Namespace", "metadata": {"name": ns}})
        cloud.put(quota(64, ns=ns))
        secret = f"{link}-kubeconfig"
        home.server.put(
            {
                "kind": "Secret",
                "metadata": {"name": secret, "namespace": "estuary-system"},
                "data": {"kubeconfig": base64.b64encode(kubeconfig(f"ns:{ns}").encode()).decode()},
            }
        )
        spec = {"clusterName": cluster, "network": {"egressCostPerGB": 0.2}}
        home.server.put(
            agentless_link(link, remoteNamespace=ns, kubeconfigSecretRef={"name": secret}, **spec)
        )
    home.server.delete("federationlinks", "estuary-system/cloud")
    home.step()  # the links get their runtimes
    job = aijob("scan-seg")
    job["spec"]["datasets"] = [{"name": "scans", "cluster": "gz", "jurisdiction": "mainland", "size": "2T"}]
    home.server.put(job)
    for _ in range(3):
        home.step()
        for name in ("cloud-gz", "cloud-bj"):
            home.heartbeat(name)
        home.step()
        clock.advance(2)
    status = home.status(NS, "scan-seg")
    assert status["placement"]["cluster"] == "cloud-gz", status
    burst = next(c for c in status["conditions"] if c["type"] == "Burst")
    assert "scans already in gz" in burst["message"]
    # 2 TB over the measured ~0.7 Gbps to beijing: ~6.4 h; 2,000 GB x 0.2 per GB at each link
    assert "not cloud-bj: data there ~" in burst["message"] and "800.00 to move it" in burst["message"]
    assert [c["metadata"]["namespace"] for c in cloud.items("configmaps")] == ["guangzhou"]


def test_a_gang_the_providers_quota_refuses_part_way_is_removed_and_the_job_comes_home(
    world: AgentlessWorld,
) -> None:
    clock, home, cloud = world
    home.step()
    home.heartbeat("cloud")
    home.providers[CLOUD].pod_quota = 2
    home.server.put(aijob("big"))
    cycle(clock, home)
    assert len(cloud.items("pods")) == 2 and len(cloud.items("configmaps")) == 1  # part of the gang
    accepting = next(c for c in home.link_status("cloud")["conditions"] if c["type"] == "Accepting")
    assert accepting["status"] == "False" and "exceeded quota" in accepting["message"]
    status = until_released(clock, home)
    assert status["phase"] == "Queued", status
    running = next(c for c in status["conditions"] if c["type"] == "Running")
    assert running["reason"] == "BurstRefused" and "exceeded quota" in running["message"]
    assert cloud.items("pods") == [] and cloud.items("configmaps") == []  # removed, not left behind
    cycle(clock, home)
    assert cloud.items("configmaps") == []  # not sent straight back
