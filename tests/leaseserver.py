"""A stand-in API server for the fence's one request: GET a ConfigMap (or an AIJob) whose
`estuary.dev/lease-renew` annotation the test changes, over plain HTTP on 127.0.0.1. The test
renews, stops renewing, deletes the object or breaks the server; it also writes a kubeconfig
for it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class LeaseServer:
    def __init__(self, namespace: str = "tenant-a", name: str = "lease") -> None:
        self.namespace, self.name = namespace, name
        self.token: str | None = "t0"  # None: the object is deleted (404)
        self.broken = False  # every request answers 500
        self.reads = 0
        self._renewals = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.reads += 1
                wanted = f"/api/v1/namespaces/{server.namespace}/configmaps/{server.name}"
                if server.broken:
                    self._answer(500, {"kind": "Status", "code": 500, "message": "etcd is sad"})
                elif self.path.split("?")[0] != wanted or server.token is None:
                    self._answer(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                else:
                    meta = {
                        "name": server.name,
                        "namespace": server.namespace,
                        "annotations": {"estuary.dev/lease-renew": server.token},
                    }
                    self._answer(200, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta})

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def renew(self) -> None:
        self._renewals += 1
        self.token = f"t{self._renewals}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def kubeconfig(self, path: Path) -> Path:
        conf = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "lease",
            "clusters": [{"name": "lease", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "contexts": [{"name": "lease", "context": {"cluster": "lease", "user": "pod"}}],
            "users": [{"name": "pod", "user": {"token": "pod-token"}}],
        }
        path.write_text(json.dumps(conf))
        return path
