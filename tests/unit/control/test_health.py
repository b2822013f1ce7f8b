"""/healthz and /readyz (estuary/health.py), and the loop that keeps them true.

The timings are the documented ones (docs/operations.md): /healthz fails once the API server has
not answered for 30 s or the loop has not gone round for 120 s. tests/e2e/test_health.py shows
the same with a real operator behind a TCP proxy that stops forwarding.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

from tests.fakeapi import Clock

from estuary import health, metrics
from estuary.health import Health

from .harness import Harness


def _health(clock: Clock) -> Health:
    return Health(clock=clock.mono, loop_stale_s=120.0, api_stale_s=30.0)


def test_healthz_fails_thirty_seconds_after_the_api_server_last_answered() -> None:
    clock = Clock()
    h = _health(clock)
    h.beat()
    h.api_answered()
    clock.advance(30)
    h.beat()
    assert h.live() == (True, "ok")
    clock.advance(1)
    h.beat()
    live, why = h.live()
    assert not live and why == "the API server has not answered for 31s"


def test_healthz_fails_when_the_loop_stops_going_round() -> None:
    clock = Clock()
    h = _health(clock)
    h.beat()
    clock.advance(121)
    h.api_answered()
    assert h.live() == (False, "the controller loop has not gone round for 121s")


def test_readyz_waits_for_the_caches_and_says_leader_or_standby() -> None:
    clock = Clock()
    h = _health(clock)
    assert h.ready() == (False, "caches not synced yet")
    h.synced = True
    h.beat()
    h.leader = False
    assert h.ready() == (True, "ok: standby")
    h.leader = True
    assert h.ready() == (True, "ok: leader")


def test_probes_are_served_beside_the_metrics() -> None:
    clock = Clock()
    h = _health(clock)
    server, _ = health.serve(0, "127.0.0.1", health=h)
    base = f"http://127.0.0.1:{server.server_port}"

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(base + path, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    try:
        assert get("/readyz") == (503, "caches not synced yet\n")
        h.synced = True
        h.beat()
        h.api_answered()
        assert get("/healthz") == (200, "ok\n") and get("/readyz") == (200, "ok\n")
        clock.advance(45)
        h.beat()
        assert get("/healthz") == (503, "the API server has not answered for 45s\n")
        assert get("/metrics")[1].count("estuary_leader") >= 1
    finally:
        server.shutdown()
        server.server_close()


def test_the_loop_beats_and_asks_the_api_server_when_nothing_else_did() -> None:
    h = Harness()
    clock = Clock()
    probe = _health(clock)
    stop = threading.Event()
    h.server.cache.changed.set()  # go round at once

    def leader() -> bool:
        stop.set()  # one round is enough
        return True

    h.loop.run(stop, leader, probe)
    assert ("ping", "version") in h.server.calls
    assert probe.live() == (True, "ok") and metrics.REGISTRY.get_sample_value("estuary_leader") == 1
