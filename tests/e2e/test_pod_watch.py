"""The operator's own pod watch (kube/watch.py) against the real API server: it lists (dropping
what is gone) and follows every change. Resuming and listing again after 410 Gone, which a fresh
API server does not send on demand, are in tests/unit/control/test_pod_watch.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from kubernetes import client

from devcluster.clusters import Cluster
from estuary.kube import listing
from estuary.kube.watch import RawWatch
from estuary.state.cache import ClusterCache
from tests.e2e.operator_process import wait_for


def _pod(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "watch-test"}},
        "spec": {"containers": [{"name": "w", "image": "none"}], "nodeName": "no-such-node"},
    }


@pytest.fixture
def watched(cluster: Cluster) -> Iterator[tuple[ClusterCache, RawWatch]]:
    cache, stop = ClusterCache(), threading.Event()
    ghost = {"metadata": {"name": "ghost", "namespace": "nowhere", "resourceVersion": "1"}}
    cache.apply("pods", "ADDED", ghost)  # deleted while nothing watched: the listing drops it
    pod_watch = RawWatch(cache, "pods", listing.fetchers(cluster.api_client())["pods"])
    thread = threading.Thread(target=pod_watch.run, args=(stop,), daemon=True)
    thread.start()
    yield cache, pod_watch
    stop.set()


def test_the_pod_watch_lists_then_follows_creation_change_and_deletion(
    cluster: Cluster, namespace: str, watched: tuple[ClusterCache, RawWatch]
) -> None:
    cache, pod_watch = watched
    assert pod_watch.listed.wait(30), "the pod watch never listed"
    assert cache.get("pods", "nowhere/ghost") is None
    core = client.CoreV1Api(cluster.api_client())
    key = f"{namespace}/w-0"
    core.create_namespaced_pod(namespace, _pod("w-0"))
    wait_for(lambda: cache.get("pods", key) is not None, timeout=30, what="the created pod in the cache")
    core.patch_namespaced_pod("w-0", namespace, {"metadata": {"labels": {"seen": "yes"}}})
    wait_for(
        lambda: (cache.get("pods", key) or {}).get("metadata", {}).get("labels", {}).get("seen") == "yes",
        timeout=30,
        what="the pod's change in the cache",
    )
    core.delete_namespaced_pod("w-0", namespace, grace_period_seconds=0)
    wait_for(lambda: cache.get("pods", key) is None, timeout=30, what="the deleted pod gone from the cache")
