#!/usr/bin/env python3
"""Local Kubernetes clusters with simulated accelerator nodes, for developing and testing Estuary.

    python hack/cluster.py tools                      # find or build the binaries, print paths
    python hack/cluster.py up [--topology FILE]       # start the topology's clusters (idempotent)
    python hack/cluster.py status                     # which clusters run, where their kubeconfigs are
    python hack/cluster.py kubeconfig hk              # path of a cluster's kubeconfig
    python hack/cluster.py kubectl hk -- get nodes    # the built kubectl against one cluster
    python hack/cluster.py down [--topology FILE]     # delete the clusters, leaving no process

No container engine is needed: kwokctl runs etcd and the Kubernetes components as local processes
(see hack/devcluster). Cluster state lives in ESTUARY_KWOK_WORKDIR (default ~/.cache/estuary/kwok).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from devcluster import binaries, clusters, topology  # hack/ is on sys.path: this is its script

DEFAULT_TOPOLOGY = clusters.REPO_ROOT / "hack" / "topologies" / "campus.yaml"


def _kubeconfig_path(kubeconfig_dir: Path, name: str) -> Path:
    return kubeconfig_dir / f"kubeconfig-{name}"


def _manager(args: argparse.Namespace) -> clusters.Manager:
    return clusters.Manager(binaries.ensure(), Path(args.workdir) if args.workdir else None)


def cmd_tools(args: argparse.Namespace) -> int:
    tools = binaries.ensure()
    for name, path in sorted(tools.paths.items()):
        print(f"{name:24} {path}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    topo = topology.load(args.topology)
    kdir = Path(args.kubeconfig_dir).resolve()
    start = time.monotonic()
    manager = _manager(args)
    handles = clusters.start_all(topo.clusters, manager, kdir)
    if args.crds:
        for h in handles:
            names = clusters.apply_crds(h, Path(args.crds))
            print(f"    [{h.name}] CRDs established: {', '.join(names) or '(none found)'}")
    print(f"\n{len(handles)} cluster(s) up in {time.monotonic() - start:.0f}s (state in {manager.workdir}).")
    for h in handles:
        out = h.kubectl(
            "get",
            "nodes",
            "-o",
            "custom-columns=NODE:.metadata.name,POOL:.metadata.labels.estuary\\.dev/node-pool,"
            "MODEL:.metadata.labels.estuary\\.dev/model,CPU:.status.allocatable.cpu,"
            "NVIDIA:.status.allocatable.nvidia\\.com/gpu,"
            "ASCEND:.status.allocatable.huawei\\.com/Ascend910",
        ).stdout
        print(f"\n--- {h.name}: export KUBECONFIG={h.kubeconfig}\n{out.rstrip()}")
    print("\nUse a cluster:")
    for h in handles:
        print(f"  export KUBECONFIG={h.kubeconfig}        # {h.name}")
    print(f"  {sys.executable} {sys.argv[0]} kubectl {handles[0].name} -- get nodes")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    manager = _manager(args)
    kdir = Path(args.kubeconfig_dir).resolve()
    names = (
        [c.name for c in topology.load(args.topology).clusters] if args.topology else manager.list_clusters()
    )
    if not names:
        print("no clusters to delete")
    for name in names:
        t0 = time.monotonic()
        killed = manager.stop(name, _kubeconfig_path(kdir, name))
        extra = f" (killed {len(killed)} leftover processes)" if killed else ""
        print(f"deleted {name} in {time.monotonic() - t0:.1f}s{extra}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    manager = _manager(args)
    kdir = Path(args.kubeconfig_dir).resolve()
    names = manager.list_clusters()
    if not names:
        print(f"no clusters in {manager.workdir}")
        return 0
    for name in names:
        path = _kubeconfig_path(kdir, name)
        if not path.exists():
            manager.write_kubeconfig(name, path)
        h = manager.handle(name, path)
        state = "running" if h.ready() else "not ready"
        nodes = "?"
        if state == "running":
            nodes = str(len(h.kubectl("get", "nodes", "-o", "name").stdout.split()))
        print(
            f"{name:12} {state:10} nodes={nodes:4} processes={len(manager.processes(name)):3} "
            f"KUBECONFIG={path}"
        )
    return 0


def cmd_kubeconfig(args: argparse.Namespace) -> int:
    manager = _manager(args)
    path = _kubeconfig_path(Path(args.kubeconfig_dir).resolve(), args.name)
    if args.name not in manager.list_clusters():
        print(
            f"no cluster {args.name!r} (clusters: {', '.join(manager.list_clusters()) or 'none'})",
            file=sys.stderr,
        )
        return 1
    manager.write_kubeconfig(args.name, path)
    print(path)
    return 0


def cmd_kubectl(args: argparse.Namespace) -> int:
    tools = binaries.find()
    kubectl = tools.get("kubectl")
    if kubectl is None:
        print("kubectl is not built yet: run `python hack/cluster.py tools`", file=sys.stderr)
        return 1
    path = _kubeconfig_path(Path(args.kubeconfig_dir).resolve(), args.name)
    if not path.exists():
        print(f"no kubeconfig {path}: is cluster {args.name!r} up?", file=sys.stderr)
        return 1
    return subprocess.call([str(kubectl), "--kubeconfig", str(path), *args.args])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cluster.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workdir",
        default=os.environ.get("ESTUARY_KWOK_WORKDIR"),
        help="kwokctl state directory (default: ESTUARY_KWOK_WORKDIR or ~/.cache/estuary/kwok)",
    )
    parser.add_argument(
        "--kubeconfig-dir",
        default=str(clusters.default_kubeconfig_dir()),
        help="where kubeconfig-<cluster> files go (default: out/)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    tools = sub.add_parser("tools", help="find or build the binaries and print their paths")
    tools.set_defaults(fn=cmd_tools)
    up = sub.add_parser("up", help="start the clusters of a topology, or re-apply nodes if running")
    up.add_argument("--topology", default=str(DEFAULT_TOPOLOGY))
    up.add_argument("--crds", metavar="DIR", help="also apply the CRDs in DIR (e.g. crds/)")
    up.set_defaults(fn=cmd_up)
    down = sub.add_parser("down", help="delete clusters (those of --topology, else all) and their processes")
    down.add_argument("--topology", help="only the clusters of this topology file")
    down.set_defaults(fn=cmd_down)
    status = sub.add_parser("status", help="list clusters, readiness, node count, kubeconfig")
    status.set_defaults(fn=cmd_status)
    kc = sub.add_parser("kubeconfig", help="write and print the kubeconfig path of a cluster")
    kc.add_argument("name")
    kc.set_defaults(fn=cmd_kubeconfig)
    k = sub.add_parser("kubectl", help="run the built kubectl against a cluster: kubectl NAME -- ARGS")
    k.add_argument("name")
    k.add_argument("args", nargs="*", help="kubectl arguments; put them after -- when they have flags")
    k.set_defaults(fn=cmd_kubectl)
    # Both --kubeconfig-dir and --workdir are accepted after the subcommand too.
    for p in (tools, up, down, status, kc, k):
        p.add_argument("--workdir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--kubeconfig-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    # Everything after "--" goes to kubectl untouched (argparse would try to parse its flags).
    argv = sys.argv[1:] if argv is None else argv
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)
    if args.command == "kubectl":
        args.args = [*args.args, *passthrough]
    elif passthrough:
        parser.error(f"unexpected arguments after --: {' '.join(passthrough)}")
    try:
        code: int = args.fn(args)
    except (topology.TopologyError, clusters.ClusterError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
