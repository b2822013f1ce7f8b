"""The Helm chart against a real API server: the rendered objects are accepted (server-side dry run,
then for real), RBAC is what the operator needs and no more (`kubectl auth can-i` as its
ServiceAccounts), and the README's install section works as written (`helm install`, then
`helm uninstall` keeps the CRDs).

On the local control plane no container runs: the operator's pods stay Pending (every simulated
node is a tainted accelerator node) and the agent's pods are marked Running by kwok. The objects,
the scheduling of the DaemonSet and the authorization decisions are all real.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import binaries

REPO_ROOT = Path(__file__).resolve().parents[2]

CHART = REPO_ROOT / "charts" / "estuary"
CRD_NAMES = (
    "aijobs.estuary.dev",
    "computepools.estuary.dev",
    "federationlinks.estuary.dev",
    "usageledgers.estuary.dev",
)


@pytest.fixture(scope="module")
def helm() -> Path:
    found = binaries.find().get("helm") or binaries.ensure()["helm"]
    return found


def run_helm(helm: Path, cluster: Any, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    proc = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300
    )
    if check:
        assert proc.returncode == 0, f"helm {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}"
    return proc


def can_i(cluster: Any, sa: str, *args: str) -> bool:
    """Whether the ServiceAccount (namespace:name) may do it, as the API server's authorizer says."""
    proc = cluster.kubectl("auth", "can-i", *args, f"--as=system:serviceaccount:{sa}", check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return bool(answer == "yes")


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(1)


@pytest.fixture
def release(namespace: str) -> str:
    """A release name of its own (cluster-scoped RBAC objects are named after it)."""
    return f"est-{namespace[-6:]}"


@pytest.fixture
def applied(cluster: Any, helm: Path, namespace: str, release: str) -> Iterator[list[dict[str, Any]]]:
    """The chart rendered for a fresh namespace and applied with kubectl, as GitOps tools do. The
    namespace enforces the `restricted` Pod Security Standard: the agent's pods exist only if
    their security context meets it, and the Deployment would draw a warning otherwise."""
    cluster.kubectl(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    )
    workers = f"rbac.workerNamespaces={{{namespace}}}"  # its own namespace stands for a tenant's
    rendered = run_helm(
        helm, cluster, "template", release, str(CHART), "-n", namespace, "--set", workers
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    dry = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert dry.stdout.count("(server dry run)") == len(docs)
    assert "PodSecurity" not in dry.stderr, dry.stderr
    cluster.kubectl("apply", "-f", "-", input=rendered)
    yield docs
    cluster.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=rendered, check=False)


def test_rendered_chart_with_crds_and_custom_resources_passes_server_dry_run(
    cluster: Any, helm: Path, namespace: str, release: str, tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "jurisdiction": "hk",
                "vendorProfiles": {"files": {"campus.yaml": "profiles: []\n"}},
                "computePools": [
                    {
                        "name": f"{release}-h800",
                        "spec": {
                            "vendor": "nvidia",
                            "model": "H800",
                            "nodeSelector": {"estuary.dev/model": "H800"},
                            "quotas": [{"tenant": "physics", "nominal": 16}],
                        },
                    }
                ],
            }
        )
    )
    rendered = run_helm(
        helm, cluster, "template", release, str(CHART), "-n", namespace, "--include-crds", "-f", str(values)
    ).stdout
    # Server-side, as Argo CD syncs it (ServerSideApply=true): the AIJob CRD, with the pod schema of
    # spec.template, is larger than the annotation a client-side apply writes (docs/jobs.md).
    ssa = ("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-")
    out = cluster.kubectl(*ssa, input=rendered).stdout
    assert f"computepool.estuary.dev/{release}-h800 serverside-applied (server dry run)" in out
    for crd in CRD_NAMES:
        assert f"customresourcedefinition.apiextensions.k8s.io/{crd}" in out
    # An invalid pool (a ComputePool needs a node selector) is refused by the API server itself.
    (pool,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "ComputePool"]
    del pool["spec"]["nodeSelector"]
    proc = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pool), check=False)
    assert proc.returncode != 0 and "nodeSelector" in proc.stderr


def test_chart_objects_are_created_and_the_agent_lands_on_accelerator_nodes(
    cluster: Any, applied: list[dict[str, Any]], namespace: str, release: str
) -> None:
    for crd in CRD_NAMES:
        cluster.kubectl("get", "crd", crd)
    deploy = yaml.safe_load(
        cluster.kubectl(
            "get", "deployment", f"{release}-estuary-operator", "-n", namespace, "-o", "yaml"
        ).stdout
    )
    assert deploy["spec"]["replicas"] == 2
    nodes = yaml.safe_load(cluster.kubectl("get", "nodes", "-o", "yaml").stdout)["items"]
    accelerator_nodes = {
        n["metadata"]["name"]
        for n in nodes
        if n["metadata"]["labels"].get("nvidia.com/gpu.present") == "true"
        or n["metadata"]["labels"].get("accelerator") == "huawei-Ascend910"
    }
    assert accelerator_nodes, "the ci topology has Ascend nodes labelled accelerator=huawei-Ascend910"

    def agent_nodes() -> set[str]:
        pods = yaml.safe_load(
            cluster.kubectl(
                "get",
                "pods",
                "-n",
                namespace,
                "-l",
                "app.kubernetes.io/component=agent",
                "-o",
                "yaml",
            ).stdout
        )["items"]
        return {p["spec"].get("nodeName") for p in pods}

    wait_for(lambda: agent_nodes() == accelerator_nodes, 60, "one agent pod on each accelerator node")


def test_operator_service_account_may_do_what_the_operator_does(
    cluster: Any, applied: list[dict[str, Any]], namespace: str, release: str
) -> None:
    sa = f"{namespace}:{release}-estuary-operator"
    allowed = [
        ("create", "pods", "-n", namespace),  # a namespace in rbac.workerNamespaces
        ("delete", "pods", "-n", namespace),
        ("create", "services", "-n", namespace),
        ("delete", "services", "-n", namespace),
        ("watch", "pods", "--all-namespaces"),
        ("get", "pods", "-n", "physics"),
        ("create", "secrets", "-n", namespace),  # its placement key
        ("list", "nodes"),
        ("watch", "namespaces"),
        ("list", "aijobs.estuary.dev", "--all-namespaces"),
        ("delete", "aijobs.estuary.dev", "-n", "physics"),
        ("patch", "aijobs.estuary.dev", "--subresource=status", "-n", "physics"),
        ("update", "computepools.estuary.dev", "--subresource=status"),
        ("patch", "federationlinks.estuary.dev", "--subresource=status", "-n", namespace),
        ("create", "events", "-n", "physics"),
        ("create", "events.events.k8s.io", "-n", "physics"),
        ("get", "secrets", "-n", namespace),
        ("update", "leases.coordination.k8s.io", "-n", namespace),
        ("create", "leases.coordination.k8s.io", "-n", namespace),
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ]
    refused = [
        ("*", "*"),
        ("*", "*", "--all-namespaces"),
        ("create", "clusterrolebindings"),
        ("escalate", "clusterroles"),
        ("get", "secrets", "-n", "kube-system"),
        ("list", "secrets", "--all-namespaces"),
        ("delete", "nodes"),
        ("patch", "nodes"),
        ("create", "pods", "--subresource=exec", "-n", "physics"),
        ("create", "pods", "-n", "physics"),  # not in rbac.workerNamespaces
        ("delete", "pods", "-n", "kube-system"),
        ("create", "pods", "--all-namespaces"),
        ("delete", "services", "--all-namespaces"),
        ("create", "secrets", "-n", "physics"),
        ("create", "deployments.apps", "-n", namespace),
        ("patch", "aijobs.estuary.dev", "-n", "physics"),  # spec belongs to the user
        ("create", "aijobs.estuary.dev", "-n", "physics"),
        ("update", "computepools.estuary.dev"),
        ("update", "leases.coordination.k8s.io", "-n", "kube-system"),
        ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
    ]
    assert [a for a in allowed if not can_i(cluster, sa, *a)] == []
    assert [r for r in refused if can_i(cluster, sa, *r)] == []


def test_agent_service_account_may_only_read_and_patch_nodes(
    cluster: Any, applied: list[dict[str, Any]], namespace: str, release: str
) -> None:
    sa = f"{namespace}:{release}-estuary-agent"
    assert can_i(cluster, sa, "get", "nodes") and can_i(cluster, sa, "patch", "nodes")
    for refused in [
        ("delete", "nodes"),
        ("list", "secrets", "-n", namespace),
        ("create", "pods", "-n", namespace),
        ("patch", "aijobs.estuary.dev", "--subresource=status", "-n", "physics"),
        ("*", "*"),
    ]:
        assert not can_i(cluster, sa, *refused), refused


def test_readme_install_works_and_uninstall_keeps_the_crds(cluster: Any, helm: Path) -> None:
    """README, "Install": helm install estuary charts/estuary -n estuary-system --create-namespace."""
    readme = (REPO_ROOT / "README.md").read_text()
    command = "helm install estuary charts/estuary -n estuary-system --create-namespace"
    assert command in readme
    if run_helm(helm, cluster, "status", "estuary", "-n", "estuary-system", check=False).returncode == 0:
        pytest.fail(
            "release estuary already exists in estuary-system; this test installs and uninstalls "
            "it, so it leaves a cluster with its own Estuary alone",
            pytrace=False,
        )
    try:
        out = run_helm(helm, cluster, *command.split()[1:]).stdout
        assert "STATUS: deployed" in out and "get lease estuary-operator" in out
        listed = yaml.safe_load(run_helm(helm, cluster, "list", "-n", "estuary-system", "-o", "yaml").stdout)
        assert [(r["name"], r["status"]) for r in listed] == [("estuary", "deployed")]
        for crd in CRD_NAMES:
            cluster.kubectl("get", "crd", crd)
        cluster.kubectl("get", "clusterrole", "estuary-operator")
        cluster.kubectl("get", "role,rolebinding", "estuary-operator", "-n", "estuary-system")
        sa = "estuary-system:estuary-operator"
        assert can_i(cluster, sa, "get", "pods", "-n", "physics")  # every pod counts in accounting
        assert not can_i(cluster, sa, "create", "pods", "-n", "physics")  # not in rbac.workerNamespaces
        assert not can_i(cluster, sa, "get", "secrets", "-n", "kube-system")
    finally:
        # The namespace stays, as after a real uninstall (other tests use estuary-system too).
        run_helm(helm, cluster, "uninstall", "estuary", "-n", "estuary-system", "--wait", check=False)
    for crd in CRD_NAMES:
        cluster.kubectl("get", "crd", crd)  # Helm never deletes the CRDs of crds/
    gone = cluster.kubectl("get", "clusterrole", "estuary-operator", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_kind_quickstart_manifests_are_accepted_by_the_api_server(cluster: Any, namespace: str) -> None:
    """deploy/kind cannot run here (no Docker), but its pools and jobs are checked for real."""
    kind_dir = REPO_ROOT / "deploy" / "kind"
    pools = cluster.kubectl("apply", "--dry-run=server", "-f", str(kind_dir / "pools.yaml")).stdout
    assert pools.count("(server dry run)") == 2
    jobs = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(kind_dir / "jobs.yaml")
    ).stdout
    assert jobs.count("created (server dry run)") == 3


@pytest.mark.parametrize("values", sorted((CHART / "ci").glob("*-values.yaml")), ids=lambda p: p.name)
def test_ci_values_files_render_objects_the_api_server_accepts(
    cluster: Any, helm: Path, namespace: str, release: str, values: Path
) -> None:
    rendered = run_helm(
        helm, cluster, "template", release, str(CHART), "-n", namespace, "-f", str(values)
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    dry = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert dry.stdout.count("(server dry run)") == len(docs)
