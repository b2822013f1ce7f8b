"""`kubectl estuary` without a cluster: what it prints from AIJob objects, the manifests `run`
builds, kubectl-style flags, completion, log prefixing, and the krew packaging. The same commands
against a real API server, as a namespace editor, are in tests/e2e/test_researcher.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from estuary.plugin import completion, logs, usagecmd, views
from estuary.plugin.cli import main
from estuary.usage import parse_time

REPO_ROOT = Path(__file__).resolve().parents[2]
NOW = parse_time("2026-11-30T12:00:00Z") or 0.0


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig whose current context names namespace physics (no server is contacted)."""
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "lab", "context": {"cluster": "c", "user": "u", "namespace": "physics"}},
                    {"name": "other", "context": {"cluster": "c", "user": "u"}},
                ],
                "current-context": "lab",
            }
        )
    )
    return path


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


# ---- run ------------------------------------------------------------------------------------


def test_run_builds_the_job_in_the_contexts_namespace(kubeconfig: Path) -> None:
    result = invoke(
        "run", "resnet", "--template", "pytorch-ddp", "--workers", "4", "-g", "2",
        "--accelerator", "nvidia/H800", "--accelerator", "huawei/Ascend910B", "--image", "me/train:1",
        "--annotation", "team=vision", "--dry-run", "--", "train.py", "--lr", "0.1",
        env={"KUBECONFIG": str(kubeconfig)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    job = yaml.safe_load(result.output)
    assert job["metadata"]["namespace"] == "physics" and job["metadata"]["name"] == "resnet"
    assert job["metadata"]["annotations"] == {"estuary.dev/template": "pytorch-ddp", "team": "vision"}
    assert (job["spec"]["workers"], job["spec"]["acceleratorsPerWorker"]) == (4, 2)
    assert [a["vendor"] for a in job["spec"]["accelerators"]] == ["nvidia", "huawei"]
    assert job["spec"]["args"] == ["train.py", "--lr", "0.1"]


def test_namespace_and_context_flags_win_over_the_kubeconfig(kubeconfig: Path) -> None:
    def namespace(*flags: str) -> str:
        out = invoke("run", "j", "--dry-run", "--kubeconfig", str(kubeconfig), *flags).output
        return str(yaml.safe_load(out)["metadata"]["namespace"])

    assert namespace() == "physics"
    assert namespace("-n", "chemistry") == "chemistry"
    assert namespace("--context", "other") == "default"
    bad = CliRunner().invoke(
        main, ["run", "j", "--dry-run", "--kubeconfig", str(kubeconfig), "--context", "x"]
    )
    assert bad.exit_code == 1 and 'context "x" does not exist (contexts: lab, other)' in bad.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--template", "tensorflow"), "no job template 'tensorflow'"),
        (("--accelerator", "cambricon"), "has no image for cambricon"),
        (("--annotation", "novalue"), "is not KEY=VALUE"),
    ],
)
def test_run_refuses_bad_input_before_contacting_the_cluster(
    kubeconfig: Path, args: tuple[str, ...], says: str
) -> None:
    result = CliRunner().invoke(main, ["run", "j", "--dry-run", "--kubeconfig", str(kubeconfig), *args])
    assert result.exit_code == 2 and says in result.output


def test_version_and_templates_need_no_cluster() -> None:
    assert invoke("--version").output.startswith("kubectl-estuary, version ")
    lines = invoke("templates").output.splitlines()
    assert lines[0].split() == ["NAME", "FRAMEWORK", "TITLE"]
    assert {line.split()[0] for line in lines[1:]} >= {"pytorch-ddp", "mindspore-ascend", "debug"}


# ---- list and explain -----------------------------------------------------------------------


def aijob(name: str, status: dict[str, Any], namespace: str = "physics") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": "2026-11-30T11:58:00Z"},
        "spec": {"framework": "pytorch", "workers": 2, "acceleratorsPerWorker": 8,
                 "accelerators": [{"vendor": "nvidia", "image": "i"}]},
        "status": status,
    }  # fmt: skip


WAITING = {
    "phase": "Queued",
    "queuePosition": 2,
    "reason": "QuotaExceeded",
    "message": "tenant physics in pool h800: used 8 of nominal 8; needs 16",
    "verdicts": [
        {"pool": "h800", "vendor": "nvidia", "model": "H800", "fits": False, "reason": "QuotaExceeded",
         "message": "used 8 of nominal 8; needs 16", "relativeRuntime": 1.0},
        {"pool": "a800", "vendor": "nvidia", "model": "A800", "fits": True, "message": "",
         "relativeRuntime": 1.6},
    ],
}  # fmt: skip
RUNNING = {
    "phase": "Running",
    "accelerator": "nvidia/H800",
    "reason": "Running",
    "placement": {"cluster": "local", "pool": "h800", "vendor": "nvidia", "model": "H800",
                  "nodes": ["n1", "n2"]},
    "runs": [
        {"attempt": 1, "vendor": "nvidia", "model": "H800", "pool": "h800", "accelerators": 16,
         "startTime": "2026-11-30T11:00:00Z", "endTime": "2026-11-30T11:30:00Z", "outcome": "Preempted"},
        {"attempt": 2, "vendor": "nvidia", "model": "H800", "pool": "h800", "accelerators": 16,
         "startTime": "2026-11-30T11:45:00Z"},
    ],
}  # fmt: skip


def test_list_shows_phase_accelerator_position_reason_and_age() -> None:
    text = views.job_rows([aijob("wait", WAITING), aijob("run", RUNNING)], NOW, wide=False, namespaces=False)
    header, first, second = (line.split() for line in text.splitlines())
    assert header == ["NAME", "PHASE", "ACCELERATOR", "WORKERS", "POSITION", "REASON", "AGE"]
    assert first == ["run", "Running", "nvidia/H800", "2", "Running", "2m"]
    assert second == ["wait", "Queued", "2", "2", "QuotaExceeded", "2m"]
    wide = views.job_rows([aijob("run", RUNNING, "chem")], NOW, wide=True, namespaces=True).splitlines()
    assert wide[0].split()[:2] == ["NAMESPACE", "NAME"] and wide[0].split()[-4:] == [
        "POOL", "CLUSTER", "RESTARTS", "MESSAGE"]  # fmt: skip


def test_explain_says_why_a_job_waits_on_each_type_from_its_status_alone() -> None:
    text = views.explain(aijob("wait", WAITING), NOW)
    assert "position: 2 in the queue" in text
    assert "reason:   QuotaExceeded: tenant physics in pool h800: used 8 of nominal 8; needs 16" in text
    assert (
        "nvidia/H800 in pool h800: QuotaExceeded - used 8 of nominal 8; needs 16 (relative runtime 1.00)"
        in text
    )
    assert "nvidia/A800 in pool a800: fits now (relative runtime 1.60)" in text


def test_explain_shows_where_a_job_runs_and_the_use_of_each_attempt() -> None:
    started = {"type": "Normal", "reason": "Started", "message": "all 2 workers Running",
               "lastTimestamp": "2026-11-30T11:59:00Z"}  # fmt: skip
    text = views.explain(aijob("run", RUNNING), NOW, events=[started])
    assert "runs on:  local pool h800 (nvidia H800), nodes n1, n2" in text
    attempts = [
        line.split() for line in text.splitlines() if line.startswith("    1 ") or line.startswith("    2 ")
    ]
    assert attempts[0][-2:] == ["8.00", "Preempted"]  # 16 accelerators x 30 minutes
    assert attempts[1][-1] == "4.00"  # still running: 16 x 15 minutes so far
    assert "1m Normal  Started: all 2 workers Running" in text


def test_explain_of_a_job_no_pool_offers() -> None:
    text = views.explain(aijob("odd", {"phase": "Queued", "verdicts": []}), NOW)
    assert "no ComputePool offers any of them (nvidia/*)" in text


# ---- usage period ------------------------------------------------------------------------------


def test_usage_period_is_a_month_or_a_range_or_this_month_so_far() -> None:
    assert usagecmd.period("2026-11", None, None, NOW) == (
        parse_time("2026-11-01T00:00:00Z"), parse_time("2026-12-01T00:00:00Z"))  # fmt: skip
    assert usagecmd.period(None, "2026-11-02", "2026-11-03T12:00:00Z", NOW) == (
        parse_time("2026-11-02T00:00:00Z"), parse_time("2026-11-03T12:00:00Z"))  # fmt: skip
    assert usagecmd.period(None, None, None, NOW) == (parse_time("2026-11-01T00:00:00Z"), NOW)
    bad: list[tuple[str | None, str | None, str | None]] = [
        ("2026-13", None, None),
        (None, "yesterday", None),
        (None, "2026-11-05", "2026-11-04"),
    ]
    for month, start, end in bad:
        with pytest.raises(ValueError):
            usagecmd.period(month, start, end, NOW)


# ---- completion ------------------------------------------------------------------------------


def test_kubectl_completion_hook_answers_in_cobras_protocol() -> None:
    assert completion.candidates(["li"]) == (["list"], completion.NO_FILE_COMPLETION)
    values, _ = completion.candidates(["run", "x", "--template", "pytorch-"])
    assert values == ["pytorch-ascend", "pytorch-ddp", "pytorch-fsdp"]
    assert "--all-namespaces" in completion.candidates(["list", "--a"])[0]


def test_completion_scripts_for_the_shells() -> None:
    assert "_KUBECTL_ESTUARY_COMPLETE" in invoke("completion", "bash").output


# ---- logs -------------------------------------------------------------------------------------


class FakeCore:
    """The two CoreV1Api calls `logs` makes; the streamed body arrives in awkward chunks."""

    def __init__(self, texts: dict[str, str]) -> None:
        self.texts = texts

    def read_namespaced_pod_log(self, name: str, namespace: str, **options: Any) -> Any:
        text = self.texts[name]
        if not options.get("follow"):
            return text
        data = text.encode()

        class Response:
            def stream(self, size: int) -> Any:
                return (data[i : i + 5] for i in range(0, len(data), 5))

        return Response()


def test_logs_prefix_every_line_with_its_rank_and_never_split_a_line() -> None:
    core = FakeCore({"j-worker-0": "loading data\nstep 1\n", "j-worker-10": "step 1 on rank 10"})
    pods = [(0, "j-worker-0"), (10, "j-worker-10")]
    out: list[str] = []
    logs.print_logs(core, "physics", pods, out.append)
    assert out == ["[rank  0] loading data", "[rank  0] step 1", "[rank 10] step 1 on rank 10"]
    followed: list[str] = []
    logs.follow_logs(core, "physics", pods, followed.append)
    assert sorted(followed) == sorted(out)


# ---- krew ----------------------------------------------------------------------------------


def test_krew_manifest_names_the_launcher_and_its_files() -> None:
    doc = yaml.safe_load((REPO_ROOT / "deploy" / "krew" / "estuary.yaml").read_text())
    assert (doc["apiVersion"], doc["kind"], doc["metadata"]["name"]) == (
        "krew.googlecontainertools.github.com/v1alpha2", "Plugin", "estuary")  # fmt: skip
    assert doc["spec"]["shortDescription"] and doc["spec"]["version"].startswith("v")
    (platform,) = doc["spec"]["platforms"]
    assert platform["bin"] == "kubectl-estuary" and len(platform["sha256"]) == 64
    for entry in platform["files"]:
        if "*" not in entry["from"]:
            assert os.access(REPO_ROOT / "deploy" / "krew" / entry["from"], os.X_OK), entry


def test_krew_launcher_runs_the_installed_plugin() -> None:
    launcher = REPO_ROOT / "deploy" / "krew" / "kubectl-estuary"
    assert subprocess.run(["sh", "-n", str(launcher)], check=False).returncode == 0
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "XDG_DATA_HOME": "/nonexistent"}  # fmt: skip
    out = subprocess.run([str(launcher), "--version"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("kubectl-estuary, version"), out.stderr
