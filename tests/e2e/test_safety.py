"""Correctness under pressure against a real API server (issue 17): pods deleted while the operator
is down or starting, a namespace relabelled to another tenant, a placement written by someone else,
and the operator's narrower RBAC rendered by the real helm.

The unit side of the same rules: tests/unit/control/test_resync.py and test_trust.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from devcluster.clusters import Cluster
from tests.e2e.kube_helpers import GROUP, NVIDIA, VERSION, Kube, aijob
from tests.e2e.operator_process import OperatorProcess, free_port, wait_for
from tests.e2e.provider_tools import token_kubeconfig
from tests.e2e.test_chart import CHART, helm, run_helm  # noqa: F401  (helm is a fixture)
from tests.e2e.test_tenants import set_quotas, tenants  # noqa: F401  (tenants: fixture)

RELEASE_WITHIN_S = 30  # issue 17: a job whose pods are gone is released within seconds
LONG = {"estuary.dev/sim-duration-ms": "600000"}
RESTART_FAST = {"maxRestarts": 20, "backoffSeconds": 1}


def _attempt_closed(kube: Kube, ns: str, name: str, attempt: int) -> bool:
    """The attempt no longer holds anything: its run record is closed and the placement, if any,
    is a later attempt's."""
    status = kube.status(ns, name)
    runs = [r for r in status.get("runs") or [] if r["attempt"] == attempt]
    moved = status.get("attempt", 0) > attempt or "placement" not in status
    return bool(runs) and bool(runs[-1].get("endTime")) and moved


def _delete_pods(kube: Kube, ns: str, name: str, grace: int | None) -> list[str]:
    names = [p["metadata"]["name"] for p in kube.pods(ns, name)]
    for pod in names:
        try:
            kube.core.delete_namespaced_pod(pod, ns, grace_period_seconds=grace)
        except ApiException as err:
            if err.status != 404:
                raise
    return names


def _booted(estuary: OperatorProcess, before: int) -> None:
    """Wait until the restarted process has primed its cache (Python's start on a loaded 2-core
    machine can take longer than the 30 s the operator is held to once it runs)."""
    wait_for(
        lambda: estuary.log_tail(10**7).count("cache primed") > before,
        timeout=120,
        what="the operator process to start",
    )


def _run_until_running(kube: Kube, ns: str, name: str) -> int:
    wait_for(lambda: kube.phase(ns, name) == "Running", timeout=90, what=f"{ns}/{name} Running")
    return int(kube.status(ns, name)["attempt"])


@pytest.mark.parametrize("when", ["while it is down", "just as it starts"])
def test_pods_deleted_behind_the_operator_s_back_release_the_job_within_30s(
    kube: Kube, jobs_ns: str, estuary: OperatorProcess, when: str
) -> None:
    kube.apply(aijob("orphaned", jobs_ns, [NVIDIA], workers=2, annotations=LONG, restartPolicy=RESTART_FAST))
    for round_ in range(5):
        attempt = _run_until_running(kube, jobs_ns, "orphaned")
        grace = 0 if round_ % 2 else None  # force (as kwok's stages finish a deletion) or graceful
        boots = estuary.log_tail(10**7).count("cache primed")
        estuary.kill()
        if when == "while it is down":
            deleted = _delete_pods(kube, jobs_ns, "orphaned", grace)
            if round_ >= 2:  # the later rounds restart only once the pods are gone from etcd
                wait_for(lambda: not kube.pods(jobs_ns, "orphaned"), timeout=30, what="pods gone")
            estuary.start()
            _booted(estuary, boots)
        else:
            estuary.start()
            _booted(estuary, boots)  # the first listing is done; the watches start about now
            time.sleep(0.3 * round_)
            deleted = _delete_pods(kube, jobs_ns, "orphaned", grace)
        assert len(deleted) == 2
        started = time.monotonic()
        try:
            wait_for(
                lambda a=attempt: _attempt_closed(kube, jobs_ns, "orphaned", a),
                timeout=RELEASE_WITHIN_S,
                what=f"round {round_}: attempt {attempt} released after its pods were deleted {when}",
            )
        except AssertionError as err:
            status = kube.status(jobs_ns, "orphaned")
            raise AssertionError(f"{err}\nstatus: {status}\noperator log:\n{estuary.log_tail()}") from err
        assert time.monotonic() - started <= RELEASE_WITHIN_S
        status = kube.status(jobs_ns, "orphaned")
        assert status["restarts"] == round_ + 1, status  # restarted per its policy, as a failure
        assert status["reason"] in ("Restarting", "Admitted", "Running"), status
    _run_until_running(kube, jobs_ns, "orphaned")
    assert "Traceback" not in estuary.log_tail(200_000)


QUOTAS = {
    "h800": [
        {"tenant": "physics", "nominal": 8, "borrowingLimit": 0, "lendingLimit": 0},
        {"tenant": "chemistry", "nominal": 8, "borrowingLimit": 0, "lendingLimit": 0},
    ]
}


def _used(kube: Kube) -> dict[str, int]:
    obj = kube.custom.get_cluster_custom_object(GROUP, VERSION, "computepools", "h800")
    return {t["tenant"]: t["used"] for t in (obj.get("status") or {}).get("tenants") or []}


def test_a_relabelled_namespace_keeps_running_jobs_usage_and_moves_their_next_attempt(
    cluster: Cluster,
    kube: Kube,
    tenants: dict[str, str],  # noqa: F811
) -> None:
    set_quotas(kube, QUOTAS)
    ns = tenants["physics"]
    kube.apply(aijob("moved", ns, [NVIDIA], workers=1, annotations=LONG, restartPolicy=RESTART_FAST))
    _run_until_running(kube, ns, "moved")
    assert kube.status(ns, "moved")["placement"]["tenant"] == "physics"
    wait_for(lambda: _used(kube).get("physics") == 8, timeout=30, what="physics using 8")
    chem = tenants["chemistry"]
    kube.apply(aijob("chem", chem, [NVIDIA], workers=1, annotations=LONG))
    _run_until_running(kube, chem, "chem")  # chemistry's nominal quota is in use: 8 of 8
    cluster.kubectl("label", "namespace", ns, "estuary.dev/tenant=chemistry", "--overwrite")
    time.sleep(6)  # several ticks with the new label
    assert kube.phase(ns, "moved") == "Running" and kube.phase(chem, "chem") == "Running"
    assert _used(kube) == {"physics": 8, "chemistry": 8}, "a relabel moved a running attempt's usage"
    # Its next attempt is chemistry's: with chemistry's quota in use it waits, naming that quota...
    _delete_pods(kube, ns, "moved", 0)
    wait_for(
        lambda: kube.status(ns, "moved").get("reason") == "QuotaExceeded", timeout=30, what="moved waits"
    )
    assert "tenant chemistry" in kube.status(ns, "moved")["message"]
    wait_for(lambda: _used(kube).get("physics", 0) == 0, timeout=30, what="physics' usage freed")
    # ...and runs under it once there is room: a relabel never makes a job unrunnable.
    kube.delete_job(chem, "chem")
    _run_until_running(kube, ns, "moved")
    assert kube.status(ns, "moved")["placement"]["tenant"] == "chemistry"
    wait_for(lambda: _used(kube).get("chemistry") == 8, timeout=30, what="chemistry using 8")
    runs = kube.status(ns, "moved")["runs"]
    assert [r.get("tenant") for r in runs] == ["physics", "chemistry"]


def test_a_placement_written_by_someone_else_starts_no_pods_and_says_so(
    kube: Kube,
    tenants: dict[str, str],  # noqa: F811
) -> None:
    set_quotas(kube, QUOTAS)
    ns = tenants["physics"]
    kube.apply(aijob("greedy", ns, [NVIDIA], workers=2))  # 16 > physics' 8, no borrowing
    wait_for(lambda: kube.status(ns, "greedy").get("reason") == "QuotaExceeded", timeout=30, what="waits")
    nodes = sorted(n["metadata"]["name"] for n in kube.nodes() if "h800" in n["metadata"]["name"])[:2]
    forged = {
        "phase": "Admitted",
        "attempt": 1,
        "placement": {
            "cluster": "local",
            "pool": "h800",
            "vendor": "nvidia",
            "model": "H800",
            "resource": "nvidia.com/gpu",
            "nodes": nodes,
            "workers": 2,
            "tenant": "physics",
            "seal": "v1:" + "0" * 64,
        },
    }
    kube.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, "aijobs", "greedy", {"status": forged}
    )
    seen_pods: list[str] = []

    def told() -> bool:
        seen_pods.extend(p["metadata"]["name"] for p in kube.pods(ns, "greedy"))
        return any(e["reason"] == "PlacementNotTrusted" for e in kube.events(ns, "greedy"))

    wait_for(told, timeout=30, what="the forged placement refused")
    event = next(e for e in kube.events(ns, "greedy") if e["reason"] == "PlacementNotTrusted")
    assert event["type"] == "Warning" and "not written by Estuary" in event["message"]
    wait_for(lambda: "placement" not in kube.status(ns, "greedy"), timeout=30, what="placement cleared")
    wait_for(lambda: kube.status(ns, "greedy").get("reason") == "QuotaExceeded", timeout=30, what="requeued")
    seen_pods.extend(p["metadata"]["name"] for p in kube.pods(ns, "greedy"))
    assert seen_pods == [], "the operator created pods for a placement it did not decide"


# -- RBAC: workers only where the operator is bound ----------------------------------------------

RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


@pytest.fixture
def chart_operator(
    cluster: Cluster,
    kube: Kube,
    helm: Path,  # noqa: F811
    estuary: OperatorProcess,
    tmp_path: Path,
) -> Iterator[tuple[OperatorProcess, str, str]]:
    """The chart's RBAC (the real helm render, `rbac.workerNamespaces` naming one tenant
    namespace) applied, and the operator run with its ServiceAccount's token instead of the
    session operator's admin rights. Yields (operator, bound namespace, unbound namespace)."""
    suffix = f"{int(time.time()) % 100000}"
    home, bound, unbound = f"rbac-home-{suffix}", f"rbac-bound-{suffix}", f"rbac-unbound-{suffix}"
    for ns in (home, bound, unbound):
        cluster.kubectl("create", "namespace", ns)
    release = f"r{suffix}"
    rendered = run_helm(
        helm,
        cluster,
        "template",
        release,
        str(CHART),
        "-n",
        home,
        "--set",
        f"rbac.workerNamespaces={{{bound}}}",
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in RBAC_KINDS]
    text = yaml.safe_dump_all(docs)
    cluster.kubectl("apply", "-f", "-", input=text)
    sa = f"{release}-estuary-operator"
    token = cluster.kubectl("create", "token", sa, "-n", home, "--duration=2h").stdout.strip()
    kubeconfig = tmp_path / "operator-sa.kubeconfig"
    kubeconfig.write_text(token_kubeconfig(cluster.kubeconfig, token))
    estuary.stop()
    proc = OperatorProcess(
        kubeconfig,
        tmp_path / "operator-sa.log",
        ESTUARY_JURISDICTION="hk",
        ESTUARY_METRICS_PORT=str(free_port()),
        POD_NAMESPACE=home,
    )
    proc.start()
    try:
        yield proc, bound, unbound
    finally:
        for ns in (bound, unbound):
            cluster.kubectl("delete", "aij", "--all", "-n", ns, "--wait=false", check=False)
        wait_for(lambda: not kube.pods(bound), timeout=90, what="bound namespace's pods gone")
        proc.stop()
        estuary.start()
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=text, check=False)
        for ns in (home, bound, unbound):
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_with_the_chart_s_rbac_jobs_run_only_in_bound_namespaces_and_the_others_say_why(
    kube: Kube, chart_operator: tuple[OperatorProcess, str, str]
) -> None:
    proc, bound, unbound = chart_operator
    for ns in (bound, unbound):
        kube.apply(aijob("rbac", ns, [NVIDIA], workers=1, annotations=LONG))
    try:
        wait_for(lambda: kube.phase(bound, "rbac") == "Running", timeout=90, what="the bound job Running")
        wait_for(
            lambda: kube.status(unbound, "rbac").get("reason") == "PodForbidden",
            timeout=60,
            what="the unbound job held",
        )
    except AssertionError as err:
        raise AssertionError(f"{err}\noperator log:\n{proc.log_tail()}") from err
    status = kube.status(unbound, "rbac")
    message = status["message"]
    assert f"may not create Pods in namespace {unbound}" in message, message
    assert "rbac.workerNamespaces" in message and "docs/install.md" in message
    assert status["phase"] == "Queued" and "placement" not in status and kube.pods(unbound) == []
    assert len(kube.pods(bound, "rbac")) == 1
    # the operator's placement key was created in its own namespace, as the chart's Role allows
    assert "could not read or create Secret" not in proc.log_tail(200_000)
