"""`estuary fence wait|watch`: build a Fence from the command line's settings and run it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from estuary.fence.procs import POD_INIT, NotInPodNamespace, Stopper
from estuary.fence.sidecar import Fence, Settings
from estuary.fence.source import LeaseRef, LeaseSource, from_kubeconfig, in_cluster


def run(
    command: str,
    lease_object: str,
    namespace: str,
    lease_seconds: float,
    grace_seconds: float,
    period: float,
    state_dir: Path,
    kubeconfig: str | None = None,
    init_name: str = POD_INIT,
    termination_log: Path | None = Path("/dev/termination-log"),
) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    ref = LeaseRef.parse(lease_object, namespace)
    source = LeaseSource(from_kubeconfig(kubeconfig) if kubeconfig else in_cluster(), ref)
    state_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(lease_seconds, state_dir, grace_seconds, period, termination_log)
    fence = Fence(source.token, settings, Stopper(init_name=init_name))
    fence.stop_on_sigterm()
    if command == "wait":
        return fence.wait()
    try:
        fence.stopper.targets()  # fail fast (and visibly) outside a pod's shared process namespace
    except NotInPodNamespace as exc:
        logging.getLogger("estuary.fence").error("fence: %s", exc)
        return 2
    return fence.watch()
