"""The chaos tier's clusters: Hong Kong and Guangzhou as in hack/topologies/campus.yaml and the
examples (pools, tenant quotas, the gz link), each with its own operator, the link through a TCP
proxy the run can cut.

The tier takes about 15 minutes, so it runs only when asked for by name: `-m chaos` (alone or in
an expression naming it). Any other selection, the default `hack/test.sh` / `.ci/run` included,
leaves it out (deselected, not skipped).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import clusters, topology
from devcluster.clusters import Cluster
from devcluster.topology import ClusterSpec
from tests.chaos import measures
from tests.chaos.harness import REMOTE_NS, ApiOutage, Side
from tests.e2e.kube_helpers import Kube
from tests.e2e.operator_process import OperatorProcess, free_port, wait_for
from tests.e2e.provider_tools import TcpProxy

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
HOME_NS = "estuary-system"
SIGNING_KEY = "chaos-hk-to-gz-signing-key-5e2f1a"
LEASE, HEARTBEAT = 30, 5
TENANT_NAMESPACES = ("physics", "chemistry", "biology", "astronomy")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the chaos tier out unless the -m expression names it."""
    if "chaos" in (config.option.markexpr or ""):
        return
    chaos = [item for item in items if item.get_closest_marker("chaos")]
    if chaos:
        config.hook.pytest_deselected(items=chaos)
        items[:] = [item for item in items if not item.get_closest_marker("chaos")]


def _campus(name: str, renamed: str) -> ClusterSpec:
    spec = topology.load(REPO / "hack" / "topologies" / "campus.yaml").cluster(name)
    return dataclasses.replace(spec, name=renamed)


def _apply_file(kube: Kube, path: Path) -> None:
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": HOME_NS},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def _operator(
    handle: Cluster, kubeconfig: Path, kube: Kube, log: Path, pools: tuple[str, ...], **env: str
) -> OperatorProcess:
    proc = OperatorProcess(kubeconfig, log, ESTUARY_METRICS_PORT=str(free_port()), **env)
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
                for p in pools
            ),
            timeout=120,
            what=f"the {handle.name} operator to report pool capacity",
        )
    except AssertionError:
        proc.stop()
        pytest.fail(f"the {handle.name} operator did not come up; its log:\n{proc.log_tail()}", pytrace=False)
    return proc


def _port(kubeconfig: Path) -> int:
    return int(yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1])


def _through(kubeconfig: Path, port: int) -> dict[str, Any]:
    """The kubeconfig, pointed at a proxy on 127.0.0.1:port (the API server's certificate names
    127.0.0.1, so TLS holds)."""
    conf: dict[str, Any] = yaml.safe_load(kubeconfig.read_text())
    conf["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    return conf


def _side(kube: Kube) -> Side:
    return Side(
        kube,
        measures.allocatable(kube.api.sanitize_for_serialization(n) for n in kube.core.list_node().items),
    )


@pytest.fixture(scope="module")
def chaos_partner(
    cluster_factory: Callable[[str | ClusterSpec], Cluster], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, Side]]:
    handle = cluster_factory(_campus("gz", "chaos-gz"))
    clusters.apply_crds(handle, REPO / "crds")
    kube = Kube(handle.api_client(), handle.kubectl)
    _apply_file(kube, EXAMPLES / "federation" / "pools-gz.yaml")
    for ns in (HOME_NS, REMOTE_NS):
        handle.kubectl("create", "namespace", ns, check=False)
    kube.apply(_secret("estuary-origin-keys", {"hk": SIGNING_KEY}))
    log = tmp_path_factory.mktemp("chaos-gz") / "operator.log"
    proc = _operator(
        handle,
        handle.kubeconfig,
        kube,
        log,
        ("a800", "ascend910b"),
        ESTUARY_JURISDICTION="mainland",
        ESTUARY_CLUSTER_NAME="gz",
    )
    yield handle, _side(kube)
    proc.stop()


@pytest.fixture(scope="module")
def chaos_home(
    cluster_factory: Callable[[str | ClusterSpec], Cluster],
    chaos_partner: tuple[Cluster, Side],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Side, OperatorProcess, ApiOutage, TcpProxy]]:
    """Hong Kong: the example pools and quotas, four tenant namespaces, the example link to gz
    (lease 30 s, heartbeat 5 s, to fit the run) through a proxy, and the operator, which reaches
    its own API server through the outage proxies."""
    handle = cluster_factory(_campus("hk", "chaos-hk"))
    clusters.apply_crds(handle, REPO / "crds")
    kube = Kube(handle.api_client(), handle.kubectl)
    _apply_file(kube, EXAMPLES / "pools-hk.yaml")
    _apply_file(kube, EXAMPLES / "tenants" / "quotas.yaml")
    for ns in (HOME_NS, *TENANT_NAMESPACES):
        handle.kubectl("create", "namespace", ns, check=False)
    for ns in TENANT_NAMESPACES:
        handle.kubectl("label", "namespace", ns, f"estuary.dev/tenant={ns}", "--overwrite")
    partner, _ = chaos_partner
    port = int(
        yaml.safe_load(partner.kubeconfig.read_text())["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1]
    )
    proxy = TcpProxy(port)
    through = yaml.safe_load(partner.kubeconfig.read_text())
    through["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    kube.apply(_secret("gz-kubeconfig", {"kubeconfig": yaml.safe_dump(through), "signing-key": SIGNING_KEY}))
    link = yaml.safe_load((EXAMPLES / "federation" / "link-gz.yaml").read_text())
    link["spec"].update(leaseSeconds=LEASE, heartbeatSeconds=HEARTBEAT)
    kube.apply(link)
    workdir = tmp_path_factory.mktemp("chaos-hk")
    outage = ApiOutage(_port(handle.kubeconfig))
    kubeconfig = workdir / "kubeconfig-through-outage"
    kubeconfig.write_text(yaml.safe_dump(_through(handle.kubeconfig, outage.port)))
    proc = _operator(
        handle,
        kubeconfig,
        kube,
        workdir / "operator.log",
        ("h800", "ascend910b"),
        ESTUARY_JURISDICTION="hk",
        ESTUARY_CLUSTER_NAME="hk",
    )
    try:
        wait_for(
            lambda: (
                kube.custom.get_namespaced_custom_object(
                    "estuary.dev", "v1alpha1", HOME_NS, "federationlinks", "gz"
                ).get("status")
                or {}
            ).get("reachable"),
            timeout=60,
            what="link gz reachable",
        )
    except AssertionError:
        proc.stop()
        pytest.fail(f"link gz never became reachable:\n{proc.log_tail()}", pytrace=False)
    yield _side(kube), proc, outage, proxy
    proc.stop()
    proxy.close()
    outage.close()
