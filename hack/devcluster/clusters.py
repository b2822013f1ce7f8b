"""Start, fill and stop named local clusters with kwokctl's binary runtime.

Each cluster of a topology becomes a kwokctl cluster ``estuary-<name>``: real etcd,
kube-apiserver, kube-controller-manager and kube-scheduler processes bound to 127.0.0.1, plus the
kwok controller that plays the kubelet of the simulated accelerator nodes. This module writes a
self-contained kubeconfig per cluster (certificates embedded, so it can go into a Secret for a
FederationLink), applies the kwok Stages of ``hack/stages`` and the topology's Node objects, and on
the way down makes sure no process of the cluster survives. ``up`` on a running cluster only
re-applies Stages and Nodes, so it is safe to repeat.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devcluster import binaries
from devcluster.topology import POOL_LABEL, ClusterSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGES_DIR = REPO_ROOT / "hack" / "stages"
NAME_PREFIX = "estuary-"
FIELD_MANAGER = "estuary-devcluster"


class ClusterError(RuntimeError):
    """A cluster could not be started, filled or stopped; the message says what and shows logs."""


def default_workdir() -> Path:
    """Where kwokctl keeps cluster state: ESTUARY_KWOK_WORKDIR, else ~/.cache/estuary/kwok."""
    env = os.environ.get("ESTUARY_KWOK_WORKDIR")
    if env:
        return Path(env).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(cache) / "estuary" / "kwok"


def default_kubeconfig_dir() -> Path:
    return REPO_ROOT / "out"


def kwok_name(cluster: str) -> str:
    return f"{NAME_PREFIX}{cluster}"


@dataclass(frozen=True)
class Cluster:
    """A running cluster: its name, kubeconfig and the kubectl that matches its version."""

    name: str
    kubeconfig: Path
    kubectl_path: Path

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raises ClusterError with stderr when check fails."""
        cmd = [str(self.kubectl_path), "--kubeconfig", str(self.kubeconfig), *args]
        try:
            proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"[{self.name}] kubectl {' '.join(args)} timed out after {timeout}s") from exc
        if check and proc.returncode != 0:
            raise ClusterError(
                f"[{self.name}] kubectl {' '.join(args)} failed "
                f"(exit {proc.returncode}):\n{proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc

    def api_client(self) -> Any:
        """A kubernetes.client.ApiClient for this cluster (a new one per call)."""
        from kubernetes import config as kconfig

        return kconfig.new_client_from_config(config_file=str(self.kubeconfig))

    def ready(self) -> bool:
        return self.kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode == 0


class Progress:
    """Prints each long step with its position and elapsed time, and a heartbeat while it runs."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def say(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        start = time.monotonic()
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(15):
                self.say(f"    ... {label}: {time.monotonic() - start:.0f}s")

        self.say(f"==> {label}")
        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            self.say(f"    {label}: {time.monotonic() - start:.1f}s")


class Manager:
    """Runs kwokctl for one work directory with one set of binaries."""

    def __init__(
        self, tools: binaries.Toolset, workdir: Path | None = None, progress: Progress | None = None
    ) -> None:
        self.tools = tools
        self.workdir = (workdir or default_workdir()).resolve()
        self.progress = progress or Progress()

    # -- kwokctl plumbing -------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """kwokctl calls kubectl while it starts a cluster: the built one comes first on PATH."""
        path = os.pathsep.join([str(self.tools["kubectl"].parent), os.environ.get("PATH", "")])
        return {**os.environ, "KWOK_WORKDIR": str(self.workdir), "PATH": path}

    def cluster_dir(self, cluster: str) -> Path:
        return self.workdir / "clusters" / kwok_name(cluster)

    def kwokctl(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.tools["kwokctl"]), *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env(), timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"kwokctl {' '.join(args)} timed out after {timeout}s") from exc
        if check and proc.returncode != 0:
            raise ClusterError(
                f"kwokctl {' '.join(args)} failed (exit {proc.returncode}):\n"
                f"{_tail(_readable(proc.stderr + proc.stdout), 3000)}"
            )
        return proc

    def scratch_kubeconfig(self) -> Path:
        """kwokctl edits a kubeconfig on create and delete (default ~/.kube/config): give it one of
        its own, so the user's kubeconfig is never touched ("" works for create, not for delete)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        return self.workdir / "kwokctl-kubeconfig.yaml"

    def config_file(self, cluster: str) -> Path:
        """A KwokctlConfiguration naming our binaries by absolute path (no downloads)."""
        t = self.tools
        options = {
            "runtime": "binary",
            "kubeVersion": binaries.KUBE_VERSION,
            "etcdVersion": binaries.ETCD_VERSION.lstrip("v"),
            "bindAddress": "127.0.0.1",
            "kubeApiserverBinary": str(t["kube-apiserver"]),
            "kubeControllerManagerBinary": str(t["kube-controller-manager"]),
            "kubeSchedulerBinary": str(t["kube-scheduler"]),
            "kubectlBinary": str(t["kubectl"]),
            "etcdBinary": str(t["etcd"]),
            "kwokControllerBinary": str(t["kwok"]),
            # Stages as a CRD: they can be changed on a running cluster (hack/stages holds kwok's
            # defaults too, since kwokctl loads none in this mode). Logs and ClusterLogs make
            # `kubectl logs` of a simulated pod serve a file (tests of `kubectl estuary logs`).
            "enableCRDs": ["Stage", "Logs", "ClusterLogs"],
            "quietPull": True,
        }
        doc = {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlConfiguration",
            "options": options,
        }
        path = self.workdir / "configs" / f"{kwok_name(cluster)}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def list_clusters(self) -> list[str]:
        """Names (without the estuary- prefix) of the clusters that exist in this work directory."""
        out = self.kwokctl("get", "clusters", check=False, timeout=30).stdout.split()
        return sorted(n[len(NAME_PREFIX) :] for n in out if n.startswith(NAME_PREFIX))

    def handle(self, cluster: str, kubeconfig: Path) -> Cluster:
        return Cluster(name=cluster, kubeconfig=kubeconfig, kubectl_path=self.tools["kubectl"])

    def logs_tail(self, cluster: str, chars: int = 1500, first: Sequence[str] = ()) -> str:
        """The end of every component log kwokctl wrote (those named in first come first)."""
        logs = sorted(
            (self.cluster_dir(cluster) / "logs").glob("*.log"), key=lambda p: (p.stem not in first, p.name)
        )
        if not logs:
            return f"(no component logs under {self.cluster_dir(cluster) / 'logs'})"
        parts = []
        for log in logs:
            with contextlib.suppress(OSError):
                parts.append(f"--- {log} (tail)\n{_tail(log.read_text(errors='replace'), chars)}")
        return "\n".join(parts)

    def processes(self, cluster: str) -> list[tuple[int, str]]:
        """Processes whose command line mentions this cluster's directory (pid, command)."""
        needle = str(self.cluster_dir(cluster))
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            line = " ".join(a.decode(errors="replace") for a in args if a)
            if needle in line:
                found.append((int(proc.name), line[:200]))
        return found

    # -- lifecycle --------------------------------------------------------------------------

    def write_kubeconfig(self, cluster: str, path: Path) -> Cluster:
        """A kubeconfig with the certificates embedded, context named after the cluster."""
        raw = self.kwokctl("get", "kubeconfig", "--name", kwok_name(cluster), timeout=30).stdout
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            tmp.write(raw)
        tmp_path = Path(tmp.name)
        try:
            kubectl = [str(self.tools["kubectl"]), "--kubeconfig", str(tmp_path)]
            flat = subprocess.run(
                [*kubectl, "config", "view", "--raw", "--flatten", "--minify"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
            conf = yaml.safe_load(flat)
        finally:
            tmp_path.unlink(missing_ok=True)
        # Name cluster, user and context after our cluster so several kubeconfigs merge cleanly.
        conf["clusters"][0]["name"] = kwok_name(cluster)
        conf["users"][0]["name"] = kwok_name(cluster)
        conf["contexts"][0]["name"] = kwok_name(cluster)
        conf["contexts"][0]["context"].update(cluster=kwok_name(cluster), user=kwok_name(cluster))
        conf["current-context"] = kwok_name(cluster)
        path.write_text(yaml.safe_dump(conf, sort_keys=False))
        path.chmod(0o600)
        return self.handle(cluster, path)

    def start(self, spec: ClusterSpec, kubeconfig: Path, step: str = "") -> Cluster:
        """Bring one cluster up (or reuse it when it already runs) and apply Stages and Nodes."""
        name = spec.name
        label = f"[{name}{' ' + step if step else ''}]"
        handle: Cluster | None = None
        if name in self.list_clusters():
            handle = self.write_kubeconfig(name, kubeconfig)
            # Processes alive but not ready yet (just started, busy machine): give them a minute.
            if handle.ready() or (self.processes(name) and _wait(handle.ready, 60)):
                self.progress.say(f"==> {label} control plane already running: re-applying stages and nodes")
            else:
                # Its processes are gone (reboot, kill). `kwokctl start` reuses the old ports, which
                # another cluster may have taken meanwhile, so a fresh cluster is the reliable way.
                self.progress.say(f"==> {label} control plane not running: recreating the cluster")
                self.stop(name, kubeconfig)
                handle = None
        if handle is None:
            handle = self._create(name, kubeconfig, label)
        with self.progress.step(f"{label} applying kwok stages from {_rel(STAGES_DIR)}"):
            apply_stages(handle)
        with self.progress.step(
            f"{label} applying {sum(p.count for p in spec.node_pools)} nodes in {len(spec.node_pools)} pools"
        ):
            apply_nodes(handle, spec)
        with self.progress.step(f"{label} waiting for nodes Ready and the default service account"):
            wait_nodes_ready(handle, timeout=120)
            wait_service_account(handle, "default", timeout=120)
        return handle

    def _create(self, name: str, kubeconfig: Path, label: str, attempts: int = 2) -> Cluster:
        """kwokctl create, serialised machine-wide: kwokctl picks free ports when it creates a
        cluster, so two creations at once (say, two test sessions) could pick the same ones."""
        config = self.config_file(name)
        error = ""
        for attempt in range(1, attempts + 1):
            what = f"{label} starting etcd, kube-apiserver, controller-manager, scheduler, kwok (127.0.0.1)"
            with self.progress.step(what if attempt == 1 else f"{what}, attempt {attempt}"), _create_lock():
                rc, output, crashed = self._run_create(name, config)
                if rc == 0:
                    handle = self.write_kubeconfig(name, kubeconfig)
                    if _wait(handle.ready, 90):
                        return handle
                    error = "kube-apiserver is not ready 90s after kwokctl create returned"
                elif crashed:
                    error = f"{', '.join(crashed)} exited during start-up (see its log below)"
                else:
                    error = f"kwokctl create cluster failed (exit {rc}):\n{_tail(_readable(output), 3000)}"
                error = f"{label} {error}\n{self.logs_tail(name, first=crashed)}"
            self.stop(name, kubeconfig)
            if attempt < attempts:
                self.progress.say(f"    {label} failed, retrying once:\n{_tail(error, 1500)}")
        raise ClusterError(error)

    def _run_create(self, name: str, config: Path, timeout: float = 330) -> tuple[int, str, list[str]]:
        """Run kwokctl create; stop early when a component dies (kwokctl would wait minutes).

        Returns kwokctl's exit code, its output, and the components found dead."""
        cmd = [
            str(self.tools["kwokctl"]),
            "--config",
            str(config),
            "create",
            "cluster",
            "--name",
            kwok_name(name),
            "--kubeconfig",
            str(self.scratch_kubeconfig()),
            "--timeout",
            "4m",
            "--wait",
            "2m",
        ]
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=self.env())
            deadline = time.monotonic() + timeout
            dead_checks = 0
            crashed: list[str] = []
            while proc.poll() is None:
                time.sleep(0.5)
                crashed = self.dead_components(name)
                dead_checks = dead_checks + 1 if crashed else 0
                if dead_checks >= 6 or time.monotonic() > deadline:  # dead for 3 s, or too slow
                    proc.kill()
                    proc.wait()
                    break
            out.seek(0)
            output = out.read()
        if proc.returncode != 0 and not crashed:
            crashed = self.dead_components(name)
        return proc.returncode, output, crashed

    def dead_components(self, cluster: str) -> list[str]:
        """Components kwokctl started (pid files) whose process has exited."""
        dead = []
        for pidfile in sorted((self.cluster_dir(cluster) / "pids").glob("*.pid")):
            try:
                pid = int(pidfile.read_text().strip())
                state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, ValueError, IndexError):
                state = "gone"
            if state in ("Z", "X", "gone"):
                dead.append(pidfile.stem)
        return dead

    def stop(self, cluster: str, kubeconfig: Path | None = None) -> list[tuple[int, str]]:
        """Delete a cluster and its state; kills any process of it that kwokctl left behind.

        Returns the processes that had to be killed (empty when kwokctl cleaned up by itself).
        """
        before = [pid for pid, _ in self.processes(cluster)]
        if cluster in self.list_clusters():
            self.kwokctl(
                "delete",
                "cluster",
                "--name",
                kwok_name(cluster),
                "--kubeconfig",
                str(self.scratch_kubeconfig()),
                timeout=180,
                check=False,
            )
        # kwokctl signals the components and returns at once: give them time to exit.
        _wait(lambda: not self.processes(cluster), 20, interval=0.2)
        leftovers = self.processes(cluster)
        for pid, _ in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if leftovers and not _wait(lambda: not self.processes(cluster), 10, interval=0.5):
            for pid, _ in self.processes(cluster):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if not _wait(lambda: not self.processes(cluster), 10, interval=0.5):
            raise ClusterError(f"processes of cluster {cluster} survive: {self.processes(cluster)}")
        _reap(before)
        if self.cluster_dir(cluster).exists():  # kwokctl failed half-way: its processes are gone now
            shutil.rmtree(self.cluster_dir(cluster), ignore_errors=True)
        if kubeconfig is not None:
            kubeconfig.unlink(missing_ok=True)
        return leftovers


# -- what goes into a running cluster ------------------------------------------------------


def apply_stages(cluster: Cluster, stages_dir: Path = STAGES_DIR) -> None:
    """Server-side apply every Stage file (the Stage CRD is installed by kwokctl)."""
    files = sorted(stages_dir.glob("*.yaml"))
    if not files:
        raise ClusterError(f"no kwok Stage files in {stages_dir}")
    if not _wait(
        lambda: (
            cluster.kubectl("get", "crd", "stages.kwok.x-k8s.io", check=False, timeout=10).returncode == 0
        ),
        60,
    ):
        raise ClusterError(f"[{cluster.name}] the kwok Stage CRD never appeared")
    cluster.kubectl("wait", "--for=condition=Established", "crd/stages.kwok.x-k8s.io", "--timeout=60s")
    args = ["apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}"]
    for f in files:
        args += ["-f", str(f)]
    cluster.kubectl(*args)


def apply_nodes(cluster: Cluster, spec: ClusterSpec) -> None:
    """Create or update the topology's Nodes, set their capacity, and delete nodes it no longer has.

    The API server keeps a Node's status (capacity, allocatable) when the Node is created but
    ignores status in an update of the main resource, so status is applied a second time through
    the status subresource; kwok then keeps what it finds there.
    """
    nodes = spec.nodes()
    ssa = ["apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}", "-f", "-"]
    cluster.kubectl(*ssa, input=json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes}))
    statuses = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": n["metadata"]["name"]},
            "status": {k: n["status"][k] for k in ("capacity", "allocatable")},
        }
        for n in nodes
    ]
    cluster.kubectl(
        *ssa,
        "--subresource=status",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": statuses}),
    )
    wanted = {n["metadata"]["name"] for n in nodes}
    existing = cluster.kubectl("get", "nodes", "-l", POOL_LABEL, "-o", "name").stdout.split()
    stale = [n for n in existing if n.removeprefix("node/") not in wanted]
    if stale:
        cluster.kubectl("delete", "--wait=false", *stale)


def wait_nodes_ready(cluster: Cluster, timeout: float) -> None:
    proc = cluster.kubectl(
        "wait",
        "--for=condition=Ready",
        "node",
        "--all",
        f"--timeout={int(timeout)}s",
        check=False,
        timeout=timeout + 30,
    )
    if proc.returncode != 0:
        raise ClusterError(f"[{cluster.name}] nodes not Ready after {timeout}s:\n{proc.stderr.strip()}")


def wait_service_account(cluster: Cluster, namespace: str, timeout: float) -> None:
    """Pods are refused until the namespace's default ServiceAccount exists."""
    ok = _wait(
        lambda: (
            cluster.kubectl(
                "get", "serviceaccount", "default", "-n", namespace, check=False, timeout=10
            ).returncode
            == 0
        ),
        timeout,
    )
    if not ok:
        raise ClusterError(f"[{cluster.name}] no default ServiceAccount in {namespace} after {timeout}s")


def apply_crds(cluster: Cluster, crd_dir: Path, timeout: float = 60) -> list[str]:
    """Server-side apply every CRD file in crd_dir and wait until they are Established."""
    files = sorted([*crd_dir.glob("*.yaml"), *crd_dir.glob("*.yml")])
    names = []
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                names.append(doc["metadata"]["name"])
    if not names:
        return []
    args = ["apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}"]
    for f in files:
        args += ["-f", str(f)]
    cluster.kubectl(*args)
    # Polled rather than `kubectl wait`: a large CRD (the AIJob's pod schema) can be read back before
    # the API server wrote any condition, and `kubectl wait` fails on a missing conditions list.
    query = '{range .items[*]}{.status.conditions[?(@.type=="Established")].status}{"\\n"}{end}'

    def established() -> bool:
        out = cluster.kubectl("get", *[f"crd/{n}" for n in names], "-o", f"jsonpath={query}", check=False)
        return out.returncode == 0 and out.stdout.split() == ["True"] * len(names)

    if not _wait(established, timeout):
        raise ClusterError(f"[{cluster.name}] CRDs not Established within {timeout:.0f}s: {', '.join(names)}")
    return names


# -- helpers -------------------------------------------------------------------------------


def _wait(predicate: Callable[[], bool], timeout: float, interval: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@contextlib.contextmanager
def _create_lock() -> Iterator[None]:
    """An exclusive lock shared by every Estuary tool on this machine (not per work directory)."""
    path = binaries.cache_dir().parent / "kwokctl-create.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def become_subreaper() -> bool:
    """Make this process adopt orphaned descendants (Linux), so it can reap the components kwokctl
    detaches when their cluster stops. Where PID 1 does not reap (some containers and sandboxes),
    they would otherwise stay behind as zombies. Returns whether it worked."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(36, 1, 0, 0, 0) == 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _reap(pids: Sequence[int], timeout: float = 5) -> None:
    """Collect the exit status of those processes that are our children (see become_subreaper)."""
    pending = set(pids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except (ChildProcessError, OSError):  # not our child, or already collected
                pending.discard(pid)
                continue
            if done:
                pending.discard(pid)
        if pending:
            time.sleep(0.1)


def _readable(output: str) -> str:
    """kwokctl logs JSON lines: keep level, message and fields, drop source locations."""
    lines = []
    for line in output.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            lines.append(line)
            continue
        if not isinstance(rec, dict):
            lines.append(line)
            continue
        fields = " ".join(f"{k}={v!r}" for k, v in rec.items() if k not in ("time", "level", "msg", "source"))
        lines.append(f"{rec.get('level', '')} {rec.get('msg', '')} {fields}".strip())
    out: list[str] = []
    for line, run in itertools.groupby(lines):  # collapse runs of the same line
        out.append(line)
        repeats = sum(1 for _ in run) - 1
        if repeats:
            out.append(f"    (the line above {repeats} more times)")
    return "\n".join(out)


def _tail(text: str, chars: int) -> str:
    text = text.strip()
    return text if len(text) <= chars else "..." + text[-chars:]


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def start_all(specs: Sequence[ClusterSpec], manager: Manager, kubeconfig_dir: Path) -> list[Cluster]:
    """Start clusters one after another (kwokctl picks ports; parallel starts can collide)."""
    out = []
    for i, spec in enumerate(specs, 1):
        out.append(manager.start(spec, kubeconfig_dir / f"kubeconfig-{spec.name}", step=f"{i}/{len(specs)}"))
    return out
