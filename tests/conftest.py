"""Shared pytest fixtures: a real local control plane for the end-to-end tests.

The e2e tests need a real kube-apiserver, controller-manager and scheduler with simulated
accelerator nodes. The session fixture ``cluster`` starts the ``ci`` topology
(hack/topologies/ci.yaml) with kwokctl in a temporary work directory, installs the CRDs of
``crds/`` and tears everything down at the end. Nothing starts unless an e2e test runs.

Fixtures:
  cluster          (session)  devcluster.clusters.Cluster: .name, .kubeconfig (Path),
                              .kubectl(*args, check=True, input=None, timeout=120) -> CompletedProcess[str],
                              .api_client() -> kubernetes.client.ApiClient, .ready() -> bool
  cluster_factory  (session)  callable(name or ClusterSpec) -> Cluster: more clusters (federation);
                              a name alone gives a cluster shaped like ci; the same name returns
                              the same cluster; all deleted at session end
  namespace        (function) name (str) of a fresh namespace on ``cluster`` with its default
                              ServiceAccount ready; deleted afterwards without waiting
Environment:
  ESTUARY_TEST_KUBECONFIG   use the cluster this kubeconfig points at instead of starting one
                            (it is neither created nor deleted; CRDs are still applied)
  ESTUARY_TEST_KEEP=1       leave the started clusters running (prints their kubeconfig)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devcluster import binaries, clusters, topology

REPO_ROOT = Path(__file__).resolve().parents[1]

CI_TOPOLOGY = REPO_ROOT / "hack" / "topologies" / "ci.yaml"
CRD_DIR = REPO_ROOT / "crds"
E2E_DIR = Path(__file__).resolve().parent / "e2e"
ROBUSTNESS_DIR = Path(__file__).resolve().parent / "robustness"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/e2e/ is an e2e test; every test under tests/robustness/ is a
    robustness test on the same local control plane (so an e2e test too)."""
    for item in items:
        parents = Path(str(item.path)).resolve().parents
        if E2E_DIR in parents:
            item.add_marker(pytest.mark.e2e)
        if ROBUSTNESS_DIR in parents:
            item.add_marker(pytest.mark.robustness)
            item.add_marker(pytest.mark.e2e)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build missing binaries before any test starts, so a cold build (20+ minutes) does not
    count against a test's timeout. Only when an e2e test was selected and no cluster is given.
    Likewise Debian's chromium and chromium-driver, only when a browser test was selected."""
    if session.config.option.collectonly:
        return
    if any(item.get_closest_marker("browser") for item in session.items):
        subprocess.run(["bash", str(REPO_ROOT / "hack" / "browser.sh")], check=True)
    if os.environ.get("ESTUARY_TEST_KUBECONFIG"):
        return
    if any(item.get_closest_marker("e2e") for item in session.items) and len(binaries.find()) < len(
        binaries.ALL_BINARIES
    ):
        binaries.ensure()


class _Clusters:
    """Starts clusters in one temporary kwok work directory and deletes them all at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._manager: clusters.Manager | None = None
        self.started: list[str] = []
        self.handles: dict[str, clusters.Cluster] = {}

    @property
    def manager(self) -> clusters.Manager:
        if self._manager is None:
            # Adopt the components kwokctl detaches, so they can be reaped (no zombies) at the end.
            clusters.become_subreaper()
            self._manager = clusters.Manager(binaries.ensure(), self.workdir, clusters.Progress())
        return self._manager

    def start(self, spec: topology.ClusterSpec) -> clusters.Cluster:
        """Start a cluster, or return the one of that name this session already started."""
        if spec.name in self.handles:
            return self.handles[spec.name]
        kubeconfig = self.workdir / f"kubeconfig-{spec.name}"
        self.started.append(spec.name)
        try:
            self.handles[spec.name] = self.manager.start(spec, kubeconfig)
            return self.handles[spec.name]
        except clusters.ClusterError as exc:
            logs = "" if "(tail)" in str(exc) else f"\n{self.manager.logs_tail(spec.name)}"
            pytest.fail(
                f"local cluster {spec.name!r} failed to start (work dir {self.workdir}):\n{exc}{logs}",
                pytrace=False,
            )

    def stop_all(self) -> None:
        if self._manager is None:
            return
        errors = []
        for name in reversed(self.started):
            try:
                self._manager.stop(name)
            except clusters.ClusterError as exc:
                errors.append(str(exc))
        self.started.clear()
        self.handles.clear()
        if errors:
            raise clusters.ClusterError("; ".join(errors))


@pytest.fixture(scope="session")
def _kwok_clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Clusters]:
    # A short path: kwokctl puts certificates, etcd data and logs under it.
    pool = _Clusters(tmp_path_factory.mktemp("kwok"))
    yield pool
    if os.environ.get("ESTUARY_TEST_KEEP") == "1":
        for name in pool.started:
            print(
                f"\nkept cluster {name}: KUBECONFIG={pool.workdir / f'kubeconfig-{name}'} "
                f"ESTUARY_KWOK_WORKDIR={pool.workdir}"
            )
        return
    pool.stop_all()


@pytest.fixture(scope="session")
def cluster(_kwok_clusters: _Clusters) -> clusters.Cluster:
    """The ``ci`` cluster (3 h800 nodes x 8 nvidia.com/gpu, 3 ascend nodes x 8 huawei.com/Ascend910)."""
    external = os.environ.get("ESTUARY_TEST_KUBECONFIG")
    if external:
        kubectl = binaries.find().get("kubectl") or shutil.which("kubectl")
        if kubectl is None:
            pytest.fail(
                "ESTUARY_TEST_KUBECONFIG is set but no kubectl found (run `python hack/cluster.py tools`)",
                pytrace=False,
            )
        handle = clusters.Cluster(
            name=os.environ.get("ESTUARY_TEST_CLUSTER", "ci"),
            kubeconfig=Path(external).resolve(),
            kubectl_path=Path(kubectl),
        )
        if not handle.ready():
            pytest.fail(f"ESTUARY_TEST_KUBECONFIG={external}: the API server is not ready", pytrace=False)
    else:
        handle = _kwok_clusters.start(topology.load(CI_TOPOLOGY).cluster("ci"))
    if list(CRD_DIR.glob("*.y*ml")):
        try:
            clusters.apply_crds(handle, CRD_DIR)
        except clusters.ClusterError as exc:
            pytest.fail(f"CRDs of {CRD_DIR} could not be installed:\n{exc}", pytrace=False)
    return handle


@pytest.fixture(scope="session")
def cluster_factory(_kwok_clusters: _Clusters) -> Callable[[str | topology.ClusterSpec], clusters.Cluster]:
    """Start another cluster (for federation tests); a plain name gives the ci cluster's shape."""
    ci = topology.load(CI_TOPOLOGY).cluster("ci")

    def make(spec: str | topology.ClusterSpec) -> clusters.Cluster:
        if isinstance(spec, str):
            spec = topology.ClusterSpec(name=spec, jurisdiction=ci.jurisdiction, node_pools=ci.node_pools)
        return _kwok_clusters.start(spec)

    return make


@pytest.fixture
def namespace(cluster: clusters.Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted afterwards (without waiting)."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    clusters.wait_service_account(cluster, name, timeout=60)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
