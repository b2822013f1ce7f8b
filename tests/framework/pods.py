"""Run rendered worker pods as local processes, each in a network namespace of its own.

What a pod gets here is what its container would get from the kubelet: the command and args with
`$(VAR)` expanded by the kubelet's rules, exactly the container's environment (plus PATH and HOME,
which an image brings), the pod's hostname, and an address of its own that the other pods reach.
The framework venv plays the image. What differs, and nothing else:
- DNS: each pod's /etc/hosts maps the pods' names in the job's headless Service
  (`{job}-worker-{rank}.{job}.{namespace}.svc[.cluster.local]`) to their addresses, as cluster DNS
  would. The names can be published late (`publish_after`), as a real Service's records are.
- The accelerator: the test passes `overrides` that put the collective on the CPU (gloo) and give
  JAX CPU devices in place of accelerators; each test names the ones it uses.

Every pod runs under `ip netns exec` (its own network stack, as a pod has: a launcher that asks
"is the master address mine?" gets the answer it would in a cluster) and `unshare --mount --uts`
(its own /etc/hosts and hostname). The namespaces are joined by a bridge in a hub namespace; none of
them is connected to the host's network. This needs root, which CI has.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUBNET = "10.250.{net}.{host}"


def expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's `$(VAR)` expansion (k8s.io/kubernetes third_party/forked/golang/expansion):
    a defined `$(NAME)` is replaced, `$$` is `$`, anything else stays as written."""
    out, i = [], 0
    while i < len(text):
        if text[i] != "$" or i + 1 == len(text):
            out.append(text[i])
            i += 1
        elif text[i + 1] == "$":
            out.append("$")
            i += 2
        elif text[i + 1] == "(" and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2 : end]
            out.append(env[name] if name in env else text[i : end + 1])
            i = end + 1
        else:
            out.append(text[i : i + 2])
            i += 2
    return "".join(out)


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """A container's environment in order, each value expanded against the ones before it."""
    env: dict[str, str] = {}
    for var in container.get("env") or []:
        if "value" not in var:
            raise ValueError(f"{var['name']}: valueFrom needs an API server; the framework tier has none")
        env[var["name"]] = expand(var["value"], env)
    return env


@dataclass(frozen=True)
class PodRun:
    name: str
    hostname: str
    fqdn: str
    address: str
    argv: list[str]
    env: dict[str, str]


def pod_run(pod: dict[str, Any], address: str, image_bin: Path, overrides: dict[str, str]) -> PodRun:
    container = pod["spec"]["containers"][0]
    assert container["name"] == "worker"
    env = container_env(container)
    argv = [expand(a, env) for a in (container.get("command") or []) + (container.get("args") or [])]
    env = {**env, **overrides, "PATH": f"{image_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": "/root"}
    meta, spec = pod["metadata"], pod["spec"]
    fqdn = f"{spec['hostname']}.{spec['subdomain']}.{meta['namespace']}.svc"
    return PodRun(meta["name"], spec["hostname"], fqdn, address, argv, env)


@dataclass
class Result:
    name: str
    returncode: int | None
    output: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextmanager
def network(count: int) -> Iterator[list[tuple[str, str]]]:
    """`count` network namespaces on one bridge: yields (namespace, address) per pod."""
    tag = uuid.uuid4().hex[:6]
    net = int(tag[:2], 16)
    hub = f"estfw-{tag}-hub"
    pods = [(f"estfw-{tag}-{i}", SUBNET.format(net=net, host=i + 2)) for i in range(count)]
    made = []
    try:
        _ip("netns", "add", hub)
        made.append(hub)
        _ip("-n", hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", hub, "link", "set", "br0", "up")
        for i, (ns, address) in enumerate(pods):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", hub, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", hub, "link", "set", f"p{i}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield pods
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def hosts_text(runs: list[PodRun], own: PodRun, published: bool) -> str:
    lines = ["127.0.0.1 localhost", f"{own.address} {own.fqdn}.cluster.local {own.fqdn} {own.hostname}"]
    if published:
        lines += [f"{r.address} {r.fqdn}.cluster.local {r.fqdn}" for r in runs if r is not own]
    return "\n".join(lines) + "\n"


_ENTER = 'mount --bind "$0" /etc/hosts && hostname "$1" && shift 1 && exec env -u PWD "$@"'


def run_pods(
    pods: list[dict[str, Any]],
    image_bin: Path,
    workdir: Path,
    overrides: dict[str, str],
    timeout: float = 600,
    publish_after: float = 0,
) -> list[Result]:
    """Start every pod at once, wait for all (or kill them at `timeout`), return their exits."""
    with network(len(pods)) as slots:
        runs = [pod_run(p, addr, image_bin, overrides) for p, (_, addr) in zip(pods, slots, strict=True)]
        procs = []
        for run, (ns, _) in zip(runs, slots, strict=True):
            home = workdir / run.name
            home.mkdir(parents=True, exist_ok=True)
            hosts = home / "hosts"
            hosts.write_text(hosts_text(runs, run, published=publish_after == 0))
            cmd = ["ip", "netns", "exec", ns, "unshare", "--mount", "--uts", "sh", "-c", _ENTER]
            cmd += [str(hosts), run.hostname, *run.argv]
            log = (home / "output.log").open("w")
            proc = subprocess.Popen(cmd, env=run.env, cwd=home, stdout=log, stderr=subprocess.STDOUT)
            (home / "pid").write_text(str(proc.pid))  # the container's main process, after the execs
            procs.append((run, proc, log))
        if publish_after:
            threading.Timer(publish_after, _publish, (runs, workdir)).start()
        deadline = time.monotonic() + timeout
        results = []
        for run, proc, log in procs:
            try:
                proc.wait(max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            text = (workdir / run.name / "output.log").read_text(errors="replace")
            results.append(Result(run.name, proc.returncode, text))
        return results


def launcher_pids(workdir: Path) -> list[int]:
    """The main process of every pod started in `workdir` (what the kubelet signals)."""
    return [int(p.read_text()) for p in sorted(workdir.glob("*/pid"))]


def _publish(runs: list[PodRun], workdir: Path) -> None:
    """Add the other pods' records, rewriting each hosts file in place (the bind mount sees it)."""
    for run in runs:
        with (workdir / run.name / "hosts").open("r+") as f:
            f.seek(0)
            f.write(hosts_text(runs, run, published=True))
            f.truncate()


def can_run() -> str | None:
    """Why pods cannot run here, or None."""
    if os.geteuid() != 0:
        return "the framework tier needs root (network and mount namespaces); CI runs as root"
    for tool in ("ip", "unshare"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            return f"{tool} not found (Debian: apt-get install iproute2 util-linux)"
    return None
