"""Stand-ins for what an agentless provider's cluster has and the local control plane does not:
a network between the two clusters that can be cut (`TcpProxy`), and a kubelet that runs real
processes for the fenced pods kwok only pretends to run (`KubeletStandIn`).

`KubeletStandIn` watches one namespace of the provider. For each worker pod kwok has placed it
starts a pod's process tree in its own PID namespace (tests/podsim.py): the pod's own fence
containers, with the arguments the origin rendered (only the state directory, the kubeconfig of
the workers' service account and the termination-message file are local), then a worker process
that writes a heartbeat. When the worker dies it reports the pod as a kubelet would: phase Failed,
the worker's exit code, and the fence's termination message. A pod deleted at the provider has
its processes killed.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from tests import podsim
from tests.e2e.kube_helpers import Kube

WORKER = (
    "import sys, time\n"
    "while True:\n"
    "    open(sys.argv[1] + '.tmp', 'w').write(repr(time.monotonic()))\n"
    "    __import__('os').replace(sys.argv[1] + '.tmp', sys.argv[1])\n"
    "    time.sleep(0.2)\n"
)


def token_kubeconfig(admin: Path, token: str, server: str | None = None) -> str:
    """A kubeconfig for `token` on the cluster of the admin kubeconfig `admin` (its server and CA)."""
    conf = yaml.safe_load(admin.read_text())
    cluster = conf["clusters"][0]
    if server is not None:
        cluster["cluster"]["server"] = server
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "cloud",
            "clusters": [{"name": "cloud", "cluster": cluster["cluster"]}],
            "contexts": [{"name": "cloud", "context": {"cluster": "cloud", "user": "origin"}}],
            "users": [{"name": "origin", "user": {"token": token}}],
        }
    )


class TcpProxy:
    """127.0.0.1:port -> target; `cut()` drops every connection and refuses new ones (as a
    partition between the clusters would), `heal()` lets them through again."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.partitioned = False
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.partitioned:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)  # the 5 s was for connecting: an idle watch is not a lost one
            with self.lock:
                self.open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with self.lock:
                self.open.discard(s)
            with contextlib.suppress(OSError):
                s.close()

    def cut(self) -> None:
        self.partitioned = True
        with self.lock:
            doomed, self.open = list(self.open), set()
        for s in doomed:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
                s.close()

    def heal(self) -> None:
        self.partitioned = False

    def close(self) -> None:
        self.cut()
        self.listener.close()


class PodProcesses:
    def __init__(self, pod: dict[str, Any], workdir: Path, kubeconfig: Path, prefix: list[str]) -> None:
        self.name = pod["metadata"]["name"]
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.beat = workdir / "beat"
        self.termination = workdir / "termination-log"
        self.status_path = workdir / "pod.json"
        init: dict[str, list[str]] = {}
        sidecars: dict[str, list[str]] = {}
        for container in pod["spec"].get("initContainers") or []:
            argv = self._local(container["args"], kubeconfig)
            (sidecars if container.get("restartPolicy") == "Always" else init)[container["name"]] = argv
        spec = {
            "status": str(self.status_path),
            "init": init,
            "sidecars": sidecars,
            "containers": {"worker": [sys.executable, "-c", WORKER, str(self.beat)]},
        }
        (workdir / "spec.json").write_text(json.dumps(spec))
        log = (workdir / "processes.log").open("ab")
        self.proc = subprocess.Popen(podsim.command(workdir / "spec.json", prefix), stdout=log, stderr=log)
        self.reported = False

    def _local(self, args: list[str], kubeconfig: Path) -> list[str]:
        """The fence's rendered arguments, with this machine's paths."""
        out = list(args)
        out[out.index("--state-dir") + 1] = str(self.workdir / "fence")
        out += ["--kubeconfig", str(kubeconfig), "--termination-log", str(self.termination)]
        return [sys.executable, "-m", "estuary.cli", *out]

    def alive(self) -> bool:
        try:
            return time.monotonic() - float(self.beat.read_text()) < 1.0
        except (OSError, ValueError):
            return False

    def status(self) -> dict[str, Any]:
        try:
            out: dict[str, Any] = json.loads(self.status_path.read_text())
            return out
        except (OSError, ValueError):
            return {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class KubeletStandIn:
    def __init__(
        self, kube: Kube, namespace: str, kubeconfig: Path, workdir: Path, prefix: list[str]
    ) -> None:
        self.kube, self.namespace, self.kubeconfig = kube, namespace, kubeconfig
        self.workdir, self.prefix = workdir, prefix
        self.pods: dict[str, PodProcesses] = {}  # by pod uid
        self.stopped = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def alive(self, prefix: str = "") -> list[str]:
        """Names of pods (starting with `prefix`) whose worker process runs now."""
        return [p.name for p in list(self.pods.values()) if p.name.startswith(prefix) and p.alive()]

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self._sync()
            except Exception as exc:  # the provider's API server restarting, etc.: next round
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self.stopped.wait(0.5)

    def _sync(self) -> None:
        listed = self.kube.core.list_namespaced_pod(self.namespace).items
        present = set()
        for item in listed:
            pod = self.kube.api.sanitize_for_serialization(item)
            uid = pod["metadata"]["uid"]
            present.add(uid)
            if pod["metadata"].get("deletionTimestamp"):
                continue
            if uid not in self.pods and pod["spec"].get("nodeName") and pod["spec"].get("initContainers"):
                self.pods[uid] = PodProcesses(pod, self.workdir / uid, self.kubeconfig, self.prefix)
            run = self.pods.get(uid)
            if run is not None and not run.reported:
                self._report(pod, run)
        for uid in [u for u in self.pods if u not in present]:
            self.pods.pop(uid).stop()  # deleted at the provider: the kubelet kills its containers

    def _report(self, pod: dict[str, Any], run: PodProcesses) -> None:
        """Once the pod's processes have ended: its status, as a kubelet would write it."""
        state = run.status()
        if state.get("phase") not in ("Failed", "Succeeded"):
            return
        message = run.termination.read_text() if run.termination.exists() else ""
        code = (state.get("containers", {}).get("worker") or {}).get("exitCode", 1)
        images = {c["name"]: c["image"] for c in pod["spec"]["containers"] + pod["spec"]["initContainers"]}
        done = {"ready": False, "restartCount": 0, "imageID": "", "started": False}
        terminated = {"exitCode": 0, "message": message, "reason": "Completed"}
        fence = {**done, "name": "fence", "image": images["fence"], "state": {"terminated": terminated}}
        killed = {"exitCode": code, "reason": "Error"}
        worker = {**done, "name": "worker", "image": images["worker"], "state": {"terminated": killed}}
        status = {"phase": state["phase"], "initContainerStatuses": [fence], "containerStatuses": [worker]}
        body = {"status": status}
        self.kube.core.patch_namespaced_pod_status(pod["metadata"]["name"], self.namespace, body)
        run.reported = True

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
        for run in self.pods.values():
            run.stop()
