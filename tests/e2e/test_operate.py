"""Operating Estuary: unhealthy nodes move gangs, metrics move with jobs, one replica of two acts."""

from __future__ import annotations

import re
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devcluster.clusters import Cluster
from tests.e2e.kube_helpers import GROUP, NVIDIA, VERSION, Kube, aijob
from tests.e2e.operator_process import OperatorProcess, wait_for


def _pool_status(kube: Kube, name: str) -> dict[str, Any]:
    pool: dict[str, Any] = kube.custom.get_cluster_custom_object(GROUP, VERSION, "computepools", name)
    return pool.get("status") or {}


def _report_health(kube: Kube, node: str, unhealthy: int) -> None:
    """What the node agent publishes (docs/telemetry.md), written as the agent would."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    devices = {
        str(i): {
            "uuid": f"GPU-{i}",
            "healthy": i >= unhealthy,
            "reasons": ["xid 79: fallen off the bus"] if i < unhealthy else [],
        }
        for i in range(8)
    }
    import json

    kube.core.patch_node(
        node,
        {
            "metadata": {
                "annotations": {
                    "estuary.dev/accelerators-healthy": str(8 - unhealthy),
                    "estuary.dev/accelerators-unhealthy": str(unhealthy),
                    "estuary.dev/accelerator-health": json.dumps(devices),
                    "estuary.dev/agent-heartbeat": now,
                }
            }
        },
    )


def test_gang_on_a_node_that_turns_unhealthy_restarts_elsewhere(kube: Kube, jobs_ns: str) -> None:
    healthy_before = _pool_status(kube, "h800")["healthy"]
    kube.apply(aijob("fragile", jobs_ns, [NVIDIA], workers=1))
    wait_for(lambda: kube.phase(jobs_ns, "fragile") == "Running", timeout=60, what="Running")
    node = kube.status(jobs_ns, "fragile")["placement"]["nodes"][0]
    _report_health(kube, node, unhealthy=1)
    try:

        def moved() -> bool:
            status = kube.status(jobs_ns, "fragile")
            return status.get("phase") == "Running" and node not in status["placement"]["nodes"]

        wait_for(moved, timeout=90, what="the gang to run on another node")
        status = kube.status(jobs_ns, "fragile")
        assert status["restarts"] == 0 and status["attempt"] == 2
        events = {e["reason"]: e["message"] for e in kube.events(jobs_ns, "fragile")}
        assert "NodeUnhealthy" in events and node in events["NodeUnhealthy"]
        wait_for(
            lambda: _pool_status(kube, "h800")["healthy"] == healthy_before - 1,
            timeout=30,
            what="pool healthy count to drop by one",
        )
    finally:
        _report_health(kube, node, unhealthy=0)


def _scrape(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _scrape_or_none(url: str) -> dict[str, float] | None:
    """The samples, or None while the operator (restarted by an earlier test) is not serving yet."""
    try:
        return _scrape(url)
    except OSError:
        return None


def _sum(samples: dict[str, float], pattern: str) -> float:
    return sum(v for k, v in samples.items() if re.fullmatch(pattern, k))


def test_metrics_scraped_over_http_change_as_jobs_run(
    kube: Kube, jobs_ns: str, estuary: OperatorProcess
) -> None:
    before = _scrape(estuary.metrics_url)
    kube.apply(aijob("measured", jobs_ns, [NVIDIA], workers=2, per_worker=4))
    wait_for(lambda: kube.phase(jobs_ns, "measured") == "Running", timeout=60, what="Running")

    def updated() -> dict[str, float] | None:
        now = _scrape(estuary.metrics_url)
        admitted = _sum(now, r'estuary_admissions_total\{.*pool="h800".*\}')
        if admitted > _sum(before, r'estuary_admissions_total\{.*pool="h800".*\}'):
            return now
        return None

    after = wait_for(updated, timeout=30, what="admissions counter to rise")
    allocated = r'estuary_pool_accelerators\{.*pool="h800".*state="allocated".*\}'
    assert _sum(after, allocated) >= _sum(before, allocated) + 8
    started = r"estuary_job_start_seconds_count.*"
    assert _sum(after, started) > _sum(before, started)
    assert _sum(after, r'estuary_jobs\{phase="Running"\}') >= 1
    assert _sum(after, r"estuary_scheduling_cycle_seconds_count") > 0


@pytest.fixture
def paused_operator(estuary: OperatorProcess) -> object:
    """Stop the session's operator while a test runs its own replicas, then start it again."""
    estuary.stop()
    yield estuary
    estuary.start()


def test_two_replicas_with_leader_election_never_both_admit(
    cluster: Cluster,
    kube: Kube,
    jobs_ns: str,
    paused_operator: object,
    tmp_path: Path,
) -> None:
    cluster.kubectl("create", "namespace", "estuary-system", check=False)
    env = {"ESTUARY_LEADER_ELECTION": "true", "POD_NAMESPACE": "estuary-system"}
    replicas = [
        OperatorProcess(cluster.kubeconfig, tmp_path / f"replica-{i}.log", POD_NAME=f"r{i}", **env)
        for i in range(2)
    ]
    for replica in replicas:
        replica.start()
    try:
        for i in range(4):
            kube.apply(aijob(f"ha-{i}", jobs_ns, [NVIDIA], workers=1, per_worker=2))
        wait_for(
            lambda: all(kube.phase(jobs_ns, f"ha-{i}") == "Running" for i in range(4)),
            timeout=90,
            what="jobs Running under two replicas",
        )
        admitting = [r for r in replicas if "Admitted: admitted to pool" in r.log_tail(10**6)]
        assert len(admitting) == 1, "both replicas admitted jobs"
        for i in range(4):
            assert kube.status(jobs_ns, f"ha-{i}")["attempt"] == 1
            assert len(kube.status(jobs_ns, f"ha-{i}")["runs"]) == 1  # one admission, one run record
        leader = admitting[0]
        standby = replicas[1 - replicas.index(leader)]
        leader.kill()  # no clean release: the standby must wait for the lease to expire
        kube.apply(aijob("after-failover", jobs_ns, [NVIDIA], workers=1, per_worker=2))
        wait_for(
            lambda: kube.phase(jobs_ns, "after-failover") == "Running",
            timeout=90,
            what="the standby to take over and admit",
        )
        assert "Admitted: admitted to pool" in standby.log_tail(10**6)
        holder = kube.api.sanitize_for_serialization(client_lease(kube))["spec"]["holderIdentity"]
        assert holder == standby.extra_env["POD_NAME"]
    finally:
        for replica in replicas:
            replica.stop()


def client_lease(kube: Kube) -> object:
    from kubernetes import client

    return client.CoordinationV1Api(kube.api).read_namespaced_lease("estuary-operator", "estuary-system")


def test_jobs_reach_running_with_one_dry_run_and_workers_plus_three_writes_each(
    kube: Kube, jobs_ns: str, estuary: OperatorProcess
) -> None:
    """The operator's own request counters on the real API server (issue #14): each job is checked
    once (a dry run of its first worker, kept per uid and generation however many ticks it takes
    to answer) and written `workers + 3` times on its way to Running: Admitted, the Service, the
    pods, Running. No job of another test is left to write (the namespaces are emptied)."""
    requests = r'estuary_api_requests_total\{{resource="{1}",verb="{0}"\}}'
    kinds = {
        "dry runs": requests.format("dryrun", "pods"),
        "writes": "|".join(
            requests.format(verb, resource)
            for verb, resource in (("create", "pods"), ("create", "services"), ("patch", "aijobs/status"))
        ),
    }
    before = wait_for(lambda: _scrape_or_none(estuary.metrics_url), timeout=60, what="the metrics endpoint")
    shapes = {"steady-a": 1, "steady-b": 2, "steady-c": 3}
    for name, workers in shapes.items():
        kube.apply(aijob(name, jobs_ns, [NVIDIA], workers=workers, per_worker=2))
    for name in shapes:
        wait_for(lambda name=name: kube.phase(jobs_ns, name) == "Running", timeout=90, what=f"{name} Running")
    expected = {"dry runs": len(shapes), "writes": sum(w + 3 for w in shapes.values())}

    seen: dict[str, float] = {}

    def counted() -> bool:
        now = _scrape(estuary.metrics_url)
        seen.update({kind: _sum(now, p) - _sum(before, p) for kind, p in kinds.items()})
        return seen == expected

    try:
        wait_for(counted, timeout=20, what="the operator's request counters")
    except AssertionError:
        assert seen == expected  # the counts, not a timeout, in the failure
        raise
