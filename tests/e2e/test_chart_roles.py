"""The chart's roles for people, rendered by the real helm (so in the e2e tier, beside
test_chart_render.py): what `edit`, `view` and platform teams gain, and nothing more. Whether the
API server's aggregation and authorizer agree is checked with `kubectl auth can-i` in
tests/e2e/test_researcher.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.test_chart_render import grants, helm, one, render, triples  # noqa: F401  (helm is a fixture)

JOB_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]


def test_user_role_is_aggregated_into_edit_and_admin_and_grants_aijobs_only(
    helm: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    role = one(render(helm, tmp_path), "ClusterRole", "estuary-user")
    labels = role["metadata"]["labels"]
    assert labels["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert "rbac.authorization.k8s.io/aggregate-to-view" not in labels
    assert triples(role["rules"]) == grants("estuary.dev", ["aijobs"], JOB_VERBS) | grants(
        "estuary.dev", ["aijobs/status"], ["get"]
    )


def test_viewer_role_is_aggregated_into_view_and_only_reads(helm: Path, tmp_path: Path) -> None:  # noqa: F811
    role = one(render(helm, tmp_path), "ClusterRole", "estuary-viewer")
    assert role["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert triples(role["rules"]) == grants(
        "estuary.dev", ["aijobs", "aijobs/status"], ["get", "list", "watch"]
    )


def test_admin_role_covers_pools_links_jobs_and_ledgers_but_no_status_writes(
    helm: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    role = one(render(helm, tmp_path), "ClusterRole", "estuary-admin")
    granted = triples(role["rules"])
    assert grants("estuary.dev", ["aijobs", "computepools", "federationlinks"], JOB_VERBS) <= granted
    assert ("estuary.dev", "usageledgers", "list") in granted
    assert not {t for t in granted if t[1].endswith("/status") and t[2] in ("patch", "update")}
    assert not {t for t in granted if t[1] == "usageledgers" and t[2] not in ("get", "list", "watch")}
    assert not [k for k in role["metadata"]["labels"] if k.startswith("rbac.authorization.k8s.io/aggregate")]


def test_pools_are_readable_by_the_named_groups_only_when_asked(helm: Path, tmp_path: Path) -> None:  # noqa: F811
    default = render(helm, tmp_path)
    assert not [d for d in default if d["metadata"]["name"] == "estuary-pool-reader"]
    docs = render(helm, tmp_path, {"userRoles": {"poolReaders": ["system:authenticated"]}})
    role = one(docs, "ClusterRole", "estuary-pool-reader")
    assert triples(role["rules"]) == grants(
        "estuary.dev", ["computepools", "computepools/status"], ["get", "list", "watch"]
    )
    binding: dict[str, Any] = one(docs, "ClusterRoleBinding", "estuary-pool-reader")
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}
    ]


def test_user_roles_can_be_left_out(helm: Path, tmp_path: Path) -> None:  # noqa: F811
    docs = render(helm, tmp_path, {"userRoles": {"create": False}})
    assert not [
        d for d in docs if d["metadata"]["name"] in ("estuary-user", "estuary-viewer", "estuary-admin")
    ]
