"""A FederationLink Estuary does not use says why in its status (Ready=False), once, and is never
contacted: one outside Estuary's namespace, or one that does not parse (stored before a schema
change). Its neighbours are unaffected."""

from __future__ import annotations

import base64
from typing import Any

from tests.fakeapi import Clock

from .world import SIGNING_KEY, kubeconfig, make_cluster


def _link(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "estuary.dev/v1alpha1",
        "kind": "FederationLink",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def test_links_estuary_does_not_use_say_why_once() -> None:
    hk = make_cluster("hk", Clock(), "hk")
    hk.server.put({"kind": "Namespace", "metadata": {"name": "physics"}})
    good = {"kubeconfigSecretRef": {"name": "gz"}, "jurisdiction": "mainland"}
    hk.server.put(_link("physics", "elsewhere", good))
    hk.server.put(_link("estuary-system", "broken", {**good, "jurisdiction": "moon"}))
    hk.step()
    outside = hk.server.get("federationlinks", "physics/elsewhere")
    broken = hk.server.get("federationlinks", "estuary-system/broken")
    assert outside is not None and broken is not None
    ready = outside["status"]["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "OutsideEstuaryNamespace")
    assert "create it in estuary-system" in ready["message"] and outside["status"]["reachable"] is False
    ready = broken["status"]["conditions"][0]
    assert (ready["reason"], ready["status"]) == ("InvalidSpec", "False") and "spec.jurisdiction" in ready[
        "message"
    ]
    assert "elsewhere" not in hk.federation.runtimes and "broken" not in hk.federation.runtimes
    versions = (outside["metadata"]["resourceVersion"], broken["metadata"]["resourceVersion"])
    hk.step()
    again = (
        hk.server.get("federationlinks", "physics/elsewhere")["metadata"]["resourceVersion"],  # type: ignore[index]
        hk.server.get("federationlinks", "estuary-system/broken")["metadata"]["resourceVersion"],  # type: ignore[index]
    )
    assert again == versions  # written once


def test_a_link_whose_kubeconfig_points_at_this_very_cluster_is_never_a_partner() -> None:
    hk = make_cluster("hk", Clock(), "hk")  # its links reach its own API server
    hk.server.put(
        {
            "kind": "Secret",
            "metadata": {"name": "self", "namespace": "estuary-system"},
            "data": {
                "kubeconfig": base64.b64encode(kubeconfig("good").encode()).decode(),
                "signing-key": base64.b64encode(SIGNING_KEY).decode(),
            },
        }
    )
    spec = {
        "kubeconfigSecretRef": {"name": "self"},
        "signingKeySecretRef": {"name": "self"},
        "jurisdiction": "hk",
        "allowedTenants": ["physics"],
    }
    hk.server.put(_link("estuary-system", "loop", spec))
    hk.step()
    hk.heartbeat("loop")
    hk.step()
    status = hk.link_status("loop")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PointsAtThisCluster")
    assert "points at this very cluster" in ready["message"] and status["reachable"] is False
