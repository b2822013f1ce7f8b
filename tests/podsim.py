"""A pod's processes without a container runtime, for tests of the fence with real processes.

Run it as PID 1 of a new PID namespace (`command()` wraps it in `unshare --pid --fork --mount-proc`,
so /proc shows that namespace only). Like a pod's pause process it is PID 1 and is named `pause`;
like the kubelet it runs the init containers in order (a failing one fails the pod), then starts
the sidecars (restarted when they exit, `restartPolicy: Always`) and the main containers, reaps
every process, and ends when all main containers have exited, writing each container's state to
a JSON file as it changes. When it exits, the kernel kills whatever is left in the namespace.

    python tests/podsim.py SPEC.json
    SPEC: {"status": path, "init": {name: argv}, "sidecars": {name: argv}, "containers": {name: argv},
           "env": {...}}
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PR_SET_NAME = 15


def unshare_prefix() -> list[str] | None:
    """The unshare command that gives a new PID namespace with its own /proc here, or None when
    this machine allows none (no unshare, no privilege, no user namespaces)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    for extra in ([], ["--user", "--map-root-user"]):
        prefix = [unshare, *extra, "--pid", "--fork", "--mount-proc", "--kill-child"]
        probe = subprocess.run([*prefix, "sh", "-c", "test $$ = 1"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return prefix
    return None


def command(spec_path: Path, prefix: list[str]) -> list[str]:
    return [*prefix, sys.executable, str(Path(__file__).resolve()), str(spec_path)]


class Pod:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.status_path = Path(spec["status"])
        self.env = {**os.environ, **spec.get("env", {})}
        self.state: dict[str, Any] = {"phase": "Pending", "init": {}, "containers": {}, "sidecarStarts": {}}
        self.running: dict[int, tuple[str, str]] = {}  # pid -> (kind, name)

    def write(self) -> None:
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.status_path)

    def start(self, kind: str, name: str, argv: list[str]) -> None:
        proc = subprocess.Popen(argv, env=self.env)
        self.running[proc.pid] = (kind, name)
        if kind == "sidecar":
            self.state["sidecarStarts"][name] = self.state["sidecarStarts"].get(name, 0) + 1
        elif kind == "container":
            self.state["containers"][name] = {"running": True, "pid": proc.pid}
        self.write()

    def reap(self) -> list[tuple[str, str, int]]:
        """Every exited child (and orphan: this is PID 1): (kind, name, exit status) of ours."""
        out: list[tuple[str, str, int]] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return out
            if pid == 0:
                return out
            if pid in self.running:
                kind, name = self.running.pop(pid)
                code = os.waitstatus_to_exitcode(status)
                out.append((kind, name, 128 - code if code < 0 else code))

    def run(self) -> int:
        for name, argv in self.spec.get("init", {}).items():
            self.start("init", name, argv)
            code = self.wait_one()
            self.state["init"][name] = code
            if code != 0:
                self.state["phase"] = "Failed"
                self.write()
                return 1
        self.state["phase"] = "Running"
        for name, argv in self.spec.get("sidecars", {}).items():
            self.start("sidecar", name, argv)
        for name, argv in self.spec["containers"].items():
            self.start("container", name, argv)
        while any(c.get("running") for c in self.state["containers"].values()):
            for kind, name, code in self.reap():
                if kind == "container":
                    self.state["containers"][name] = {"running": False, "exitCode": code}
                    self.write()
                elif kind == "sidecar":  # restartPolicy: Always
                    self.start("sidecar", name, self.spec["sidecars"][name])
            time.sleep(0.05)
        codes = [c["exitCode"] for c in self.state["containers"].values()]
        self.state["phase"] = "Succeeded" if all(c == 0 for c in codes) else "Failed"
        self.write()
        for pid in list(self.running):  # the sidecars end with the pod
            os.kill(pid, signal.SIGTERM)
        time.sleep(0.3)
        return 0

    def wait_one(self) -> int:
        while True:
            for _, _, code in self.reap():
                return code
            time.sleep(0.05)


def main() -> int:
    ctypes.CDLL(None).prctl(PR_SET_NAME, b"pause", 0, 0, 0)
    spec = json.loads(Path(sys.argv[1]).read_text())
    return Pod(spec).run()


if __name__ == "__main__":
    sys.exit(main())
