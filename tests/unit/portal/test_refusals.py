"""The API server's refusals, as sentences a researcher can act on."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

from estuary.portal import refusals


def api_error(status: int, message: str) -> ApiException:
    err = ApiException(status=status, reason="Forbidden")
    err.body = json.dumps({"kind": "Status", "message": message})
    return err


def test_a_namespaced_403_names_the_verb_resource_and_namespace() -> None:
    refusal = refusals.plain(
        api_error(
            403,
            'aijobs.estuary.dev is forbidden: User "system:serviceaccount:bio:bob" cannot list resource '
            '"aijobs" in API group "estuary.dev" in the namespace "physics"',
        )
    )
    assert refusal.status == 403
    assert refusal.sentence == (
        "You (system:serviceaccount:bio:bob) may not list aijobs.estuary.dev in namespace physics."
    )
    assert "is forbidden" in refusal.server_message


def test_a_cluster_scoped_403_says_across_the_cluster() -> None:
    refusal = refusals.plain(
        api_error(
            403,
            'computepools.estuary.dev is forbidden: User "alice" cannot list resource "computepools" in '
            'API group "estuary.dev" at the cluster scope',
        )
    )
    assert refusal.sentence == "You (alice) may not list computepools.estuary.dev across the cluster."


def test_core_resources_and_unparseable_bodies_still_give_a_sentence() -> None:
    core = refusals.plain(
        api_error(403, 'pods "x" is forbidden: User "u" cannot get resource "pods/log" in the namespace "n"')
    )
    assert core.sentence == "You (u) may not get pods/log in namespace n."
    odd = ApiException(status=403, reason="Forbidden")
    odd.body = "not json"
    assert refusals.plain(odd).sentence == "You may not do this: the API server refused it."
    assert refusals.plain(api_error(404, 'aijobs.estuary.dev "x" not found')).status == 404
