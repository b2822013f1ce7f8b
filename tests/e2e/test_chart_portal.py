"""The chart's optional portal (`portal.enabled`): off by default; when on, a Deployment that runs
`estuary portal` with arguments its command line accepts, a Service, and a ServiceAccount that has no
token and no rights, because the portal acts only with its users' tokens. Rendered by the real helm,
so in the e2e tier beside test_chart_render.py."""

# ruff: noqa: F811  (fixtures imported from test_chart_render are "redefined" as test parameters)
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from estuary.portal.cli import _parser

# helm and default_docs are test_chart_render's fixtures, imported so pytest finds them here.
from tests.e2e.test_chart_render import (  # noqa: F401
    NAMESPACE,
    container,
    default_docs,
    env_of,
    helm,
    kinds,
    one,
    port,
    render,
    run_helm,
    values_file,
)

ON = {"portal": {"enabled": True, "namespaces": ["physics", "biology"], "existingSecret": "portal-session"}}


@pytest.fixture
def portal_docs(helm: Path, tmp_path: Path) -> list[dict[str, Any]]:
    return render(helm, tmp_path, ON)


def test_the_portal_is_off_by_default(default_docs: list[dict[str, Any]]) -> None:
    assert not [k for k in kinds(default_docs) if k[1].endswith("-portal")]


def test_the_portal_runs_estuary_portal_with_arguments_it_accepts(portal_docs: list[dict[str, Any]]) -> None:
    deploy = one(portal_docs, "Deployment", "estuary-portal")
    c = container(deploy)
    assert c["args"][0] == "portal"
    args = _parser().parse_args(c["args"][1:])  # exits (fails the test) on an unknown argument
    assert (args.host, args.port, args.operator_namespace) == ("0.0.0.0", port(c, "http"), NAMESPACE)
    assert args.namespace == ["physics", "biology"] and not args.insecure_cookies
    assert env_of(c)["ESTUARY_PORTAL_SECRET"] == {
        "secretKeyRef": {"name": "portal-session", "key": "session-secret"}
    }
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_the_service_reaches_the_portals_port(portal_docs: list[dict[str, Any]]) -> None:
    deploy = one(portal_docs, "Deployment", "estuary-portal")
    service = one(portal_docs, "Service", "estuary-portal")
    assert service["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    (svc_port,) = service["spec"]["ports"]
    assert svc_port["targetPort"] == "http" and svc_port["port"] == 80


def test_the_portal_has_no_token_and_no_rights_of_its_own(portal_docs: list[dict[str, Any]]) -> None:
    pod = one(portal_docs, "Deployment", "estuary-portal")["spec"]["template"]["spec"]
    sa = one(portal_docs, "ServiceAccount", pod["serviceAccountName"])
    assert pod["automountServiceAccountToken"] is False and sa["automountServiceAccountToken"] is False
    for doc in portal_docs:
        if doc["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            assert all(s.get("name") != sa["metadata"]["name"] for s in doc["subjects"]), doc["metadata"]
    # The cluster's CA is all it mounts from the API's side.
    (ca,) = [v for v in pod["volumes"] if v["name"] == "kube-ca"]
    assert ca["configMap"] == {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert not [d for d in portal_docs if d["kind"] == "Secret"], "the chart renders no secret"


def test_the_portal_pod_is_hardened(portal_docs: list[dict[str, Any]]) -> None:
    deploy = one(portal_docs, "Deployment", "estuary-portal")
    assert deploy["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    c = container(deploy)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"portal": {"enabled": True, "replicas": 2}}, "portal.existingSecret"),
        ({"portal": {"namespaces": ["Not_A_Namespace"]}}, "namespaces"),
        ({"portal": {"sessionHours": 0}}, "sessionHours"),
        ({"portal": {"enabeld": True}}, "enabeld"),
    ],
)
def test_bad_portal_values_are_refused_naming_the_key(
    helm: Path, tmp_path: Path, values: dict[str, Any], named: str
) -> None:
    proc = run_helm(
        helm, "template", "estuary", "charts/estuary", "-f", values_file(tmp_path, values), check=False
    )
    assert proc.returncode != 0 and named in proc.stderr + proc.stdout
