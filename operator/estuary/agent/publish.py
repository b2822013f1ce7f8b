"""Writing the health annotations onto the agent's own Node.

`NodePatcher` is the only seam to the API server in the agent: `KubeNodePatcher` sends a JSON merge
patch of `metadata.annotations` (so it touches nothing but our four keys and needs only `patch
nodes`), `PrintPatcher` prints the same annotations instead (`--dry-run`), and tests pass a fake.
A failed patch is logged and retried on the next poll; it never stops the agent.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol, TextIO

from estuary.agent.annotations import node_annotations
from estuary.agent.report import NodeReport

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"


class NodePatcher(Protocol):
    def patch_node_annotations(self, node: str, annotations: Mapping[str, str]) -> None:
        """Set these annotations on the node; raise on failure."""
        ...


class NodesApi(Protocol):
    """The part of kubernetes.client.CoreV1Api the agent uses."""

    def patch_node(
        self,
        name: str,
        body: dict[str, Any],
        *,
        _content_type: str | None = None,
        _request_timeout: float | None = None,
    ) -> object: ...


def load_core_api() -> NodesApi:
    """A CoreV1Api from the in-cluster service account, or from ~/.kube/config outside a cluster."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    api: NodesApi = client.CoreV1Api()
    return api


class KubeNodePatcher:
    """Patches the Node through the Kubernetes API (in-cluster credentials by default)."""

    def __init__(self, api: NodesApi | None = None, *, timeout_s: float = 10.0) -> None:
        self._api = api if api is not None else load_core_api()
        self._timeout_s = timeout_s

    def patch_node_annotations(self, node: str, annotations: Mapping[str, str]) -> None:
        body = {"metadata": {"annotations": dict(annotations)}}
        self._api.patch_node(node, body, _content_type=MERGE_PATCH, _request_timeout=self._timeout_s)


class PrintPatcher:
    """`--dry-run`: one JSON line per poll, `{"node": ..., "annotations": {...}}`, to a stream."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def patch_node_annotations(self, node: str, annotations: Mapping[str, str]) -> None:
        stream = self._stream or sys.stdout
        stream.write(json.dumps({"node": node, "annotations": dict(annotations)}, sort_keys=True) + "\n")
        stream.flush()


class Publisher:
    """Turns each report into annotations and hands them to a patcher."""

    def __init__(self, node: str, patcher: NodePatcher) -> None:
        self.node = node
        self._patcher = patcher
        self.failures = 0  # consecutive

    def publish(self, report: NodeReport, now: datetime) -> bool:
        """True when the node was patched. Failures are logged, counted and left for the next poll."""
        annotations = node_annotations(report, now)
        try:
            self._patcher.patch_node_annotations(self.node, annotations)
        except Exception as e:  # any API or transport error: keep the agent polling
            self.failures += 1
            log.warning("patching node %s failed (%d in a row): %s", self.node, self.failures, e)
            return False
        self.failures = 0
        return True
