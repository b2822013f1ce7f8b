"""The Helm chart (charts/estuary) renders what a platform team relies on.

Rendered with the real `helm` binary (v4, built once into the binary cache by hack/devcluster, so
this is in the e2e tier: the unit tier never builds or downloads anything), then
checked as objects: the operator Deployment and agent DaemonSet wired to the operator's own command
line, least-privilege RBAC rule by rule, hardened security contexts, metrics plumbing, and values
that the schema refuses. The cluster-side checks (server dry-run, `kubectl auth can-i`, `helm
install`) are in tests/e2e/test_chart.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import binaries
from estuary.agent import cli as agent_cli
from estuary.cli import main as estuary_command
from estuary.vendors import loader

REPO_ROOT = Path(__file__).resolve().parents[2]

CHART = REPO_ROOT / "charts" / "estuary"
NAMESPACE = "estuary-system"
RELEASE = "estuary"


@pytest.fixture(scope="session")
def helm() -> Path:
    """The cached helm binary (the e2e tier builds the binaries it lacks before any test starts)."""
    found = binaries.find().get("helm") or binaries.ensure()["helm"]
    assert found is not None, f"helm {binaries.HELM_VERSION} missing from {binaries.bin_dir()}"
    return found


def run_helm(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(helm), *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    if check:
        assert proc.returncode == 0, f"helm {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}"
    return proc


def values_file(tmp_path: Path, values: dict[str, Any]) -> str:
    path = tmp_path / f"values-{len(list(tmp_path.glob('values-*')))}.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def render(
    helm: Path, tmp_path: Path, values: dict[str, Any] | None = None, *extra: str
) -> list[dict[str, Any]]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, *extra]
    if values:
        args += ["-f", values_file(tmp_path, values)]
    out = run_helm(helm, *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    names = [d["metadata"]["name"] for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} {name}, found {names}"
    return found[0]


def kinds(docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["kind"], d["metadata"]["name"]) for d in docs}


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def port(c: dict[str, Any], name: str) -> int:
    return int(next(p["containerPort"] for p in c["ports"] if p["name"] == name))


def triples(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) for every combination a rule grants."""
    out = set()
    for rule in rules:
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    out.add((group, resource, verb))
    return out


def grants(group: str, resources: list[str], verbs: list[str]) -> set[tuple[str, str, str]]:
    return {(group, r, v) for r in resources for v in verbs}


@pytest.fixture
def default_docs(helm: Path, tmp_path: Path) -> list[dict[str, Any]]:
    return render(helm, tmp_path)


# -- helm lint, determinism, schema ----------------------------------------------------------


def test_helm_lint_is_clean(helm: Path) -> None:
    proc = run_helm(helm, "lint", "--strict", str(CHART))
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


def test_helm_template_is_deterministic(helm: Path, tmp_path: Path) -> None:
    values = {
        "vendorProfiles": {"files": {"campus.yaml": "profiles: []\n"}},
        "computePools": [
            {
                "name": "h800",
                "spec": {"vendor": "nvidia", "model": "H800", "nodeSelector": {"estuary.dev/model": "H800"}},
            }
        ],
        "serviceMonitor": {"enabled": True},
    }
    args = [
        "template",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--include-crds",
        "-f",
        values_file(tmp_path, values),
    ]
    assert run_helm(helm, *args).stdout == run_helm(helm, *args).stdout
    # Nothing that varies between renders (or with the cluster's state) is used at all.
    sources = "".join(p.read_text() for p in sorted((CHART / "templates").glob("*")))
    actions = "".join(re.findall(r"\{\{.*?\}\}", sources, flags=re.S))
    assert not re.search(r"\b(rand\w*|uuidv4|now|date\w*|unixEpoch|gen\w+|lookup)\b", actions)


BAD_VALUES = [
    ({"operator": {"replicass": 3}}, "replicass"),
    ({"jurisdiction": "eu"}, "jurisdiction"),
    ({"operator": {"replicas": -1}}, "replicas"),
    ({"agent": {"metricsPort": "9402"}}, "metricsPort"),
    ({"agent": {"backend": "amd"}}, "backend"),
    ({"image": {"digest": "latest"}}, "digest"),
    ({"vendorProfiles": {"files": {"extra.json": "profiles: []"}}}, "extra.json"),
    ({"computePools": [{"name": "h800", "spec": {"vendor": "nvidia", "model": "H800"}}]}, "nodeSelector"),
    ({"serviceMonitor": {"interval": "often"}}, "interval"),
]


@pytest.mark.parametrize("command", ["lint", "template"])
@pytest.mark.parametrize(("values", "named"), BAD_VALUES, ids=[n for _, n in BAD_VALUES])
def test_bad_values_are_refused_naming_the_key(
    helm: Path, tmp_path: Path, command: str, values: dict[str, Any], named: str
) -> None:
    args = [
        command,
        *(["estuary"] if command == "template" else []),
        str(CHART),
        "-f",
        values_file(tmp_path, values),
    ]
    proc = run_helm(helm, *args, check=False)
    assert proc.returncode != 0, f"helm {command} accepted {values}"
    assert named in proc.stderr + proc.stdout


# -- the operator ----------------------------------------------------------------------------


def test_operator_runs_two_replicas_spread_over_nodes(default_docs: list[dict[str, Any]]) -> None:
    deploy = one(default_docs, "Deployment", "estuary-operator")
    assert deploy["metadata"]["namespace"] == NAMESPACE
    assert deploy["spec"]["replicas"] == 2
    pod = deploy["spec"]["template"]
    anti = pod["spec"]["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti  # preferred only
    term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert deploy["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    pdb = one(default_docs, "PodDisruptionBudget", "estuary-operator")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == deploy["spec"]["selector"]


def test_operator_container_runs_estuary_operator_with_its_environment(
    default_docs: list[dict[str, Any]],
) -> None:
    c = container(one(default_docs, "Deployment", "estuary-operator"))
    assert c["image"] == "estuary:0.1.0"  # the chart's appVersion
    assert c["args"][0] == "operator" and "operator" in estuary_command.commands
    env = env_of(c)
    assert env["ESTUARY_LEADER_ELECTION"] == "true"
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["ESTUARY_METRICS_PORT"] == str(port(c, "metrics")) == "8080"
    assert "ESTUARY_JURISDICTION" not in env and "ESTUARY_VENDOR_PROFILES" not in env
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}


def test_jurisdiction_image_and_extra_args_reach_the_operator(helm: Path, tmp_path: Path) -> None:
    docs = render(
        helm,
        tmp_path,
        {
            "jurisdiction": "mainland",
            "operator": {"extraArgs": ["--verbose"]},
            "image": {"repository": "harbor.example.edu/estuary/estuary", "digest": "sha256:" + "a" * 64},
        },
    )
    c = container(one(docs, "Deployment", "estuary-operator"))
    assert env_of(c)["ESTUARY_JURISDICTION"] == "mainland"
    assert c["args"] == ["operator", "--verbose"]
    assert c["image"] == "harbor.example.edu/estuary/estuary@sha256:" + "a" * 64


def test_extra_vendor_profiles_are_mounted_and_named_in_the_env(helm: Path, tmp_path: Path) -> None:
    campus = (
        "profiles:\n  - key: biren\n    displayName: Biren\n    resourceNames: [birentech.com/gpu]\n"
        "    visibleDevicesEnv: [BR_VISIBLE_DEVICES]\n    collective: BCCL\n    torchBackend: bccl\n"
    )
    files = {"zz-campus.yaml": campus, "aa-override.yml": "profiles: []\n"}
    docs = render(helm, tmp_path, {"vendorProfiles": {"files": files}})
    deploy = one(docs, "Deployment", "estuary-operator")
    c = container(deploy)
    paths = env_of(c)["ESTUARY_VENDOR_PROFILES"].split(",")
    assert paths == ["/etc/estuary/vendors/aa-override.yml", "/etc/estuary/vendors/zz-campus.yaml"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "vendor-profiles")
    volume = next(v for v in deploy["spec"]["template"]["spec"]["volumes"] if v["name"] == "vendor-profiles")
    cm = one(docs, "ConfigMap", volume["configMap"]["name"])
    for path in paths:
        directory, name = path.rsplit("/", 1)
        assert directory == mount["mountPath"]
        assert cm["data"][name] == files[name]
    # The operator's own loader accepts what is mounted.
    assert [p.key for p in loader.parse(cm["data"]["zz-campus.yaml"], "zz-campus.yaml")] == ["biren"]
    # Changing a profile rolls the operator pods.
    files["zz-campus.yaml"] = campus.replace("Biren", "Biren BR100")
    again = one(
        render(helm, tmp_path, {"vendorProfiles": {"files": files}}), "Deployment", "estuary-operator"
    )
    checksum = "checksum/vendor-profiles"
    assert (
        again["spec"]["template"]["metadata"]["annotations"][checksum]
        != deploy["spec"]["template"]["metadata"]["annotations"][checksum]
    )


# -- the node agent --------------------------------------------------------------------------


def test_agent_command_line_is_what_estuary_agent_accepts(
    default_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = one(default_docs, "DaemonSet", "estuary-agent")
    c = container(ds)
    assert env_of(c)["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert c["args"][0] == "agent" and "agent" in estuary_command.commands
    monkeypatch.setenv("NODE_NAME", "gpu-node-1")
    options = agent_cli.parse_args(c["args"][1:])
    assert options.node == "gpu-node-1"
    assert options.metrics_port == port(c, "metrics") == 9402
    assert (options.backend, options.interval_s) == ("auto", 30.0)
    service = one(default_docs, "Service", "estuary-agent-metrics")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["selector"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()


def test_agent_runs_on_accelerator_nodes_and_tolerates_their_taints(
    default_docs: list[dict[str, Any]],
) -> None:
    spec = one(default_docs, "DaemonSet", "estuary-agent")["spec"]["template"]["spec"]
    required = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    terms = required["nodeSelectorTerms"]
    assert {(e["key"], tuple(e["values"])) for t in terms for e in t["matchExpressions"]} == {
        ("nvidia.com/gpu.present", ("true",)),
        ("accelerator", ("huawei-Ascend910",)),
    }
    assert spec["tolerations"] == [{"operator": "Exists"}]


def test_agent_placement_is_configurable(helm: Path, tmp_path: Path) -> None:
    docs = render(
        helm,
        tmp_path,
        {
            "agent": {
                "nodeSelector": {"estuary.dev/agent": "true"},
                "tolerations": [
                    {"key": "estuary.dev/accelerator", "operator": "Exists", "effect": "NoSchedule"}
                ],
                "backend": "ascend",
                "interval": 10,
                "metricsPort": 9500,
                "runtimeClassName": "nvidia",
            }
        },
    )
    ds = one(docs, "DaemonSet", "estuary-agent")
    spec = ds["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"estuary.dev/agent": "true"}
    assert "affinity" not in spec  # a node selector replaces the default accelerator-node affinity
    assert spec["tolerations"][0]["key"] == "estuary.dev/accelerator"
    assert spec["runtimeClassName"] == "nvidia"
    c = container(ds)
    assert {"--backend=ascend", "--interval=10", "--metrics-port=9500"} <= set(c["args"])
    assert port(c, "metrics") == 9500


def test_agent_disabled_leaves_no_agent_objects(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {"agent": {"enabled": False}})
    assert not [k for k in kinds(docs) if k[1].endswith("-agent") or k[1].endswith("-agent-metrics")]
    assert ("Deployment", "estuary-operator") in kinds(docs)


# -- security --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name"), [("Deployment", "estuary-operator"), ("DaemonSet", "estuary-agent")]
)
def test_pods_are_hardened(default_docs: list[dict[str, Any]], kind: str, name: str) -> None:
    workload = one(default_docs, kind, name)
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    c = container(workload)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert not c["securityContext"].get("privileged")
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]


# -- RBAC ------------------------------------------------------------------------------------

OPERATOR_CLUSTER_GRANTS = (
    grants("estuary.dev", ["aijobs"], ["get", "list", "watch", "delete"])
    | grants("estuary.dev", ["aijobs/finalizers"], ["update"])
    | grants("estuary.dev", ["computepools", "federationlinks"], ["get", "list", "watch"])
    | grants(
        "estuary.dev",
        ["aijobs/status", "computepools/status", "federationlinks/status"],
        ["get", "patch", "update"],
    )
    | grants("estuary.dev", ["usageledgers"], ["get", "list", "create"])
    | grants("estuary.dev", ["usageledgers/status"], ["get", "patch"])
    | grants("", ["pods", "namespaces", "nodes"], ["get", "list", "watch"])
    | grants("", ["events"], ["create", "patch"])
    | grants("events.k8s.io", ["events"], ["create", "patch"])
    | grants("apiextensions.k8s.io", ["customresourcedefinitions"], ["get", "list", "watch"])
)
WORKER_GRANTS = grants("", ["pods"], ["create", "delete"]) | grants(
    "", ["services"], ["get", "create", "delete"]
)
OPERATOR_NAMESPACE_GRANTS = (
    grants("", ["secrets"], ["get", "list", "watch", "create"])  # create: its placement key, once
    | grants("", ["configmaps"], ["get", "list", "create", "patch"])  # spend records
    | grants("coordination.k8s.io", ["leases"], ["get", "list", "watch", "create", "update", "patch"])
)


def test_operator_cluster_role_grants_exactly_what_the_operator_uses(
    default_docs: list[dict[str, Any]],
) -> None:
    role = one(default_docs, "ClusterRole", "estuary-operator")
    assert triples(role["rules"]) == OPERATOR_CLUSTER_GRANTS
    # Never spec writes to the custom resources, never secrets cluster-wide, never RBAC.
    granted = triples(role["rules"])
    assert not {
        t
        for t in granted
        if t[1] in ("aijobs", "computepools", "federationlinks") and t[2] in ("create", "update", "patch")
    }
    assert not {t for t in granted if t[1] == "secrets" or t[0] == "rbac.authorization.k8s.io"}


def test_workers_are_created_only_in_the_namespaces_the_values_name(helm: Path, tmp_path: Path) -> None:
    """Pods and Services: no binding by default; a RoleBinding per listed namespace; cluster-wide
    only when asked for (docs/install.md, "Tenant namespaces")."""
    default = render(helm, tmp_path)
    assert triples(one(default, "ClusterRole", "estuary-workers")["rules"]) == WORKER_GRANTS
    bound = [d for d in default if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert not [d for d in bound if d["roleRef"]["name"] == "estuary-workers"]
    docs = render(helm, tmp_path, {"rbac": {"workerNamespaces": ["physics", "estuary-burst"]}})
    bindings = [d for d in docs if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == "estuary-workers"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["estuary-burst", "physics"]
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "ClusterRole"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "estuary-operator", "namespace": NAMESPACE}
        ]
    assert not [
        d for d in docs if d["kind"] == "ClusterRoleBinding" and d["metadata"]["name"] == "estuary-workers"
    ]
    wide = render(helm, tmp_path, {"rbac": {"workersClusterWide": True}})
    assert one(wide, "ClusterRoleBinding", "estuary-workers")["roleRef"]["name"] == "estuary-workers"


def test_secrets_and_lease_are_granted_in_the_release_namespace_only(
    default_docs: list[dict[str, Any]],
) -> None:
    role = one(default_docs, "Role", "estuary-operator")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert triples(role["rules"]) == OPERATOR_NAMESPACE_GRANTS
    binding = one(default_docs, "RoleBinding", "estuary-operator")
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "estuary-operator",
    }


def test_agent_may_only_read_and_patch_nodes(default_docs: list[dict[str, Any]]) -> None:
    role = one(default_docs, "ClusterRole", "estuary-agent")
    assert triples(role["rules"]) == grants("", ["nodes"], ["get", "patch"])


@pytest.mark.parametrize(
    ("workload", "binding_kinds"),
    [
        (
            ("Deployment", "estuary-operator"),
            [("ClusterRoleBinding", "estuary-operator"), ("RoleBinding", "estuary-operator")],
        ),
        (("DaemonSet", "estuary-agent"), [("ClusterRoleBinding", "estuary-agent")]),
    ],
)
def test_bindings_name_the_service_account_the_pods_run_as(
    default_docs: list[dict[str, Any]], workload: tuple[str, str], binding_kinds: list[tuple[str, str]]
) -> None:
    sa = one(default_docs, *workload)["spec"]["template"]["spec"]["serviceAccountName"]
    one(default_docs, "ServiceAccount", sa)
    for kind, name in binding_kinds:
        binding = one(default_docs, kind, name)
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
        one(default_docs, binding["roleRef"]["kind"], binding["roleRef"]["name"])


def test_no_role_grants_wildcards(default_docs: list[dict[str, Any]]) -> None:
    for doc in default_docs:
        for rule in doc.get("rules", []) if doc["kind"] in ("Role", "ClusterRole") else []:
            assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], doc["metadata"]["name"]
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


# -- metrics, dashboard ----------------------------------------------------------------------


def test_operator_metrics_service_reaches_the_metrics_port(default_docs: list[dict[str, Any]]) -> None:
    deploy = one(default_docs, "Deployment", "estuary-operator")
    service = one(default_docs, "Service", "estuary-operator-metrics")
    assert service["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    (svc_port,) = service["spec"]["ports"]
    assert svc_port["targetPort"] == "metrics" and svc_port["port"] == port(container(deploy), "metrics")
    assert not [d for d in default_docs if d["kind"] == "ServiceMonitor"]  # off by default


def test_service_monitors_select_the_metrics_services(helm: Path, tmp_path: Path) -> None:
    docs = render(
        helm, tmp_path, {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}, "interval": "15s"}}
    )
    for component in ("operator", "agent"):
        monitor = one(docs, "ServiceMonitor", f"estuary-{component}")
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "kps"
        service = one(docs, "Service", f"estuary-{component}-metrics")
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
        assert monitor["spec"]["endpoints"][0]["interval"] == "15s"


def test_dashboard_configmap_carries_the_chart_dashboard(
    default_docs: list[dict[str, Any]], helm: Path, tmp_path: Path
) -> None:
    cm = one(default_docs, "ConfigMap", "estuary-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "dashboards" / "estuary.json").read_text())
    assert json.loads(cm["data"]["estuary.json"]) == shipped
    docs = render(
        helm,
        tmp_path,
        {"dashboard": {"namespace": "monitoring", "annotations": {"grafana_folder": "Estuary"}}},
    )
    moved = one(docs, "ConfigMap", "estuary-dashboard")
    assert moved["metadata"]["namespace"] == "monitoring"
    assert moved["metadata"]["annotations"]["grafana_folder"] == "Estuary"
    off = render(helm, tmp_path, {"dashboard": {"enabled": False}})
    assert ("ConfigMap", "estuary-dashboard") not in kinds(off)


# -- Argo CD ordering, custom resources, notes -----------------------------------------------

WAVE = "argocd.argoproj.io/sync-wave"


def test_sync_waves_order_crds_then_operator_then_custom_resources(helm: Path, tmp_path: Path) -> None:
    pools = [
        {
            "name": "h800",
            "spec": {"vendor": "nvidia", "model": "H800", "nodeSelector": {"estuary.dev/model": "H800"}},
        }
    ]
    docs = render(helm, tmp_path, {"computePools": pools}, "--include-crds")

    def wave(doc: dict[str, Any]) -> int:
        return int((doc["metadata"].get("annotations") or {}).get(WAVE, "0"))

    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    pools_out = [d for d in docs if d["kind"] == "ComputePool"]
    own = [d for d in docs if d not in crds and d not in pools_out]
    assert len(crds) == 4 and len(pools_out) == 1
    assert all(WAVE in d["metadata"]["annotations"] for d in own)
    assert max(map(wave, crds)) <= min(map(wave, own))
    assert max(map(wave, own)) < min(map(wave, pools_out))
    assert pools_out[0]["spec"] == pools[0]["spec"]


def test_install_notes_say_who_leads_and_how_to_upgrade_crds(helm: Path) -> None:
    out = run_helm(helm, "install", RELEASE, str(CHART), "-n", NAMESPACE, "--dry-run=client").stdout
    notes = out[out.index("NOTES:") :]
    assert "get lease estuary-operator" in notes
    assert "kubectl apply --server-side --force-conflicts -f crds/" in notes


def test_example_argocd_application_points_at_the_chart_with_valid_values(helm: Path, tmp_path: Path) -> None:
    app = yaml.safe_load((REPO_ROOT / "deploy" / "argocd" / "application.yaml").read_text())
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    source = app["spec"]["source"]
    assert REPO_ROOT / source["path"] == CHART
    # No cascading-delete finalizer: deleting the Application must not delete the CRDs (and with
    # them every AIJob).
    assert "resources-finalizer.argocd.argoproj.io" not in app["metadata"].get("finalizers", [])
    docs = render(helm, tmp_path, source["helm"]["valuesObject"])
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "ComputePool"} == {"h800", "ascend910b"}


@pytest.mark.parametrize("values", sorted((CHART / "ci").glob("*-values.yaml")), ids=lambda p: p.name)
def test_ci_values_files_lint_and_render(helm: Path, values: Path) -> None:
    """The example values files under ci/ (chart-testing's convention) stay valid."""
    proc = run_helm(helm, "lint", "--strict", str(CHART), "-f", str(values))
    assert "[ERROR]" not in proc.stdout and "[WARNING]" not in proc.stdout, proc.stdout
    run_helm(helm, "template", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(values))


def test_ascend_agent_values_give_npu_smi_what_it_needs(helm: Path, tmp_path: Path) -> None:
    values = yaml.safe_load((CHART / "ci" / "ascend-agent-values.yaml").read_text())
    ds = one(render(helm, tmp_path, values), "DaemonSet", "estuary-agent")
    c = container(ds)
    assert c["securityContext"]["privileged"] is True
    assert ds["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 0
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/usr/local/Ascend/driver", "/usr/local/sbin/npu-smi", "/dev"} <= mounts
    assert env_of(c)["NVIDIA_VISIBLE_DEVICES"] == "all"  # NVIDIA nodes of a mixed cluster still see NVML
