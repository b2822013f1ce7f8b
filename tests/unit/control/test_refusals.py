"""Workers the API server refuses, and names held by pods that are not the job's own.

A refused worker releases the attempt (accelerators freed once its pods are gone) with the API
server's words, and the job stays out of the queue until its spec changes; a new job is checked
with a dry run of its first worker before it ever holds anything. Only pods a job controls (by
owner reference uid, current attempt) are its workers; any other pod counts as foreign usage.
tests/e2e/test_hardening.py runs the same cases against a real API server.
"""

from __future__ import annotations

from typing import Any

from .harness import NS, Harness


def _refuse_images(bad: str) -> Any:
    def check(pod: dict[str, Any]) -> str | None:
        image = pod["spec"]["containers"][0]["image"]
        return f"spec.containers[0].image: Invalid value: {image!r}" if image == bad else None

    return check


def _tenant_pod(name: str, node: str, gpus: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    amount = {"nvidia.com/gpu": str(gpus), "cpu": "1", "memory": "1Gi"}
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels or {}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": amount}}]},
        "status": {"phase": "Running"},
    }


def test_a_new_job_whose_first_worker_is_refused_never_holds_accelerators() -> None:
    h = Harness()
    h.server.refuse_pods = _refuse_images("bad:image")
    h.submit(accelerators=[{"vendor": "nvidia", "image": "bad:image"}])
    h.step()
    status = h.status()
    assert (status["phase"], status["reason"]) == ("Queued", "InvalidPodTemplate")
    assert "the API server refused Pod physics/train-worker-0" in status["message"]
    assert "Invalid value: 'bad:image'" in status["message"] and "spec changes" in status["message"]
    assert status["hold"] == {"reason": "InvalidPodTemplate", "generation": 1}
    assert "placement" not in status and h.pods() == []
    h.server.calls.clear()
    h.step(3)
    assert h.server.calls == []  # not retried, nothing rewritten, until the spec changes


def test_a_fixed_spec_is_checked_again_and_admitted() -> None:
    h = Harness()
    h.server.refuse_pods = _refuse_images("bad:image")
    h.submit(accelerators=[{"vendor": "nvidia", "image": "bad:image"}])
    h.step()
    h.server.patch("aijobs", f"{NS}/train", {"spec": {"accelerators": [{"vendor": "nvidia", "image": "ok"}]}})
    h.step()
    status = h.status()
    assert (status["phase"], status["reason"]) == ("Admitted", "Admitted") and "hold" not in status
    assert len(h.pods()) == 2


def test_a_worker_refused_at_creation_releases_the_attempt_and_frees_its_nodes() -> None:
    h = Harness()
    h.server.refuse_pods = lambda pod: (
        "spec.hostname: Invalid" if pod["metadata"]["name"] == "train-worker-1" else None
    )
    h.submit()
    h.clock.advance(1)
    h.submit("next", workers=2)  # waits for the same two nodes
    h.step()  # admitted; the creates, in the background, meet the refusal
    assert h.phase() == ("Admitted", "Admitted") and h.phase("next")[0] == "Queued"
    h.step()  # the next step releases the attempt with the API server's words
    status = h.status()
    assert (status["phase"], status["reason"]) == ("Queued", "InvalidPodTemplate")
    assert "Pod physics/train-worker-1" in status["message"] and "spec.hostname: Invalid" in status["message"]
    h.step()  # worker 0 is gone: the placement is given back
    assert "placement" not in h.status() and h.pods() == []
    h.server.refuse_pods = lambda pod: None
    h.step()
    assert h.phase("next") == ("Admitted", "Admitted")
    assert h.phase() == ("Queued", "InvalidPodTemplate")  # held until its spec changes


def test_a_precreated_pod_with_a_worker_name_is_not_adopted_and_holds_the_job_until_it_goes() -> None:
    h = Harness()
    labels = {"estuary.dev/job-name": "train", "estuary.dev/worker-rank": "0", "estuary.dev/attempt": "1"}
    h.server.put(_tenant_pod("train-worker-0", "n0", 0, labels))
    h.submit()
    h.step()
    status = h.status()
    assert (status["phase"], status["reason"]) == ("Queued", "NameConflict")
    assert "Pod physics/train-worker-0 already exists and is not this job's own" in status["message"]
    assert status["hold"]["pod"] == "train-worker-0"
    h.step(2)
    assert h.phase() == ("Queued", "NameConflict")
    h.server.delete("pods", f"{NS}/train-worker-0")
    h.step()
    assert h.phase() == ("Admitted", "Admitted")
    owners = {p["metadata"]["name"]: p["metadata"]["ownerReferences"][0]["uid"] for p in h.pods()}
    assert set(owners) == {"train-worker-0", "train-worker-1"}


def test_a_tenants_pod_labelled_as_a_worker_counts_as_usage_of_its_node() -> None:
    h = Harness()
    h.server.put(_tenant_pod("sneaky", "n0", 8, {"estuary.dev/job-name": "other"}))
    h.submit(workers=1)
    h.step()
    assert h.status()["placement"]["nodes"] == ["n1"]
    pool = h.server.get("computepools", "h800")
    assert pool is not None and pool["status"]["allocated"] == 16 and pool["status"]["free"] == 0
    h.submit("more", workers=1)
    h.step()
    assert h.phase("more")[0] == "Queued"


def test_a_foreign_pod_labelled_with_the_jobs_name_is_neither_its_worker_nor_deleted() -> None:
    h = Harness()
    h.running(workers=1)
    labels = {"estuary.dev/job-name": "train", "estuary.dev/worker-rank": "0", "estuary.dev/attempt": "0"}
    h.server.put(_tenant_pod("lookalike", "n1", 0, labels))
    h.step(2)
    assert h.phase() == ("Running", "Running")
    assert h.server.get("pods", f"{NS}/lookalike") is not None
    h.server.delete("aijobs", f"{NS}/train")
    assert h.server.get("pods", f"{NS}/lookalike") is not None  # not garbage of the job


def test_a_forbidden_worker_is_checked_again_after_five_minutes_then_ten() -> None:
    h = Harness()
    h.server.refuse_code = 403
    h.server.refuse_pods = lambda pod: "maximum memory usage per Container is 1Gi"
    h.submit()
    h.step()
    status = h.status()
    assert (status["phase"], status["reason"]) == ("Queued", "PodForbidden")
    assert "Estuary tries again in 300s" in status["message"]
    assert status["hold"]["refusals"] == 1 and status["hold"]["retryAt"] == "2027-01-15T08:05:00Z"
    h.server.calls.clear()
    h.step(3, seconds=60)
    assert h.server.calls == []  # held: not even a dry run
    h.clock.advance(121)
    h.step()
    status = h.status()
    assert status["hold"]["refusals"] == 2 and "Estuary tries again in 600s" in status["message"]
    assert [c[0] for c in h.server.calls] == ["dry_run", "patch_job_status"]
    h.server.refuse_pods = lambda pod: None  # the namespace's limit was raised
    h.clock.advance(600)
    h.step()
    assert h.phase() == ("Admitted", "Admitted") and "hold" not in h.status()


def test_a_service_name_taken_by_someone_else_is_a_name_conflict_retried_later() -> None:
    h = Harness()
    h.server.put({"kind": "Service", "metadata": {"name": "train", "namespace": NS}, "spec": {}})
    h.submit()
    h.step(2)  # admitted; the next step releases the attempt its Service could not be created for
    status = h.status()
    assert (status["phase"], status["reason"]) == ("Queued", "NameConflict")
    assert f"Service {NS}/train already exists and is not this job's own" in status["message"]
    assert "tries again in 300s" in status["message"] and status["hold"]["retryAt"]
    h.step()  # the gang's pods are gone: nothing is held
    assert h.pods() == [] and "placement" not in h.status()


def test_a_namespace_the_operator_may_not_create_workers_in_says_who_can_fix_it() -> None:
    h = Harness()
    h.server.refuse_code = 403
    h.server.refuse_pods = lambda pod: (
        'User "system:serviceaccount:estuary-system:estuary-operator" cannot create resource "pods" '
        f'in API group "" in the namespace "{NS}"'
    )
    h.submit()
    h.step()
    status = h.status()
    assert (status["phase"], status["reason"]) == ("Queued", "PodForbidden") and "placement" not in status
    message = status["message"]
    assert f"Estuary's operator may not create Pods in namespace {NS}" in message
    assert f"add {NS} to the chart's rbac.workerNamespaces" in message and "Tenant namespaces" in message
    assert "Estuary tries again in 300s" in message
