"""Find or build the control-plane binaries the local clusters run on.

No container engine runs on the project's machines and no package registry ships kube-apiserver,
so the binaries are looked up (cache, then PATH) and otherwise built from Go modules, version
stamped, into a cache outside the repository. A second run finds them and costs nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

KUBE_VERSION = "v1.36.3"
STAGING_VERSION = "v0.36.3"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v4.3.2"

KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
ALL_BINARIES = (*KUBE_COMMANDS, "etcd", "kwok", "kwokctl")
# Not part of a cluster, but built and found the same way: helm installs the chart (charts/estuary).
EXTRA_BINARIES = ("helm",)

# Staging modules that k8s.io/kubernetes replaces with ./staging paths; each needs a published version.
STAGING_MODULES = (
    "api",
    "apiextensions-apiserver",
    "apimachinery",
    "apiserver",
    "cli-runtime",
    "client-go",
    "cloud-provider",
    "cluster-bootstrap",
    "code-generator",
    "component-base",
    "component-helpers",
    "controller-manager",
    "cri-api",
    "cri-client",
    "cri-streaming",
    "csi-translation-lib",
    "dynamic-resource-allocation",
    "endpointslice",
    "externaljwt",
    "kms",
    "kube-aggregator",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "metrics",
    "mount-utils",
    "pod-security-admission",
    "sample-apiserver",
    "sample-cli-plugin",
    "sample-controller",
    "streaming",
)


def cache_dir() -> Path:
    root = os.environ.get("ESTUARY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "estuary"
    )
    return Path(root) / f"k8s-{KUBE_VERSION}"


def bin_dir() -> Path:
    return cache_dir() / "bin"


@dataclass(frozen=True)
class Toolset:
    """Absolute paths of every binary a local cluster needs."""

    paths: dict[str, Path]

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]


def _version_ok(name: str, path: Path) -> bool:
    """A binary on PATH is used only when it reports the version we test against."""
    args = {
        "kubectl": ["version", "--client"],
        "etcd": ["--version"],
        "kwok": ["--version"],
        "kwokctl": ["--version"],
        "helm": ["version", "--short"],
    }.get(name, ["--version"])
    try:
        out = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    want = {
        "etcd": ETCD_VERSION.lstrip("v"),
        "kwok": KWOK_VERSION,
        "kwokctl": KWOK_VERSION,
        "helm": HELM_VERSION,
    }.get(name, KUBE_VERSION)
    return want in out


def find() -> dict[str, Path]:
    """Binaries already available: the cache first, then PATH at the right version."""
    found: dict[str, Path] = {}
    for name in (*ALL_BINARIES, *EXTRA_BINARIES):
        cached = bin_dir() / name
        if cached.is_file() and os.access(cached, os.X_OK):
            found[name] = cached
            continue
        on_path = shutil.which(name)
        if on_path and _version_ok(name, Path(on_path)):
            found[name] = Path(on_path)
    return found


class _Progress:
    """Prints what a long step is doing, with elapsed time, every few seconds."""

    def __init__(self, step: int, total: int, what: str) -> None:
        self.label = f"[{step}/{total}] {what}"
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(30):
            print(f"    ... {self.label}: {time.monotonic() - self.start:.0f}s", flush=True)

    def __enter__(self) -> _Progress:
        print(f"==> {self.label}", flush=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        print(f"    done in {time.monotonic() - self.start:.0f}s: {self.label}", flush=True)


def _go(args: list[str], cwd: Path, log: Path) -> None:
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false", "GOTOOLCHAIN": "local"}
    with log.open("a") as out:
        out.write(f"\n$ go {' '.join(args)}\n")
        out.flush()
        proc = subprocess.run(["go", *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = log.read_text()[-4000:]
        raise RuntimeError(f"go {' '.join(args[:2])} failed in {cwd} (full log: {log}):\n{tail}")


def _version_ldflags() -> str:
    minor = KUBE_VERSION.split(".")[1]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={KUBE_VERSION}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return "-s -w " + " ".join(flags)


def _write_module(
    path: Path, module: str, requires: list[str], replaces: list[str], tools: list[str]
) -> None:
    path.mkdir(parents=True, exist_ok=True)
    lines = [f"module {module}", "", "go 1.26", "", "require ("]
    lines += [f"\t{r}" for r in requires] + [")", ""]
    if replaces:
        lines += ["replace ("] + [f"\t{r}" for r in replaces] + [")", ""]
    (path / "go.mod").write_text("\n".join(lines))
    imports = "\n".join(f'\t_ "{t}"' for t in tools)
    (path / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n")


def build(missing: list[str]) -> None:
    """Build the missing binaries into the cache (a cold build takes 15-25 minutes on 2 cores)."""
    if shutil.which("go") is None:
        raise RuntimeError(
            "Go is needed to build the control plane (go 1.26+): install it, or put "
            f"{', '.join(missing)} {KUBE_VERSION} on PATH"
        )
    work = cache_dir() / "src"
    log = cache_dir() / "build.log"
    bin_dir().mkdir(parents=True, exist_ok=True)
    kube = [m for m in missing if m in KUBE_COMMANDS]
    steps: list[tuple[str, Path, list[list[str]]]] = []
    if kube:
        mod = work / "kubernetes"
        _write_module(
            mod,
            "estuary.dev/build/kubernetes",
            [f"k8s.io/kubernetes {KUBE_VERSION}"],
            [f"k8s.io/{m} => k8s.io/{m} {STAGING_VERSION}" for m in STAGING_MODULES],
            [
                f"k8s.io/kubernetes/cmd/{c}" if c != "kubectl" else "k8s.io/kubernetes/cmd/kubectl"
                for c in kube
            ],
        )
        pkgs = [f"k8s.io/kubernetes/cmd/{c}" for c in kube]
        steps.append((f"kubernetes {KUBE_VERSION}: download modules", mod, [["mod", "tidy"]]))
        steps.append(
            (
                f"kubernetes {KUBE_VERSION}: compile {', '.join(kube)}",
                mod,
                [["build", "-trimpath", "-ldflags", _version_ldflags(), "-o", str(bin_dir()), *pkgs]],
            )
        )
    if "etcd" in missing:
        mod = work / "etcd"
        _write_module(
            mod,
            "estuary.dev/build/etcd",
            [f"go.etcd.io/etcd/server/v3 {ETCD_VERSION}"],
            [],
            ["go.etcd.io/etcd/server/v3"],
        )
        steps.append(
            (
                f"etcd {ETCD_VERSION}: download and compile",
                mod,
                [
                    ["mod", "tidy"],
                    ["build", "-trimpath", "-o", str(bin_dir() / "etcd"), "go.etcd.io/etcd/server/v3"],
                ],
            )
        )
    kwok = [m for m in missing if m in ("kwok", "kwokctl")]
    if kwok:
        work.mkdir(parents=True, exist_ok=True)
        ld = f"-X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION}"
        steps.append(
            (
                f"kwok {KWOK_VERSION}: download and compile {', '.join(kwok)}",
                work,
                [
                    ["install", "-trimpath", "-ldflags", ld, f"sigs.k8s.io/kwok/cmd/{k}@{KWOK_VERSION}"]
                    for k in kwok
                ],
            )
        )
    if "helm" in missing:
        work.mkdir(parents=True, exist_ok=True)
        ld = f"-s -w -X helm.sh/helm/v4/internal/version.version={HELM_VERSION}"
        steps.append(
            (
                f"helm {HELM_VERSION}: download and compile",
                work,
                [["install", "-trimpath", "-ldflags", ld, f"helm.sh/helm/v4/cmd/helm@{HELM_VERSION}"]],
            )
        )
    for i, (what, cwd, commands) in enumerate(steps, 1):
        with _Progress(i, len(steps), what):
            for args in commands:
                if args[0] == "install":
                    os.environ["GOBIN"] = str(bin_dir())
                _go(args, cwd, log)


def ensure() -> Toolset:
    """Every binary (the control plane and helm), building what is missing. Fast when the cache is warm."""
    found = find()
    missing = [b for b in (*ALL_BINARIES, *EXTRA_BINARIES) if b not in found]
    if missing:
        print(
            f"control plane: building {', '.join(missing)} into {bin_dir()} "
            f"(cold: 15-25 min on 2 cores; log: {cache_dir() / 'build.log'})",
            flush=True,
        )
        build(missing)
        found = find()
        still = [b for b in (*ALL_BINARIES, *EXTRA_BINARIES) if b not in found]
        if still:
            raise RuntimeError(f"build finished but {', '.join(still)} missing from {bin_dir()}")
    return Toolset(found)


if __name__ == "__main__":
    tools = ensure()
    for name, path in sorted(tools.paths.items()):
        print(f"{name}: {path}")
    sys.exit(0)
