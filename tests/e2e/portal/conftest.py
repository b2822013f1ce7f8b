"""Fixtures of the portal's browser tests: two tenants with one researcher each, a user with no
rights, a platform operator, the portal itself, and a fresh browser per test.

Set ESTUARY_PORTAL_SCREENSHOTS=docs/images/portal to write the screenshots into the docs.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devcluster import binaries
from devcluster.clusters import Cluster
from tests.e2e.kube_helpers import Kube
from tests.e2e.operator_process import OperatorProcess, wait_for
from tests.e2e.portal.harness import CHROMEDRIVER, CHROMIUM, Browser, PortalProcess, User, make_user


@dataclass(frozen=True)
class World:
    """Who exists: researchers alice (astronomy) and bob (genomics), carol with no rights at all, and
    ops, the platform team."""

    alice: User
    bob: User
    carol: User
    ops: User
    estuary_namespace: str  # where FederationLinks live

    @property
    def tokens(self) -> list[str]:
        return [u.token for u in (self.alice, self.bob, self.carol, self.ops)]


def _namespace(cluster: Cluster, prefix: str, tenant: str | None) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    if tenant:
        cluster.kubectl("label", "namespace", name, f"estuary.dev/tenant={tenant}")
    return name


def _researcher(cluster: Cluster, namespace: str, name: str) -> User:
    """A ServiceAccount bound to the built-in `edit` role in its own namespace, and nothing else."""
    user = make_user(cluster, namespace, name)
    cluster.kubectl(
        "create",
        "rolebinding",
        f"{name}-edit",
        "-n",
        namespace,
        "--clusterrole=edit",
        f"--serviceaccount={namespace}:{name}",
    )
    return user


REPO_ROOT = Path(__file__).resolve().parents[3]


RELEASE = "portal-test"  # its own release name, so these roles never clash with other tests


def install_roles(cluster: Cluster, pool_reader_groups: list[str]) -> None:
    """The chart's roles for people (`<release>-estuary-user` aggregated into `edit`, `-viewer` into
    `view`, `-admin` for platform teams, pool readers), rendered by the real helm and applied, as a
    platform team installs them."""
    helm = binaries.ensure().paths["helm"]
    command = [str(helm), "template", RELEASE, str(REPO_ROOT / "charts" / "estuary")]
    command += ["--show-only", "templates/roles.yaml"]
    for i, group in enumerate(pool_reader_groups):
        command += ["--set-string", f"userRoles.poolReaders[{i}]={group}"]
    rendered = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout
    cluster.kubectl("apply", "-f", "-", input=rendered)


@pytest.fixture(scope="session")
def world(cluster: Cluster, kube: Kube, estuary: OperatorProcess) -> Iterator[World]:
    astro = _namespace(cluster, "astro", "astronomy")
    genomics = _namespace(cluster, "genomics", "genomics")
    nobody = _namespace(cluster, "guest", None)
    platform = _namespace(cluster, "estuary-system", None)
    # Pools (capacity, quotas, every tenant's use) are readable by alice's namespace's accounts, as a
    # platform team may allow with userRoles.poolReaders; bob's may not read them.
    install_roles(cluster, [f"system:serviceaccounts:{astro}"])
    ops = make_user(cluster, platform, "ops")
    binding = f"{RELEASE}-ops-{platform}"
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        binding,
        f"--clusterrole={RELEASE}-estuary-admin",
        f"--serviceaccount={platform}:ops",
    )
    yield World(
        alice=_researcher(cluster, astro, "alice"),
        bob=_researcher(cluster, genomics, "bob"),
        carol=make_user(cluster, nobody, "carol"),
        ops=ops,
        estuary_namespace=platform,
    )
    for ns in (astro, genomics):
        cluster.kubectl("delete", "aij", "--all", "-n", ns, "--wait=false")
    for ns in (astro, genomics):
        wait_for(lambda ns=ns: not kube.pods(ns), timeout=90, what=f"pods of {ns} gone")
    cluster.kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found")
    for ns in (astro, genomics, nobody, platform):
        cluster.kubectl("delete", "namespace", ns, "--wait=false")


@pytest.fixture(scope="session")
def portal(
    cluster: Cluster, world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PortalProcess]:
    log = tmp_path_factory.mktemp("portal") / "portal.log"
    proc = PortalProcess(cluster.kubeconfig, log, "--operator-namespace", world.estuary_namespace)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("ESTUARY_PORTAL_SCREENSHOTS")
    path = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser(portal: PortalProcess, screenshot_dir: Path) -> Iterator[Browser]:
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "hack/browser.sh installs Debian's chromium"
    b = Browser(portal.url, screenshot_dir)
    yield b
    b.quit()
