"""The robustness tier: dozens of bad objects of all three kinds, applied while normal jobs run.

For each bad object one of two things must hold: the API server refuses it with a message that
names the field, or the operator accepts it and its status gives the expected reason. Meanwhile
the normal jobs keep being admitted and run to the end, the operator logs no traceback, and it
writes each bad object's status a bounded number of times (and not at all once it settled).

Run it alone with `hack/test.sh -m robustness` (it is also part of the e2e run).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from kubernetes import client, watch

from devcluster.clusters import Cluster
from tests.e2e.kube_helpers import ASCEND, GROUP, NVIDIA, VERSION, Kube, aijob
from tests.e2e.operator_process import OperatorProcess, wait_for
from tests.e2e.test_crds import INVALID, _obj

ESTUARY_NS = "estuary-system"  # where the operator reads FederationLinks
MAX_WRITES = 6  # status writes per bad object over the whole tier (queue moves included)
QUIET_S = 20.0  # after settling, no bad object's status changes for this long
# A waiting job's queue position that only moved is rewritten at most every 10 s
# (control/decisions.py: POSITION_REFRESH_S): the last such write may come this long after the
# queue last changed, so the quiet window starts after it.
SETTLE_S = 12.0
LINK = {
    "kubeconfigSecretRef": {"name": "rb-missing"},
    "signingKeySecretRef": {"name": "rb-missing"},
    "jurisdiction": "mainland",
}


@dataclass(frozen=True)
class Accepted:
    """A bad object the API server stores; its status must come to say `reason`."""

    kind: str  # AIJob, ComputePool, FederationLink
    name: str
    body: dict[str, Any]
    reason: str
    namespace: str = "bad"  # "bad", "limited" (a LimitRange), "estuary" (Estuary's own), "" (cluster)


def _job(name: str, **spec: Any) -> dict[str, Any]:
    return aijob(name, "", [NVIDIA], **{"workers": 1, "per_worker": 2, **spec})


def _pool(name: str, **spec: Any) -> dict[str, Any]:
    body = {"vendor": "nvidia", "model": "H800", "nodeSelector": {"estuary.dev/node-pool": "rb-none"}, **spec}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ComputePool",
        "metadata": {"name": name},
        "spec": body,
    }


def _link(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FederationLink",
        "metadata": {"name": name},
        "spec": {**LINK, **spec},
    }


ACCEPTED = [
    Accepted(
        "AIJob",
        "rb-env-equals",
        _job("rb-env-equals", env=[{"name": "A=B", "value": "1"}]),
        "InvalidPodTemplate",
    ),
    Accepted(
        "AIJob", "rb-env-lead", _job("rb-env-lead", env=[{"name": "=X", "value": "1"}]), "InvalidPodTemplate"
    ),
    Accepted(
        "AIJob",
        "rb-env-many",
        _job("rb-env-many", env=[{"name": "X=1=2", "value": ""}]),
        "InvalidPodTemplate",
    ),
    Accepted(
        "AIJob", "rb-no-pool", aijob("rb-no-pool", "", [{"vendor": "acme", "image": "i"}]), "NoMatchingPool"
    ),
    Accepted("AIJob", "rb-huge-gang", _job("rb-huge-gang", workers=8, per_worker=8), "NeverFits"),
    Accepted("AIJob", "rb-huge-worker", _job("rb-huge-worker", per_worker=9), "NeverFits"),
    Accepted(
        "AIJob",
        "rb-huge-cpu",
        _job("rb-huge-cpu", resources={"cpu": "1000", "memory": "1Gi"}),
        "NoMatchingNodes",
    ),
    Accepted("AIJob", "rb-no-node", _job("rb-no-node", nodeSelector={"rb": "nowhere"}), "NoMatchingNodes"),
    Accepted("AIJob", "rb-mainland", _job("rb-mainland", residency="mainland"), "ResidencyForbids"),
    Accepted("AIJob", "rb-taken", _job("rb-taken"), "NameConflict"),
    Accepted(
        "AIJob",
        "rb-limited",
        _job("rb-limited", resources={"cpu": "1", "memory": "8Gi"}),
        "PodForbidden",
        "limited",
    ),
    Accepted("ComputePool", "rb-acme", _pool("rb-acme", vendor="acme"), "UnknownVendor", ""),
    Accepted("ComputePool", "rb-empty", _pool("rb-empty"), "NoNodes", ""),
    Accepted(
        "ComputePool",
        "rb-steals-h800",
        _pool("rb-steals-h800", nodeSelector={"estuary.dev/node-pool": "h800"}),
        "NodesCountedElsewhere",
        "",
    ),
    Accepted(
        "ComputePool",
        "rb-steals-ascend",
        _pool(
            "rb-steals-ascend",
            vendor="huawei",
            model="Ascend910B",
            nodeSelector={"estuary.dev/node-pool": "ascend"},
        ),
        "NodesCountedElsewhere",
        "",
    ),
    Accepted("FederationLink", "rb-outside", _link("rb-outside"), "OutsideEstuaryNamespace"),
    Accepted("FederationLink", "rb-no-secret", _link("rb-no-secret"), "BadCredentials", "estuary"),
    Accepted(
        "FederationLink",
        "rb-no-key",
        _link("rb-no-key", kubeconfigSecretRef={"name": "rb-secret", "key": "absent"}),
        "BadCredentials",
        "estuary",
    ),
]

PLURAL = {"AIJob": "aijobs", "ComputePool": "computepools", "FederationLink": "federationlinks"}


class StatusWrites:
    """Counts, per object, the watch events that changed its status (from the start of the tier)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.counts: Counter[tuple[str, str]] = Counter()
        self._seen: dict[tuple[str, str], Any] = {}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, args=(p,), daemon=True) for p in PLURAL.values()
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, plural: str) -> None:
        listed = self.custom.list_cluster_custom_object(GROUP, VERSION, plural)
        version = listed["metadata"]["resourceVersion"]
        while not self._stop.is_set():
            stream = watch.Watch().stream(
                self.custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                plural,
                resource_version=version,
                timeout_seconds=5,
            )
            for event in stream:
                obj = event["object"]
                meta = obj["metadata"]
                version = meta["resourceVersion"]
                key = (plural, f"{meta.get('namespace', '')}/{meta['name']}")
                if (
                    event["type"] != "DELETED"
                    and obj.get("status") != self._seen.get(key)
                    and obj.get("status")
                ):
                    self.counts[key] += 1
                self._seen[key] = obj.get("status")


@dataclass
class Outcome:
    refused: dict[str, str] = field(default_factory=dict)  # id -> kubectl's stderr
    reasons: dict[str, str | None] = field(default_factory=dict)  # accepted name -> status reason
    messages: dict[str, str] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)  # accepted name -> status writes
    late_writes: dict[str, int] = field(default_factory=dict)  # writes in the quiet window
    normal: dict[str, str | None] = field(default_factory=dict)  # normal job -> phase
    log: str = ""


def _namespaces(cluster: Cluster, suffix: str) -> dict[str, str]:
    names = {"bad": f"rb-bad-{suffix}", "limited": f"rb-limited-{suffix}", "good": f"rb-good-{suffix}"}
    for ns in names.values():
        cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("create", "namespace", ESTUARY_NS, check=False)
    names["estuary"], names[""] = ESTUARY_NS, ""
    limit = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "small", "namespace": names["limited"]},
        "spec": {"limits": [{"type": "Container", "max": {"memory": "1Gi"}}]},
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(limit))
    return names


def _place(item: Accepted, ns: dict[str, str]) -> tuple[dict[str, Any], str]:
    body = yaml.safe_load(yaml.safe_dump(item.body))
    namespace = ns[item.namespace]
    if namespace:
        body["metadata"]["namespace"] = namespace
    return body, namespace


def _status_of(kube: Kube, item: Accepted, namespace: str) -> dict[str, Any]:
    plural = PLURAL[item.kind]
    if namespace:
        obj = kube.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, item.name)
    else:
        obj = kube.custom.get_cluster_custom_object(GROUP, VERSION, plural, item.name)
    return dict(obj.get("status") or {})


def _reason(status: dict[str, Any], kind: str) -> str | None:
    if kind == "AIJob":
        return status.get("reason")
    ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
    return ready["reason"] if ready and ready["status"] == "False" else None


def _normal_jobs(kube: Kube, namespace: str, prefix: str, count: int) -> list[str]:
    names = []
    for i in range(count):
        name = f"{prefix}-{i}"
        accel = [NVIDIA] if i % 2 else [ASCEND]
        kube.apply(
            aijob(
                name,
                namespace,
                accel,
                workers=1,
                per_worker=4,
                annotations={"estuary.dev/sim-duration-ms": "4000"},
            )
        )
        names.append(name)
    return names


def _cleanup(cluster: Cluster, ns: dict[str, str]) -> None:
    for item in ACCEPTED:
        if item.kind != "AIJob" and not ns[item.namespace]:
            cluster.kubectl(
                "delete", PLURAL[item.kind], item.name, "--wait=false", "--ignore-not-found", check=False
            )
    for item in ACCEPTED:
        if item.namespace == "estuary":
            cluster.kubectl(
                "delete", PLURAL[item.kind], item.name, "-n", ESTUARY_NS, "--ignore-not-found", check=False
            )
    cluster.kubectl("delete", "secret", "rb-secret", "-n", ESTUARY_NS, "--ignore-not-found", check=False)
    for key in ("bad", "limited", "good"):
        cluster.kubectl("delete", "namespace", ns[key], "--wait=false", check=False)


@pytest.fixture(scope="module")
def outcome(cluster: Cluster, kube: Kube, estuary: OperatorProcess) -> Iterator[Outcome]:
    ns = _namespaces(cluster, str(int(time.time()))[-6:])
    writes = StatusWrites(cluster.api_client())
    writes.start()
    log_start = len(estuary.log_tail(10**9))
    out = Outcome()
    try:
        normal = _normal_jobs(kube, ns["good"], "before", 4)
        taken = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "rb-taken-worker-0", "namespace": ns["bad"]},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }
        kube.core.create_namespaced_pod(ns["bad"], taken)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "rb-secret", "namespace": ESTUARY_NS},
            "stringData": {"kubeconfig": "not used"},
        }
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(secret))
        for kind, name, spec, _field in INVALID:
            proc = cluster.kubectl(
                "apply",
                "-f",
                "-",
                input=_obj(kind, name, spec, None if kind == "ComputePool" else ns["bad"]),
                check=False,
            )
            out.refused[f"{kind}-{name[:20]}"] = proc.stderr if proc.returncode else "ACCEPTED"
        for item in ACCEPTED:
            body, _ = _place(item, ns)
            kube.apply(body)
        normal += _normal_jobs(kube, ns["good"], "after", 4)
        settle(kube, ns, out, normal)
        time.sleep(SETTLE_S)
        out.writes = {
            item.name: writes.counts[(PLURAL[item.kind], f"{_place(item, ns)[1]}/{item.name}")]
            for item in ACCEPTED
        }
        time.sleep(QUIET_S)
        out.late_writes = {
            item.name: writes.counts[(PLURAL[item.kind], f"{_place(item, ns)[1]}/{item.name}")]
            - out.writes[item.name]
            for item in ACCEPTED
        }
        out.log = estuary.log_tail(10**9)[log_start:]
        yield out
    finally:
        writes.stop()
        _cleanup(cluster, ns)


def settle(kube: Kube, ns: dict[str, str], out: Outcome, normal: list[str]) -> None:
    """Wait until every accepted bad object says its reason and every normal job finished."""

    def done() -> bool:
        for item in ACCEPTED:
            status = _status_of(kube, item, _place(item, ns)[1])
            out.reasons[item.name] = _reason(status, item.kind)
            out.messages[item.name] = str(status.get("message") or status.get("conditions") or "")
        for name in normal:
            out.normal[name] = kube.phase(ns["good"], name)
        return all(out.reasons[i.name] == i.reason for i in ACCEPTED) and all(
            p == "Succeeded" for p in out.normal.values()
        )

    with contextlib.suppress(AssertionError):  # each test below reports its own object
        wait_for(
            done, timeout=180, interval=2, what="bad objects to show their reasons, normal jobs to finish"
        )


REFUSED_IDS = [f"{i[0]}-{i[1][:20]}" for i in INVALID]


def test_the_tier_tries_at_least_forty_bad_objects_of_all_three_kinds() -> None:
    kinds = Counter(i[0] for i in INVALID) + Counter(i.kind for i in ACCEPTED)
    assert sum(kinds.values()) >= 40 and set(kinds) == {"AIJob", "ComputePool", "FederationLink"}, kinds


@pytest.mark.parametrize("index", range(len(INVALID)), ids=REFUSED_IDS)
def test_a_refused_object_names_its_field(outcome: Outcome, index: int) -> None:
    kind, name, _spec, field_name = INVALID[index]
    stderr = outcome.refused[REFUSED_IDS[index]]
    assert stderr != "ACCEPTED", f"{kind} {name} was accepted"
    assert field_name in stderr, stderr


@pytest.mark.parametrize("item", ACCEPTED, ids=[i.name for i in ACCEPTED])
def test_an_accepted_bad_object_gets_its_reason_in_a_bounded_number_of_writes(
    outcome: Outcome, item: Accepted
) -> None:
    assert outcome.reasons[item.name] == item.reason, outcome.messages[item.name]
    assert 1 <= outcome.writes[item.name] <= MAX_WRITES, outcome.writes
    assert outcome.late_writes[item.name] == 0, f"{item.name} still being rewritten"


def test_normal_jobs_keep_being_admitted_and_finish(outcome: Outcome) -> None:
    assert outcome.normal and all(p == "Succeeded" for p in outcome.normal.values()), outcome.normal


def test_the_operator_logs_no_traceback(outcome: Outcome) -> None:
    assert "Traceback" not in outcome.log, outcome.log[outcome.log.find("Traceback") - 2000 :][:6000]


def test_the_writes_per_bad_object(outcome: Outcome) -> None:
    """Not an assertion beyond the ones above: prints the figures for the report."""
    print("\nstatus writes per accepted bad object:", dict(sorted(outcome.writes.items())))
    print("refused at apply:", len(outcome.refused), "accepted with a reason:", len(outcome.reasons))
    assert sum(outcome.late_writes.values()) == 0
