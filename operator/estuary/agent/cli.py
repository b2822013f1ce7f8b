"""`estuary agent`: the node agent's command line and poll loop.

One loop, one thread: poll the backend, update the metrics collector, patch the node, sleep. The
metrics server runs in its own daemon thread. SIGTERM and SIGINT end the loop after the current
poll (kubelet sends SIGTERM when the DaemonSet pod stops); the annotations are left in place and
their heartbeat goes stale, which the operator reads as "no agent" (see annotations.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

from estuary.agent.backend import Backend
from estuary.agent.health import CRITICAL_XIDS

log = logging.getLogger("estuary.agent")

DEFAULT_METRICS_PORT = 9402


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AgentOptions:
    node: str
    backend: str
    interval_s: float
    metrics_port: int | None
    metrics_address: str
    dry_run: bool
    once: bool
    xid_window_s: float
    critical_xids: tuple[int, ...]
    log_level: str = "INFO"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="estuary agent",
        description="Report this node's accelerator health to Estuary (node annotations + Prometheus).",
    )
    parser.add_argument(
        "--node",
        default=os.environ.get("NODE_NAME", ""),
        help="name of this node (default: $NODE_NAME, set from the downward API)",
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "nvidia", "ascend"),
        default="auto",
        help="vendor backend; auto tries NVML, then npu-smi (default: auto)",
    )
    parser.add_argument(
        "--interval", type=float, default=30.0, metavar="SECONDS", help="seconds between polls (default: 30)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        help=f"port for /metrics; negative disables it (default: {DEFAULT_METRICS_PORT})",
    )
    parser.add_argument(
        "--metrics-address", default="0.0.0.0", help="address for /metrics (default: 0.0.0.0)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the annotations as JSON lines to stdout instead of patching the node",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="poll and publish once, then exit (1 if the backend or the patch failed)",
    )
    parser.add_argument(
        "--xid-window",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="how long a critical XID keeps a GPU unhealthy (default: 3600)",
    )
    parser.add_argument(
        "--critical-xids",
        default=",".join(str(x) for x in CRITICAL_XIDS),
        help="comma-separated XIDs that mark a GPU unhealthy (default: %(default)s)",
    )
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def parse_args(argv: Sequence[str] | None = None) -> AgentOptions:
    parser = _parser()
    ns = parser.parse_args(list(argv) if argv is not None else None)
    if not ns.node:
        if not ns.dry_run:
            parser.error("--node or $NODE_NAME is required (set NODE_NAME from spec.nodeName)")
        ns.node = os.uname().nodename
    if ns.interval <= 0:
        parser.error("--interval must be positive")
    try:
        xids = tuple(int(x) for x in ns.critical_xids.split(",") if x.strip())
    except ValueError:
        parser.error("--critical-xids must be comma-separated integers")
    return AgentOptions(
        node=ns.node,
        backend=ns.backend,
        interval_s=ns.interval,
        metrics_port=ns.metrics_port if ns.metrics_port >= 0 else None,
        metrics_address=ns.metrics_address,
        dry_run=ns.dry_run,
        once=ns.once,
        xid_window_s=ns.xid_window,
        critical_xids=xids,
        log_level=ns.log_level,
    )


def make_backend(options: AgentOptions) -> Backend | None:
    """The backend asked for; with `auto`, NVIDIA when NVML initialises, else Ascend when npu-smi
    exists, else None."""
    import shutil

    import pynvml

    from estuary.agent.ascend import AscendBackend
    from estuary.agent.nvidia import NvidiaBackend
    from estuary.agent.nvml import PynvmlNvml

    critical = {x: CRITICAL_XIDS.get(x, "critical XID (configured)") for x in options.critical_xids}

    def nvidia() -> NvidiaBackend:
        return NvidiaBackend(xid_window_s=options.xid_window_s, critical_xids=critical)

    if options.backend == "nvidia":
        return nvidia()
    if options.backend == "ascend":
        return AscendBackend()
    probe = PynvmlNvml()
    try:
        probe.init()
        probe.shutdown()
        return nvidia()
    except pynvml.NVMLError as e:
        log.info("NVML not usable (%s); trying npu-smi", e)
    if shutil.which("npu-smi"):
        return AscendBackend()
    return None


class StopFlag:
    """Set by SIGTERM/SIGINT; the loop sleeps on it so a signal ends the sleep at once."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("received signal %d, stopping after this poll", signum)
            self.event.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def run_loop(
    poll: Callable[[datetime], bool],
    *,
    stop: threading.Event,
    interval_s: float,
    once: bool = False,
    clock: Callable[[], datetime] = _utcnow,
) -> int:
    """Call `poll(now)` every `interval_s` until `stop` is set, or just once. `poll` collects and
    publishes one report and returns whether it was clean (published, no backend error). Returns
    the exit code: 0, or 1 when a single (`once`) poll was not clean."""
    while True:
        ok = poll(clock())
        if once:
            return 0 if ok else 1
        if stop.wait(interval_s):
            return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `estuary agent`."""
    options = parse_args(argv)
    logging.basicConfig(level=options.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from estuary.agent.exporter import build_registry, serve
    from estuary.agent.publish import KubeNodePatcher, NodePatcher, PrintPatcher, Publisher

    backend = make_backend(options)
    if backend is None:
        log.error("no accelerator tooling found: NVML does not initialise and npu-smi is not on PATH")
        return 2
    patcher: NodePatcher = PrintPatcher() if options.dry_run else KubeNodePatcher()
    publisher = Publisher(options.node, patcher)
    registry, collector = build_registry(options.node, backend.vendor)
    server = None
    if options.metrics_port is not None:
        server, _ = serve(registry, options.metrics_port, options.metrics_address)
        log.info("serving metrics on %s:%d/metrics", options.metrics_address, server.server_port)
    stop = StopFlag()
    stop.install()
    log.info("agent for node %s, backend %s, every %gs", options.node, backend.vendor, options.interval_s)

    def poll(now: datetime) -> bool:
        report = backend.collect()
        for error in report.errors:
            log.warning("%s", error)
        collector.update(report, now)
        published = publisher.publish(report, now)
        if not published:
            collector.publish_failed()
        return published and not report.errors

    try:
        return run_loop(poll, stop=stop.event, interval_s=options.interval_s, once=options.once)
    finally:
        backend.close()
        if server is not None:
            server.shutdown()
            server.server_close()
