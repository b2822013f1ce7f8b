"""Fixtures for tests that run the operator against the local control plane."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devcluster.clusters import Cluster
from tests.e2e.kube_helpers import Kube, pools
from tests.e2e.operator_process import OperatorProcess, free_port, wait_for

# Time-sharing in seconds rather than hours, so test_timesharing.py runs quickly: queue 1 from 100
# accelerator-seconds (a 24-GPU gang gets there in about 4 s), 5 s minimum slice, moves that cost
# 1 s. Only jobs that opt in (spec.preemption.timeSharing) are affected; production defaults are
# in charts/estuary/values.yaml.
TIME_SHARING_IN_SECONDS = {
    "ESTUARY_TIME_SHARING_THRESHOLDS": "100,1000000",
    "ESTUARY_TIME_SHARING_MIN_SLICE_SECONDS": "5",
    "ESTUARY_TIME_SHARING_GRACE_SECONDS": "0",
    "ESTUARY_TIME_SHARING_CHECKPOINT_SECONDS": "0",
    "ESTUARY_TIME_SHARING_RESTART_SECONDS": "1",
}


@pytest.fixture(scope="session")
def kube(cluster: Cluster) -> Kube:
    return Kube(cluster.api_client(), cluster.kubectl)


@pytest.fixture(scope="session")
def estuary(
    cluster: Cluster, kube: Kube, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator running against the ci cluster, with its two ComputePools applied."""
    for pool in pools():
        kube.apply(pool)
    # its namespace, where it keeps its placement key (a restart must find the same key)
    cluster.kubectl("create", "namespace", "estuary-system", check=False)
    log = Path(tmp_path_factory.mktemp("operator")) / "operator.log"
    proc = OperatorProcess(
        cluster.kubeconfig,
        log,
        ESTUARY_JURISDICTION="hk",
        ESTUARY_METRICS_PORT=str(free_port()),
        **TIME_SHARING_IN_SECONDS,
    )
    proc.start()
    try:
        wait_for(
            lambda: all(
                (
                    kube.custom.get_cluster_custom_object("estuary.dev", "v1alpha1", "computepools", p).get(
                        "status"
                    )
                    or {}
                ).get("capacity")
                for p in ("h800", "ascend")
            ),
            timeout=90,
            what="the operator to report pool capacity",
        )
    except AssertionError:
        pytest.fail(f"operator did not come up; its log:\n{proc.log_tail()}", pytrace=False)
    yield proc
    proc.stop()


@pytest.fixture
def jobs_ns(namespace: str, kube: Kube, estuary: OperatorProcess) -> Iterator[str]:
    """A namespace for AIJobs; afterwards its jobs are deleted and their pods awaited gone, so the
    next test starts with every accelerator free."""
    yield namespace
    for job in kube.custom.list_namespaced_custom_object("estuary.dev", "v1alpha1", namespace, "aijobs")[
        "items"
    ]:
        kube.delete_job(namespace, job["metadata"]["name"])
    wait_for(lambda: not kube.pods(namespace), timeout=90, what=f"worker pods of {namespace} gone")
