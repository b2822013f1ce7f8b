"""The cache after missed watch events: a fresh listing reconciles it (state/cache.py `reconcile`,
handlers/resync.py), and the loop acts only once that has happened.

The e2e side (pods deleted while the operator is down, then released within 30 s) is
tests/e2e/test_safety.py."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from tests.unit.control.harness import NS, Harness

from estuary.handlers.resync import Resync
from estuary.health import Health
from estuary.state.cache import ClusterCache


def pod(name: str, version: int, job_uid: str = "u1") -> dict[str, Any]:
    ref = {"apiVersion": "estuary.dev/v1alpha1", "kind": "AIJob", "name": "train", "uid": job_uid}
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "resourceVersion": str(version),
            "ownerReferences": [{**ref, "controller": True}],
        }
    }


def test_the_watch_event_of_a_version_already_held_keeps_the_object_held() -> None:
    """A write's answer goes into the cache, then the watch brings the same version again: the
    object held stays (the parse memo of state/snapshot.py keeps its parsed job); a newer one
    replaces it."""
    cache = ClusterCache()
    cache.apply("pods", "MODIFIED", pod("train-worker-0", 7))
    held = cache.get("pods", f"{NS}/train-worker-0")
    cache.apply("pods", "MODIFIED", pod("train-worker-0", 7))
    assert cache.get("pods", f"{NS}/train-worker-0") is held
    cache.apply("pods", "MODIFIED", pod("train-worker-0", 8))
    assert cache.get("pods", f"{NS}/train-worker-0") is not held


def test_a_pod_the_listing_lacks_is_dropped_unless_a_watch_saw_it_after_the_listing() -> None:
    cache = ClusterCache()
    cache.replace_all("pods", [pod("train-worker-0", 5), pod("train-worker-1", 6)])
    cache.apply("pods", "ADDED", pod("late-0", 12))  # created after the list below was taken
    dropped = cache.reconcile("pods", [pod("train-worker-1", 6)], "10")
    assert dropped == ["physics/train-worker-0"]
    assert sorted(cache.items("pods")) == ["physics/late-0", "physics/train-worker-1"]
    assert [p["metadata"]["name"] for p in cache.pods_of(f"{NS}/train", "u1")] == ["late-0", "train-worker-1"]


def test_a_listing_older_than_a_deletion_the_watch_reported_does_not_bring_the_pod_back() -> None:
    cache = ClusterCache()
    cache.apply("pods", "ADDED", pod("train-worker-0", 5))
    cache.apply("pods", "DELETED", pod("train-worker-0", 9))
    assert cache.reconcile("pods", [pod("train-worker-0", 5)], "8") == []
    assert cache.items("pods") == {}
    # a pod created again under the name later than the deletion is taken
    cache.reconcile("pods", [pod("train-worker-0", 11)], "11")
    assert list(cache.items("pods")) == ["physics/train-worker-0"]


def test_a_listing_without_a_comparable_version_wins() -> None:
    cache = ClusterCache()
    cache.apply("pods", "ADDED", pod("a", 50))
    assert cache.reconcile("pods", [], None) == ["physics/a"]


def test_resync_waits_for_the_watches_then_reconciles_and_marks_the_cache_synced() -> None:
    cache, stop = ClusterCache(), threading.Event()
    kopf_listed, pods_listed = threading.Event(), threading.Event()
    health = Health()
    calls: list[str] = []

    def relist() -> dict[str, list[str]]:
        calls.append("list")
        if len(calls) == 1:
            raise ConnectionError("API server away")
        if len(calls) == 3:
            stop.set()
        return {"pods": ["physics/gone-0"] if len(calls) == 2 else []}

    resync = Resync(cache, relist, (kopf_listed, pods_listed), period_s=0.01, health=health)
    thread = threading.Thread(target=resync.run, args=(stop,))
    thread.start()
    kopf_listed.set()  # Kopf's watches have listed, the pod watch not yet
    assert not stop.wait(0.3) and calls == [] and not cache.synced.is_set()
    pods_listed.set()
    thread.join(timeout=30)
    assert calls == ["list", "list", "list"]  # a failed listing is retried; then periodic
    assert cache.synced.is_set() and health.synced


def test_the_loop_does_not_act_before_the_cache_is_synced() -> None:
    h = Harness()
    h.submit("train", workers=1)
    answers = iter([False, True])
    stop = threading.Event()

    def synced() -> bool:
        answer = next(answers)
        if answer:
            stop.set()  # this round acts, then the loop ends
        else:
            assert h.status("train") == {}
            h.server.cache.changed.set()  # go round again at once
        return answer

    h.server.cache.changed.set()
    h.loop.run(stop, lambda: True, Health(), synced)
    h.controller.background.wait()  # the admission is written in the background
    assert h.phase("train")[0] == "Admitted"


def test_a_listing_read_page_by_page_reconciles_as_one_listing() -> None:
    """kube/listing.py `pages`: the pages of one listing (continue tokens) are one listing at the
    first page's resourceVersion, and each page is fetched only once the one before is read."""
    from estuary.kube.listing import pages

    answers = {
        None: {
            "items": [pod("w-0", 5), pod("w-1", 6)],
            "metadata": {"resourceVersion": "20", "continue": "a"},
        },
        "a": {"items": [pod("w-2", 7)], "metadata": {"resourceVersion": "21", "continue": "b"}},
        "b": {"items": [pod("w-3", 8)], "metadata": {"resourceVersion": "22"}},
    }
    asked: list[str | None] = []

    def fetch(token: str | None) -> dict[str, Any]:
        asked.append(token)
        return answers[token]

    cache = ClusterCache()
    cache.apply("pods", "ADDED", pod("gone", 4))  # deleted while no watch saw it
    items, version = pages(fetch)
    assert version == "20" and asked == [None]  # the first page only, so far
    assert cache.reconcile("pods", items, version) == [f"{NS}/gone"]
    assert asked == [None, "a", "b"]
    assert sorted(cache.items("pods")) == [f"{NS}/w-{i}" for i in range(4)]


def test_in_a_flood_of_events_ticks_are_spaced() -> None:
    """handlers/loop.py: with `tick_spacing_s`, events arriving without pause make one tick per
    spacing, each deciding on all of them, not one tick per event."""
    h = Harness(tick_spacing_s=0.2)
    ticks: list[float] = []
    real_tick = h.loop.tick

    def tick() -> None:
        ticks.append(time.monotonic())
        real_tick()

    h.loop.tick = tick  # type: ignore[method-assign]
    stop = threading.Event()
    loop = threading.Thread(target=h.loop.run, args=(stop, lambda: True, Health()))
    loop.start()
    began = time.monotonic()
    while time.monotonic() - began < 0.6:  # a change every millisecond
        h.server.cache.changed.set()
        time.sleep(0.001)
    stop.set()
    h.server.cache.changed.set()
    loop.join(5)
    elapsed = time.monotonic() - began
    assert 1 <= len(ticks) <= 2 + elapsed / 0.2, ticks
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(ticks))
