"""The pod watch's own path through a fake HTTP answer (the API server side of it is in
tests/e2e/test_pod_watch.py): it resumes from the last version seen, bookmarks included, and
lists again, dropping what went meanwhile, when the API server says the version is gone."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from estuary.kube.watch import RawWatch
from estuary.state.cache import ClusterCache


def pod(name: str, version: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "physics", "resourceVersion": str(version)}}


class Answer:
    """What the client returns with `_preload_content=False`: a listing's body, or a watch's
    stream of JSON lines (split across chunks, as the wire may)."""

    def __init__(self, body: Any) -> None:
        self.data = json.dumps(body).encode() if isinstance(body, dict) else b""
        self._lines = body if isinstance(body, list) else []

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        wire = b"".join(json.dumps(event).encode() + b"\n" for event in self._lines)
        yield from (wire[i : i + 7] for i in range(0, len(wire), 7))

    def release_conn(self) -> None:
        pass


def test_the_watch_resumes_from_the_last_version_and_lists_again_when_it_is_gone() -> None:
    cache, stop = ClusterCache(), threading.Event()
    asked: list[str] = []
    answers = [
        {"metadata": {"resourceVersion": "10"}, "items": [pod("a", 5), pod("b", 6)]},
        [{"type": "MODIFIED", "object": pod("a", 11)}, {"type": "BOOKMARK", "object": pod("", 15)}],
        [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}],
        {"metadata": {"resourceVersion": "20"}, "items": [pod("a", 20)]},  # b went meanwhile
        [{"type": "ADDED", "object": pod("c", 21)}, {"type": "DELETED", "object": pod("a", 22)}],
    ]

    def fetch(**kwargs: Any) -> Answer:
        asked.append(f"watch from {kwargs['resource_version']}" if kwargs.get("watch") else "list")
        if not answers:
            stop.set()
            return Answer([])
        return Answer(answers.pop(0))

    RawWatch(cache, "pods", fetch).run(stop)
    assert asked == ["list", "watch from 10", "watch from 15", "list", "watch from 20", "watch from 22"]
    assert list(cache.items("pods")) == ["physics/c"]


def test_a_failed_watch_is_asked_again_from_the_same_version() -> None:
    cache, stop = ClusterCache(), threading.Event()
    asked: list[str] = []

    def fetch(**kwargs: Any) -> Answer:
        if not kwargs.get("watch"):
            asked.append("list")
            return Answer({"metadata": {"resourceVersion": "7"}, "items": []})
        asked.append(f"watch from {kwargs['resource_version']}")
        if len(asked) == 2:
            raise ConnectionError("API server away")
        stop.set()
        return Answer([{"type": "ADDED", "object": pod("a", 8)}])

    watch = RawWatch(cache, "pods", fetch)
    watch.retry_s = 0.0
    watch.run(stop)
    assert asked == ["list", "watch from 7", "watch from 7"]
    assert watch.listed.is_set()
