"""Whether the operator process is alive and ready: what `/healthz` and `/readyz` answer.

Why it exists: a probe of `/metrics` answers while the controller thread is stuck, so Kubernetes
never restarts a frozen operator. These two endpoints answer from what the process itself
observes:

- `/healthz` (liveness) fails when the controller loop has not gone round for `loop_stale_s`
  (default 120 s), or when the API server has not answered any request for `api_stale_s`
  (default 30 s). The loop asks the API server for its version whenever nothing else reached it
  for `ping_after_s` (10 s), and every request has a timeout (kube/client.py), so a hung
  connection (a proxy that stops forwarding, a half-open socket) fails `/healthz` at most
  `api_stale_s` after the last answer, and the kubelet restarts the process.
- `/readyz` (readiness) passes once the caches are primed from a full listing and the loop runs,
  on the leader and on a standby alike (a standby is ready to take over); the body says which.

Served with the metrics on one port (`serve`); docs/operations.md has the timings.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from estuary import metrics


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass
class Health:
    clock: Callable[[], float] = time.monotonic
    loop_stale_s: float = field(default_factory=lambda: _seconds("ESTUARY_HEALTH_LOOP_SECONDS", 120.0))
    api_stale_s: float = field(default_factory=lambda: _seconds("ESTUARY_HEALTH_API_SECONDS", 30.0))
    ping_after_s: float = 10.0
    synced: bool = False
    leader: bool | None = None  # None: no leader election (a single replica acts)
    _loop_beat: float | None = None
    _api_answer: float | None = None

    def beat(self) -> None:
        """The controller loop went round once."""
        self._loop_beat = self.clock()

    def api_answered(self) -> None:
        """The API server answered a request (any answer, an error status too)."""
        self._api_answer = self.clock()

    def ping_due(self) -> bool:
        return self._api_answer is None or self.clock() - self._api_answer >= self.ping_after_s

    def live(self) -> tuple[bool, str]:
        now = self.clock()
        if self._loop_beat is not None and now - self._loop_beat > self.loop_stale_s:
            return False, f"the controller loop has not gone round for {now - self._loop_beat:.0f}s"
        if self._api_answer is not None and now - self._api_answer > self.api_stale_s:
            return False, f"the API server has not answered for {now - self._api_answer:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        if not self.synced or self._loop_beat is None:
            return False, "caches not synced yet"
        live, why = self.live()
        if not live:
            return False, why
        return True, {None: "ok", True: "ok: leader", False: "ok: standby"}[self.leader]


HEALTH = Health()


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scrape never holds up a probe


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: no access log
        pass


def app(health: Health, registry: CollectorRegistry) -> Callable[..., Iterable[bytes]]:
    """WSGI: /healthz and /readyz from `health`, anything else the Prometheus exposition."""
    exposition = make_wsgi_app(registry)

    def route(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in ("/healthz", "/readyz"):
            metrics_page: Iterable[bytes] = exposition(environ, start_response)
            return metrics_page
        ok, why = health.live() if path == "/healthz" else health.ready()
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
        return [f"{why}\n".encode()]

    return route


def serve(
    port: int,
    addr: str = "0.0.0.0",
    health: Health | None = None,
    registry: CollectorRegistry | None = None,
) -> tuple[WSGIServer, threading.Thread]:
    """Serve /metrics, /healthz and /readyz on http://addr:port in a daemon thread (port 0 picks
    a free port: `server.server_port`); stop with `server.shutdown()`."""
    server = make_server(
        addr,
        port,
        app(health or HEALTH, registry or metrics.REGISTRY),
        server_class=_Server,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, name="estuary-http", daemon=True)
    thread.start()
    return server, thread
