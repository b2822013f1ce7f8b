"""A hung API connection makes /healthz fail within the documented time (docs/operations.md: at
most 30 s after the API server last answered), and /healthz recovers once the path does.

The operator talks to the real API server through a TCP proxy on 127.0.0.1 that, once stalled,
keeps every connection open and forwards nothing (a half-open path, not a refused one). It runs
as a standby (another identity holds the leader Lease), so it never acts on the cluster the other
tests use.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from devcluster.clusters import Cluster
from tests.e2e.operator_process import OperatorProcess, free_port, wait_for

DOCUMENTED_S = 30.0  # health.Health.api_stale_s
SLACK_S = 10.0  # polling and scheduling on a loaded 2-core machine


class StallingProxy:
    """Forwards TCP to `target` until `stall()`; then holds every byte (until `resume()`)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self.closed = True
        self.flowing.set()
        self.server.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                downstream, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for src, dst in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self.flowing.wait()  # stalled: the bytes go nowhere, the connection stays open
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _through(kubeconfig: Path, proxy: StallingProxy, out: Path) -> Path:
    config = yaml.safe_load(kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    out.write_text(yaml.safe_dump(config))
    return out


def _target(kubeconfig: Path) -> tuple[str, int]:
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    url = urllib.parse.urlparse(server)
    return str(url.hostname), int(url.port or 443)


def _probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as err:
        return 0, str(err)


@pytest.fixture
def standby(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> Iterator[tuple[OperatorProcess, StallingProxy]]:
    """The operator through the proxy, as a standby: the Lease is held by someone else."""
    coordination = client.CoordinationV1Api(cluster.api_client())
    now = time.strftime("%Y-%m-%dT%H:%M:%S.123456Z", time.gmtime())
    coordination.create_namespaced_lease(
        namespace,
        {
            "metadata": {"name": "estuary-operator"},
            "spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 3600, "renewTime": now},
        },
    )
    proxy = StallingProxy(_target(cluster.kubeconfig))
    operator = OperatorProcess(
        _through(cluster.kubeconfig, proxy, tmp_path / "kubeconfig"),
        tmp_path / "operator.log",
        ESTUARY_METRICS_PORT=str(free_port()),
        ESTUARY_LEADER_ELECTION="true",
        POD_NAMESPACE=namespace,
        POD_NAME="health-test",
    )
    operator.start()
    yield operator, proxy
    proxy.resume()
    operator.stop()
    proxy.close()


def test_a_hung_api_connection_fails_healthz_within_the_documented_time(
    standby: tuple[OperatorProcess, StallingProxy],
) -> None:
    operator, proxy = standby
    port = int(operator.extra_env["ESTUARY_METRICS_PORT"])
    try:
        wait_for(lambda: _probe(port, "/readyz") == (200, "ok: standby\n"), timeout=90, what="/readyz")
    except AssertionError:
        pytest.fail(f"the operator did not get ready; its log:\n{operator.log_tail()}", pytrace=False)
    assert _probe(port, "/healthz") == (200, "ok\n")
    proxy.stall()
    stalled = time.monotonic()
    wait_for(
        lambda: _probe(port, "/healthz")[0] == 503, timeout=DOCUMENTED_S + SLACK_S, interval=1, what="503"
    )
    elapsed = time.monotonic() - stalled
    code, body = _probe(port, "/healthz")
    assert code == 503 and body.startswith("the API server has not answered for "), body
    assert _probe(port, "/readyz")[0] == 503
    print(f"/healthz failed {elapsed:.1f}s after the connection hung (documented: {DOCUMENTED_S:.0f}s)")
    proxy.resume()
    wait_for(lambda: _probe(port, "/healthz") == (200, "ok\n"), timeout=60, interval=1, what="/healthz again")
    assert "Traceback" not in operator.log_tail(10**6)
