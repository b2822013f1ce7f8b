"""Researchers without cluster-admin, on a real API server: the chart's roles as `kubectl auth
can-i` sees them, and `kubectl estuary` used by a namespace editor who holds a ServiceAccount token
and nothing else (no cluster-wide read): run, list, explain, logs, suspend, resume, delete, usage.
Another tenant's editor sees none of it. Pool capacity shows in PFLOPS, and usage figures are
checked against jobs that kwok runs for known times (hack/stages).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import binaries
from devcluster.clusters import Cluster
from estuary import usage
from tests.e2e.kube_helpers import Kube, bound_claim, cri_log
from tests.e2e.operator_process import OperatorProcess, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]

RELEASE = "rsch"  # roles are named <release>-estuary-*, apart from other tests' releases
PLUGIN = Path(sys.executable).with_name("kubectl-estuary")


@dataclass
class Person:
    name: str
    namespace: str
    kubeconfig: Path

    def sa(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


@dataclass
class People:
    alice: Person  # edits namespace a (tenant A)
    carol: Person  # views namespace a
    bob: Person  # edits namespace b (tenant B)
    platform: Person  # estuary-admin, cluster-wide
    tenant_a: str
    tenant_b: str
    logs_dir: Path


def kubeconfig_for(cluster: Cluster, person: str, namespace: str, token: str, path: Path) -> Path:
    """A kubeconfig holding only a bearer token, with `namespace` as the context's namespace."""
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "campus", "cluster": server}],
                "users": [{"name": person, "user": {"token": token}}],
                "contexts": [
                    {"name": person, "context": {"cluster": "campus", "user": person, "namespace": namespace}}
                ],
                "current-context": person,
            }
        )
    )
    path.chmod(0o600)
    return path


def make_person(cluster: Cluster, tmp: Path, name: str, namespace: str, bind: tuple[str, ...]) -> Person:
    cluster.kubectl("create", "serviceaccount", name, "-n", namespace)
    cluster.kubectl(*bind)
    token = cluster.kubectl("create", "token", name, "-n", namespace, "--duration=2h").stdout.strip()
    return Person(name, namespace, kubeconfig_for(cluster, name, namespace, token, tmp / f"{name}.yaml"))


def can_i(cluster: Cluster, person: Person, *args: str) -> bool:
    proc = cluster.kubectl("auth", "can-i", *args, f"--as={person.sa()}", check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return answer == "yes"


def plugin(person: Person, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`kubectl-estuary ...` as `person`: only her kubeconfig, no flags for context or namespace."""
    env = {**os.environ, "KUBECONFIG": str(person.kubeconfig)}
    proc = subprocess.run([str(PLUGIN), *args], capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert proc.returncode == 0, f"kubectl estuary {' '.join(args)}: {proc.stderr}{proc.stdout}"
    return proc


def roles_manifest(tmp: Path) -> Path:
    helm = binaries.find().get("helm") or binaries.ensure()["helm"]
    out = subprocess.run(
        [
            str(helm),
            "template",
            RELEASE,
            str(REPO_ROOT / "charts" / "estuary"),
            "-n",
            "estuary-system",
            "--show-only",
            "templates/roles.yaml",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    path = tmp / "roles.yaml"
    path.write_text(out)
    return path


@pytest.fixture(scope="module")
def people(
    cluster: Cluster, kube: Kube, estuary: OperatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[People]:
    tmp = tmp_path_factory.mktemp("people")
    suffix = uuid.uuid4().hex[:6]
    ns_a, ns_b = f"lab-a-{suffix}", f"lab-b-{suffix}"
    tenant_a, tenant_b = f"physics-{suffix}", f"chemistry-{suffix}"
    roles = roles_manifest(tmp)
    cluster.kubectl("apply", "-f", str(roles))
    for ns, tenant in ((ns_a, tenant_a), (ns_b, tenant_b)):
        cluster.kubectl("create", "namespace", ns)
        cluster.kubectl("label", "namespace", ns, f"estuary.dev/tenant={tenant}")
    admin_role = f"{RELEASE}-estuary-admin"
    found = People(
        alice=make_person(
            cluster,
            tmp,
            "alice",
            ns_a,
            (
                "create",
                "rolebinding",
                "alice-edit",
                "--clusterrole=edit",
                f"--serviceaccount={ns_a}:alice",
                "-n",
                ns_a,
            ),
        ),
        carol=make_person(
            cluster,
            tmp,
            "carol",
            ns_a,
            (
                "create",
                "rolebinding",
                "carol-view",
                "--clusterrole=view",
                f"--serviceaccount={ns_a}:carol",
                "-n",
                ns_a,
            ),
        ),
        bob=make_person(
            cluster,
            tmp,
            "bob",
            ns_b,
            (
                "create",
                "rolebinding",
                "bob-edit",
                "--clusterrole=edit",
                f"--serviceaccount={ns_b}:bob",
                "-n",
                ns_b,
            ),
        ),
        platform=make_person(
            cluster,
            tmp,
            "platform",
            ns_b,
            (
                "create",
                "clusterrolebinding",
                f"platform-{suffix}",
                f"--clusterrole={admin_role}",
                f"--serviceaccount={ns_b}:platform",
            ),
        ),
        tenant_a=tenant_a,
        tenant_b=tenant_b,
        logs_dir=tmp,
    )
    # The aggregation controller folds the chart's roles into edit/view shortly after they exist.
    wait_for(
        lambda: can_i(cluster, found.alice, "create", "aijobs.estuary.dev", "-n", ns_a),
        timeout=60,
        what="estuary-user aggregated into edit",
    )
    wait_for(
        lambda: can_i(cluster, found.carol, "get", "aijobs.estuary.dev", "-n", ns_a),
        timeout=60,
        what="estuary-viewer aggregated into view",
    )
    yield found
    for ns in (ns_a, ns_b):
        cluster.kubectl("delete", "aij", "--all", "-n", ns, "--wait=false")
    for ns in (ns_a, ns_b):
        wait_for(lambda ns=ns: not kube.pods(ns), timeout=90, what=f"pods of {ns} gone")
        cluster.kubectl("delete", "namespace", ns, "--wait=false")
    cluster.kubectl("delete", "clusterrolebinding", f"platform-{suffix}", "--ignore-not-found")
    cluster.kubectl("delete", "-f", str(roles), "--ignore-not-found")


# ---- roles --------------------------------------------------------------------------------------


def test_a_namespace_editor_may_run_aijobs_there_and_touch_nothing_cluster_wide(
    cluster: Cluster, people: People
) -> None:
    alice, a, b = people.alice, people.alice.namespace, people.bob.namespace
    for verb in ("create", "get", "list", "watch", "patch", "update", "delete"):
        assert can_i(cluster, alice, verb, "aijobs.estuary.dev", "-n", a), verb
    assert can_i(cluster, alice, "get", "aijobs.estuary.dev", "--subresource=status", "-n", a)
    assert can_i(cluster, alice, "get", "pods", "--subresource=log", "-n", a)
    assert not can_i(cluster, alice, "patch", "aijobs.estuary.dev", "--subresource=status", "-n", a)
    assert not can_i(cluster, alice, "create", "aijobs.estuary.dev", "-n", b)
    assert not can_i(cluster, alice, "list", "aijobs.estuary.dev", "--all-namespaces")
    for verb in ("get", "list", "create", "patch", "delete"):
        assert not can_i(cluster, alice, verb, "computepools.estuary.dev"), verb
        assert not can_i(cluster, alice, verb, "federationlinks.estuary.dev", "-n", "estuary-system"), verb
        assert not can_i(cluster, alice, verb, "federationlinks.estuary.dev", "-n", a), verb
    assert not can_i(cluster, alice, "list", "usageledgers.estuary.dev")
    assert not can_i(cluster, alice, "list", "nodes")


def test_a_viewer_reads_aijobs_and_changes_nothing(cluster: Cluster, people: People) -> None:
    carol, a = people.carol, people.carol.namespace
    for verb in ("get", "list", "watch"):
        assert can_i(cluster, carol, verb, "aijobs.estuary.dev", "-n", a), verb
    for verb in ("create", "patch", "update", "delete"):
        assert not can_i(cluster, carol, verb, "aijobs.estuary.dev", "-n", a), verb
    assert not can_i(cluster, carol, "get", "computepools.estuary.dev")


def test_the_platform_team_manages_pools_links_and_reads_ledgers_but_not_secrets(
    cluster: Cluster, people: People
) -> None:
    platform = people.platform
    for resource in ("computepools.estuary.dev", "federationlinks.estuary.dev", "aijobs.estuary.dev"):
        assert can_i(cluster, platform, "create", resource, "-A"), resource
        assert can_i(cluster, platform, "delete", resource, "-A"), resource
    assert can_i(cluster, platform, "list", "usageledgers.estuary.dev")
    assert not can_i(cluster, platform, "delete", "usageledgers.estuary.dev")
    assert not can_i(cluster, platform, "get", "secrets", "-n", "estuary-system")
    assert not can_i(cluster, platform, "patch", "computepools.estuary.dev", "--subresource=status")


# ---- kubectl estuary as a namespace editor ------------------------------------------------------


def serve_logs(kube: Kube, people: People, job: str, workers: int) -> list[Path]:
    """kwok `Logs` objects (created by the admin) so each worker pod's log is a file of ours."""
    files = []
    for rank in range(workers):
        path = people.logs_dir / f"{job}-{rank}.log"
        starting = (f"rank {rank} starting", f"rank {rank} epoch 1 loss 0.{9 - rank}")
        kube.serve_log(people.alice.namespace, f"{job}-worker-{rank}", path, *starting)
        files.append(path)
    return files


def follow_until(proc: subprocess.Popen[str], wanted: str, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.rstrip("\n"))
        if wanted in line:
            return seen
    raise AssertionError(f"{wanted!r} never arrived; got {seen}")


def test_a_namespace_editor_runs_her_job_end_to_end_with_kubectl_estuary(
    cluster: Cluster, kube: Kube, people: People
) -> None:
    alice, ns = people.alice, people.alice.namespace
    denied = subprocess.run(
        [str(cluster.kubectl_path), "get", "nodes"],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(alice.kubeconfig)},
    )
    assert denied.returncode != 0 and "forbidden" in denied.stderr  # she cannot read the cluster
    assert plugin(alice, "--version").stdout.startswith("kubectl-estuary, version")

    bound_claim(kube, ns, "imagenet")  # the platform team's dataset claim in her namespace
    out = plugin(
        alice,
        "run",
        "train",
        "--template",
        "pytorch-ddp",
        "--workers",
        "2",
        "-g",
        "8",
        "--accelerator",
        "nvidia/H800",
        "--dataset",
        "imagenet",
        "--",
        "train.py",
        "--epochs",
        "1",
    ).stdout
    assert out.strip() == "aijob.estuary.dev/train created"
    files = serve_logs(kube, people, "train", 2)
    wait_for(lambda: kube.phase(ns, "train") == "Running", timeout=60, what="train Running")
    for pod in kube.pods(ns, "train"):  # --dataset: the claim read-only at /data in every worker
        claims = [v["persistentVolumeClaim"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
        assert claims == [{"claimName": "imagenet", "readOnly": True}]
        [worker] = [c for c in pod["spec"]["containers"] if c["name"] == "worker"]
        assert {"name": "dataset", "mountPath": "/data", "readOnly": True} in worker["volumeMounts"]

    # list, through kubectl's own plugin mechanism: `kubectl estuary` finds kubectl-estuary on PATH
    env = {
        **os.environ,
        "KUBECONFIG": str(alice.kubeconfig),
        "PATH": f"{PLUGIN.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    listed = subprocess.run(
        [str(cluster.kubectl_path), "estuary", "list"], capture_output=True, text=True, env=env, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()[:2]
    assert header.split()[:3] == ["NAME", "PHASE", "ACCELERATOR"] and row.split()[:3] == [
        "train",
        "Running",
        "nvidia/H800",
    ]

    # explain a job that waits: everything from its status, no cluster-wide read
    plugin(alice, "run", "too-big", "--template", "pytorch-ddp", "--workers", "8", "-g", "8")
    wait_for(
        lambda: (kube.status(ns, "too-big").get("verdicts") or None) is not None,
        timeout=60,
        what="too-big's verdicts written",
    )
    explained = plugin(alice, "explain", "too-big").stdout
    assert "phase:    Queued" in explained and "NeverFits" in explained
    assert "nvidia/H800 in pool h800: NeverFits" in explained
    status = yaml.safe_load(plugin(alice, "explain", "too-big", "-o", "yaml").stdout)
    assert status["verdicts"][0]["reason"] == "NeverFits" and status["queuePosition"] >= 1

    # logs of every worker, prefixed by rank; -f follows
    logged = plugin(alice, "logs", "train").stdout.splitlines()
    assert "[rank 0] rank 0 starting" in logged and "[rank 1] rank 1 epoch 1 loss 0.8" in logged
    follower = subprocess.Popen(
        [str(PLUGIN), "logs", "train", "-f"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBECONFIG": str(alice.kubeconfig)},
    )
    try:
        follow_until(follower, "rank 1 epoch 1", timeout=30)
        cri_log(files[1], "rank 1 epoch 2 loss 0.5")
        follow_until(follower, "[rank 1] rank 1 epoch 2 loss 0.5", timeout=30)
    finally:
        follower.terminate()
        follower.wait(timeout=10)

    # suspend holds nothing; resume runs it again
    assert plugin(alice, "suspend", "train").stdout.strip() == "aijob.estuary.dev/train suspended"
    wait_for(
        lambda: kube.phase(ns, "train") == "Suspended" and not kube.pods(ns, "train"),
        timeout=60,
        what="train suspended, its pods gone",
    )
    assert plugin(alice, "resume", "train").stdout.strip() == "aijob.estuary.dev/train resumed"
    wait_for(lambda: kube.phase(ns, "train") == "Running", timeout=90, what="train Running again")
    runs = kube.status(ns, "train")["runs"]
    assert [r.get("outcome") for r in runs] == ["Suspended", None] and runs[0]["accelerators"] == 16

    wide = plugin(alice, "list", "-o", "wide").stdout
    assert "h800" in wide and "NeverFits" in wide
    assert {
        j["metadata"]["name"] for j in yaml.safe_load(plugin(alice, "list", "-o", "json").stdout)["items"]
    } == {"too-big", "train"}

    plugin(alice, "delete", "train", "too-big")
    wait_for(lambda: not kube.pods(ns), timeout=60, what="alice's pods gone")
    assert "No AIJobs found" in plugin(alice, "list").stderr


def test_another_tenants_editor_sees_none_of_it(cluster: Cluster, kube: Kube, people: People) -> None:
    alice, bob = people.alice, people.bob
    plugin(alice, "run", "private", "--template", "debug")
    try:
        assert "No AIJobs found" in plugin(bob, "list").stderr
        for args in (
            ("list", "-n", alice.namespace),
            ("list", "-A"),
            ("explain", "private", "-n", alice.namespace),
            ("logs", "private", "-n", alice.namespace),
            ("suspend", "private", "-n", alice.namespace),
            ("delete", "private", "-n", alice.namespace),
            ("usage", "-n", alice.namespace),
        ):
            proc = plugin(bob, *args, check=False)
            assert proc.returncode != 0 and "Forbidden" in proc.stderr, (args, proc.stdout, proc.stderr)
        assert kube.job(alice.namespace, "private")["spec"].get("suspend") is not True
    finally:
        plugin(alice, "delete", "private")


# ---- PFLOPS and usage ------------------------------------------------------------------------


def test_kubectl_get_cpool_shows_capacity_and_free_in_pflops(cluster: Cluster, people: People) -> None:
    lines = cluster.kubectl("get", "cpool", "h800", "ascend").stdout.splitlines()
    header = lines[0].split()
    assert "PFLOPS" in header and "FREE-PFLOPS" in header
    rows = {line.split()[0]: dict(zip(header, line.split(), strict=False)) for line in lines[1:]}
    assert rows["h800"]["PFLOPS"] == "23.746"  # 24 x H800 at 989.4 dense FP16 TFLOPS
    assert rows["ascend"]["PFLOPS"] == "7.68"  # 24 x Ascend 910B at 320


def csv_rows(text: str) -> dict[str, dict[str, str]]:
    import csv
    import io

    return {row["accelerator"]: row for row in csv.DictReader(io.StringIO(text))}


def test_usage_figures_match_the_known_run_times_and_outlive_the_job(
    cluster: Cluster, kube: Kube, people: People
) -> None:
    alice, ns = people.alice, people.alice.namespace
    since = usage.format_time(time.time() - 60)
    plugin(
        alice,
        "run",
        "u-h800",
        "--template",
        "pytorch-ddp",
        "--workers",
        "1",
        "-g",
        "8",
        "--accelerator",
        "nvidia/H800",
        "--annotation",
        "estuary.dev/sim-duration-ms=4000",
    )
    plugin(
        alice,
        "run",
        "u-ascend",
        "--template",
        "pytorch-ascend",
        "--workers",
        "1",
        "-g",
        "4",
        "--accelerator",
        "huawei/Ascend910B",
        "--annotation",
        "estuary.dev/sim-duration-ms=3000",
    )
    for job in ("u-h800", "u-ascend"):
        wait_for(lambda job=job: kube.phase(ns, job) == "Succeeded", timeout=90, what=f"{job} Succeeded")

    def held_seconds(job: str) -> float:
        (run,) = kube.status(ns, job)["runs"]
        start, end = usage.parse_time(run["startTime"]), usage.parse_time(run["endTime"])
        assert start is not None and end is not None
        return end - start

    for job, ran_ms in (("u-h800", 4000), ("u-ascend", 3000)):
        # Held from admission to completion: the run time kwok gave it, plus scheduling and the
        # operator noticing (whole seconds in status, so up to a second either way).
        assert ran_ms / 1000 - 1 <= held_seconds(job) <= ran_ms / 1000 + 8, job

    rows = csv_rows(plugin(alice, "usage", "--since", since, "-o", "csv").stdout)
    h800, ascend = rows["nvidia/H800"], rows["huawei/Ascend910B"]
    assert h800["tenant"] == ascend["tenant"] == people.tenant_a
    assert float(h800["accelerator_hours"]) == pytest.approx(8 * held_seconds("u-h800") / 3600, abs=1e-4)
    assert float(ascend["accelerator_hours"]) == pytest.approx(4 * held_seconds("u-ascend") / 3600, abs=1e-4)
    assert float(h800["pflops_hours"]) == pytest.approx(float(h800["accelerator_hours"]) * 0.9894, abs=1e-4)
    assert float(ascend["pflops_hours"]) == pytest.approx(
        float(ascend["accelerator_hours"]) * 0.320, abs=1e-4
    )
    table = plugin(alice, "usage", "--since", since).stdout
    assert "ACCELERATOR-HOURS" in table and people.tenant_a in table

    # Deleted, the job's runs leave the researcher's view but stay in the tenant's ledger.
    (kept,) = kube.status(ns, "u-h800")["runs"]

    def ledgered() -> list[dict[str, Any]]:
        books = kube.custom.list_cluster_custom_object("estuary.dev", "v1alpha1", "usageledgers")["items"]
        return [
            r
            for book in books
            if book["spec"]["tenant"] == people.tenant_a
            for r in (book.get("status") or {}).get("records") or []
            if r["job"] == "u-h800" and r.get("endTime")
        ]

    wait_for(lambda: bool(ledgered()), timeout=30, what="the ledger to hold u-h800's finished run")
    plugin(alice, "delete", "u-h800")
    wait_for(lambda: "u-h800" not in plugin(alice, "list").stdout, timeout=30, what="u-h800 gone")
    (record,) = ledgered()
    assert (record["startTime"], record["endTime"], record["accelerators"]) == (
        kept["startTime"],
        kept["endTime"],
        8,
    )
    mine = plugin(alice, "usage", "--since", since, "-o", "csv")
    assert set(csv_rows(mine.stdout)) == {"huawei/Ascend910B"} and "estuary-admin" in mine.stderr
    books = csv_rows(
        plugin(
            people.platform, "usage", "-A", "--since", since, "--tenant", people.tenant_a, "-o", "csv"
        ).stdout
    )
    # The platform team still counts it (plus whatever else the tenant ran in the window).
    assert float(books["nvidia/H800"]["accelerator_hours"]) >= float(h800["accelerator_hours"])
    assert float(books["huawei/Ascend910B"]["accelerator_hours"]) >= float(ascend["accelerator_hours"])
    plugin(alice, "delete", "u-ascend")
