"""Argo CD health checks of Estuary's custom resources (deploy/argocd/health/*.lua).

Argo CD runs health scripts with gopher-lua (Lua 5.1): the object is the global `obj` and the
script returns a table with `status` and `message`. Here they run under LuaJIT 2.1 (lupa), against
status objects built with the operator's own status models, so a renamed status field breaks
these tests instead of a dashboard in production.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from lupa import luajit21

from estuary.api.aijob import AIJobStatus, Placement
from estuary.api.base import Condition
from estuary.api.computepool import ComputePoolStatus
from estuary.api.federationlink import FederationLinkStatus

REPO_ROOT = Path(__file__).resolve().parents[2]
HEALTH_DIR = REPO_ROOT / "deploy" / "argocd" / "health"
ARGOCD_STATES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def to_lua(runtime: Any, value: Any) -> Any:
    """JSON-like Python data as Lua values, the way Argo CD hands objects to the script."""
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def health(kind: str, status: dict[str, Any] | None, generation: int | None = None) -> tuple[str, str]:
    runtime = luajit21.LuaRuntime()
    obj: dict[str, Any] = {
        "apiVersion": "estuary.dev/v1alpha1",
        "kind": kind,
        "metadata": {
            "name": "x",
            "namespace": "physics",
            **({"generation": generation} if generation else {}),
        },
        "spec": {},
    }
    if status is not None:
        obj["status"] = status
    runtime.globals().obj = to_lua(runtime, obj)
    hs = runtime.execute((HEALTH_DIR / f"estuary.dev_{kind}.lua").read_text())
    result = dict(hs.items())
    assert set(result) == {"status", "message"}, result
    assert result["status"] in ARGOCD_STATES
    return str(result["status"]), str(result["message"])


def wire(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = model.to_wire()
    return out


PLACEMENT = Placement(
    cluster="local",
    pool="h800",
    vendor="nvidia",
    model="H800",
    resource="nvidia.com/gpu",
    nodes=["h800-0", "h800-1"],
    workers=2,
)


# -- AIJob -----------------------------------------------------------------------------------


def test_aijob_without_status_is_progressing() -> None:
    assert health("AIJob", None)[0] == "Progressing"
    assert health("AIJob", {})[0] == "Progressing"


def test_queued_aijob_is_progressing_and_says_why_it_waits() -> None:
    status = wire(
        AIJobStatus(
            phase="Queued",
            queue_position=3,
            reason="QuotaExceeded",
            message="tenant physics uses 16/16 nvidia/H800",
        )
    )
    state, message = health("AIJob", status)
    assert state == "Progressing"
    assert "position 3" in message and "tenant physics uses 16/16 nvidia/H800" in message


def test_admitted_aijob_is_progressing_with_its_placement() -> None:
    state, message = health(
        "AIJob", wire(AIJobStatus(phase="Admitted", placement=PLACEMENT, accelerator="nvidia/H800"))
    )
    assert (state, message) == ("Progressing", "Admitted, starting workers (nvidia/H800, pool h800)")


def test_running_aijob_is_progressing_like_a_job_and_names_where_it_runs() -> None:
    state, message = health(
        "AIJob", wire(AIJobStatus(phase="Running", placement=PLACEMENT, accelerator="nvidia/H800"))
    )
    assert (state, message) == ("Progressing", "Running (nvidia/H800, pool h800)")
    burst = PLACEMENT.model_copy(update={"cluster": "gz", "link": "gz"})
    _, message = health("AIJob", wire(AIJobStatus(phase="Running", placement=burst)))
    assert message == "Running (nvidia/H800, pool h800, cluster gz)"


def test_succeeded_aijob_is_healthy() -> None:
    assert health("AIJob", wire(AIJobStatus(phase="Succeeded")))[0] == "Healthy"


def test_failed_aijob_is_degraded_with_the_cause() -> None:
    status = wire(
        AIJobStatus(
            phase="Failed",
            reason="BackoffLimitExceeded",
            message="worker 1 on h800-1 exited with code 137 after 3 restarts",
        )
    )
    state, message = health("AIJob", status)
    assert state == "Degraded"
    assert message == "Failed: worker 1 on h800-1 exited with code 137 after 3 restarts"
    assert health("AIJob", wire(AIJobStatus(phase="Failed", reason="BackoffLimitExceeded"))) == (
        "Degraded",
        "Failed: BackoffLimitExceeded",
    )


def test_a_job_held_until_a_person_acts_is_degraded_with_what_to_do() -> None:
    for reason in ("InvalidPodTemplate", "NameConflict", "PodForbidden"):
        status = wire(AIJobStatus(phase="Queued", reason=reason, message="the API server refused ..."))
        assert health("AIJob", status) == ("Degraded", f"{reason}: the API server refused ...")


def test_a_spec_estuary_has_not_observed_yet_is_progressing() -> None:
    status = wire(AIJobStatus(phase="Succeeded", observed_generation=1))
    assert health("AIJob", status, generation=2) == (
        "Progressing",
        "Waiting for Estuary to observe generation 2",
    )
    assert health("AIJob", status, generation=1)[0] == "Healthy"
    pool = wire(ComputePoolStatus(nodes=1, observed_generation=3))
    assert health("ComputePool", pool, generation=4)[0] == "Progressing"


def test_suspended_aijob_is_suspended() -> None:
    assert health("AIJob", wire(AIJobStatus(phase="Suspended")))[0] == "Suspended"


def test_every_aijob_phase_has_a_health() -> None:
    phases = yaml.safe_load((REPO_ROOT / "crds" / "aijobs.estuary.dev.yaml").read_text())["spec"]["versions"][
        0
    ]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["phase"]["enum"]
    expected = {
        "Queued": "Progressing",
        "Admitted": "Progressing",
        "Running": "Progressing",
        "Succeeded": "Healthy",
        "Failed": "Degraded",
        "Suspended": "Suspended",
    }
    assert set(phases) == set(expected)
    for phase in phases:
        assert health("AIJob", {"phase": phase})[0] == expected[phase], phase


# -- ComputePool -----------------------------------------------------------------------------


def test_computepool_before_its_first_status_is_progressing() -> None:
    assert health("ComputePool", None)[0] == "Progressing"


def test_computepool_with_nodes_is_healthy_and_counts_them() -> None:
    state, message = health(
        "ComputePool", wire(ComputePoolStatus(nodes=3, capacity=24, healthy=23, allocated=16, free=7))
    )
    assert (state, message) == ("Healthy", "3 nodes, 23/24 accelerators healthy, 7 free")


def test_computepool_whose_selector_matches_no_node_is_degraded() -> None:
    ready = Condition(
        type="Ready",
        status="False",
        reason="NoNodes",
        message="no node has the labels a=b",
        last_transition_time="t",
    )
    state, message = health("ComputePool", wire(ComputePoolStatus(nodes=0, conditions=[ready])))
    assert (state, message) == ("Degraded", "NoNodes: no node has the labels a=b")


def test_computepool_that_overlaps_another_is_healthy_and_says_so() -> None:
    ready = Condition(type="Ready", status="True", reason="Ready", last_transition_time="t")
    overlap = Condition(type="Overlap", status="True", reason="SelectorOverlap", message="2 node(s) ...")
    state, message = health("ComputePool", wire(ComputePoolStatus(nodes=2, conditions=[ready, overlap])))
    assert state == "Healthy" and message.endswith("(selector overlap: 2 node(s) ...)")


def test_computepool_not_ready_is_degraded_with_the_condition() -> None:
    status = wire(
        ComputePoolStatus(
            nodes=0,
            conditions=[
                Condition(
                    type="Ready",
                    status="False",
                    reason="UnknownVendor",
                    message="no vendor profile 'biren': add it to ESTUARY_VENDOR_PROFILES",
                )
            ],
        )
    )
    assert health("ComputePool", status) == (
        "Degraded",
        "UnknownVendor: no vendor profile 'biren': add it to ESTUARY_VENDOR_PROFILES",
    )
    ready = wire(
        ComputePoolStatus(nodes=2, conditions=[Condition(type="Ready", status="True", reason="Ready")])
    )
    assert health("ComputePool", ready)[0] == "Healthy"


# -- FederationLink --------------------------------------------------------------------------


def test_federationlink_before_the_first_heartbeat_is_progressing() -> None:
    assert health("FederationLink", None)[0] == "Progressing"


def test_reachable_federationlink_is_healthy() -> None:
    state, message = health(
        "FederationLink", wire(FederationLinkStatus(reachable=True, last_heartbeat="2026-10-01T08:00:00Z"))
    )
    assert state == "Healthy" and "2026-10-01T08:00:00Z" in message


def test_unreachable_federationlink_is_degraded_with_the_condition_message() -> None:
    status = wire(
        FederationLinkStatus(
            reachable=False,
            last_heartbeat="2026-10-01T08:00:00Z",
            conditions=[
                Condition(
                    type="Ready",
                    status="False",
                    reason="Unreachable",
                    message="dial tcp 10.8.0.1:6443: i/o timeout",
                )
            ],
        )
    )
    state, message = health("FederationLink", status)
    assert state == "Degraded"
    assert message.startswith("Unreachable: dial tcp 10.8.0.1:6443: i/o timeout")
    assert health("FederationLink", {"reachable": False})[0] == "Degraded"


# -- registration in argocd-cm ---------------------------------------------------------------


def test_argocd_cm_registers_one_script_per_custom_resource_kind() -> None:
    cm = yaml.safe_load((REPO_ROOT / "deploy" / "argocd" / "argocd-cm.yaml").read_text())
    assert (cm["kind"], cm["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    kinds = {
        yaml.safe_load(p.read_text())["spec"]["names"]["kind"] for p in (REPO_ROOT / "crds").glob("*.yaml")
    }
    health_keys = {k for k in cm["data"] if k.startswith("resource.customizations.health.")}
    assert health_keys == {f"resource.customizations.health.estuary.dev_{k}" for k in kinds}
    for kind in kinds:
        key = f"resource.customizations.health.estuary.dev_{kind}"
        assert cm["data"][key] == (HEALTH_DIR / f"estuary.dev_{kind}.lua").read_text()
    actions = yaml.safe_load(cm["data"]["resource.customizations.actions.estuary.dev_AIJob"])
    assert sorted(d["name"] for d in actions["definitions"]) == ["resume", "suspend"]


# -- actions ---------------------------------------------------------------------------------

ACTIONS_DIR = REPO_ROOT / "deploy" / "argocd" / "actions" / "estuary.dev_AIJob"


def _run(script: str, obj: dict[str, Any]) -> Any:
    runtime = luajit21.LuaRuntime()
    runtime.globals().obj = to_lua(runtime, obj)
    return runtime.execute((ACTIONS_DIR / script).read_text())


def _offered(obj: dict[str, Any]) -> set[str]:
    actions = _run("discovery.lua", obj)
    return {name for name, props in actions.items() if not props["disabled"]}


def test_a_running_job_offers_suspend_and_a_suspended_one_resume() -> None:
    running = {"spec": {"suspend": False}, "status": {"phase": "Running"}}
    assert _offered(running) == {"suspend"}
    suspended = {"spec": {"suspend": True}, "status": {"phase": "Suspended"}}
    assert _offered(suspended) == {"resume"}
    assert _offered({"spec": {}, "status": {"phase": "Succeeded"}}) == set()


def test_suspend_and_resume_set_spec_suspend() -> None:
    assert _run("suspend.lua", {"spec": {"workers": 2}}).spec.suspend is True
    resumed = _run("resume.lua", {"spec": {"workers": 2, "suspend": True}})
    assert resumed.spec.suspend is False and resumed.spec.workers == 2
