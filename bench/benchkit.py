"""What the operator benchmarks share: pools, AIJobs, the operator as a child process, a prepared
cluster. (operator_e2e.py, operator_steady.py, operator_memory.py)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from devcluster import clusters

REPO = Path(__file__).resolve().parents[1]
GROUP, VERSION = "estuary.dev", "v1alpha1"
TYPES = (("nvidia", "H800", "nvidia.com/gpu"), ("huawei", "Ascend910B", "huawei.com/Ascend910"))


def create_pools(custom: client.CustomObjectsApi) -> None:
    """One ComputePool per accelerator type of the cluster (those already there are kept)."""
    for vendor, model, resource in TYPES:
        pool = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ComputePool",
            "metadata": {"name": model.lower()},
            "spec": {
                "vendor": vendor,
                "model": model,
                "resourceName": resource,
                "nodeSelector": {"estuary.dev/model": model},
                "tolerations": [{"operator": "Exists"}],
            },
        }
        try:
            custom.create_cluster_custom_object(GROUP, VERSION, "computepools", pool)
        except client.ApiException as err:
            if err.status != 409:
                raise


def aijob(name: str, workers: int, per: int) -> dict[str, Any]:
    """An AIJob of `workers` x `per` accelerators accepting every type of the cluster."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AIJob",
        "metadata": {"name": name},
        "spec": {
            "workers": workers,
            "acceleratorsPerWorker": per,
            "resources": {"cpu": "1", "memory": "1Gi"},
            "accelerators": [{"vendor": v, "model": m, "image": "bench"} for v, m, _ in TYPES],
        },
    }


def start_operator(kubeconfig: Path, log: Path, port: int | None = None) -> subprocess.Popen[bytes]:
    """The operator as a child process (its own session, so it can be stopped with its children)."""
    metrics = {"ESTUARY_METRICS_PORT": str(port)} if port else {}
    return subprocess.Popen(
        [sys.executable, "-m", "estuary.cli", "operator"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), **metrics},
    )


def prepare(handle: Any, namespaces: tuple[str, ...]) -> None:
    """The CRDs applied and established, and these namespaces with their service accounts."""
    handle.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    for attempt in range(10):  # a CRD applied a moment ago may have no status yet: kubectl wait errs
        try:
            handle.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
            break
        except clusters.ClusterError:
            if attempt == 9:
                raise
            time.sleep(1)
    for ns in namespaces:
        handle.kubectl("create", "namespace", ns)
        clusters.wait_service_account(handle, ns, timeout=60)
    wait_untainted(handle)


QUIET_BUSY = 0.25  # the machine's busy share of its CPUs under which a burst may start


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def quiesce(window: float = 1.0, timeout: float = 60.0) -> float:
    """Wait until the machine's CPUs were less than QUIET_BUSY busy over one `window` (the
    previous run's deletions, garbage collection and Endpoints updates done), at most `timeout`
    seconds; returns the busy share last seen. Each contender of a comparison then starts from
    a quiet machine instead of paying for the cleanup of the one before it (the controller-manager
    collecting its objects, the Endpoints of its Services) on the same cores."""
    deadline, busy_share = time.monotonic() + timeout, 1.0
    while time.monotonic() < deadline:
        busy0, total0 = _cpu_ticks()
        time.sleep(window)
        busy1, total1 = _cpu_ticks()
        busy_share = (busy1 - busy0) / max(total1 - total0, 1)
        if busy_share < QUIET_BUSY:
            break
    return busy_share


NOT_READY_TAINT = "node.kubernetes.io/not-ready"


def wait_untainted(handle: Any, timeout: float = 180) -> None:
    """Until the controller-manager has taken the not-ready taint off every node. It does so a
    node at a time, tens of seconds after they are Ready; a run measured before then sees nodes
    change under it (the operator rebuilds its working view at each) and pods that do not
    tolerate the taint wait."""
    deadline = time.monotonic() + timeout
    template = "{range .items[*]}{.spec.taints[*].key}{'\\n'}{end}"
    while time.monotonic() < deadline:
        taints = handle.kubectl("get", "nodes", "-o", f"jsonpath={template}").stdout
        if NOT_READY_TAINT not in taints:
            return
        time.sleep(1)
    raise RuntimeError(f"nodes still carry {NOT_READY_TAINT} after {timeout:.0f}s")


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    """Until the operator's /readyz answers 200 (its cache primed from a listing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5).status == 200:
                return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError("the operator did not become ready")
