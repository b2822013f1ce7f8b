"""`estuary portal`: serve the web portal with uvicorn.

In a pod (the chart's Deployment) it finds the API server from the in-cluster environment and has no
token of its own; from a workstation, `--kubeconfig` names the cluster (only its server address and
CA are used, never its credentials).
"""

from __future__ import annotations

import argparse
import logging
import os

log = logging.getLogger("estuary.portal")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="estuary portal", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (the chart sets 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--kubeconfig", help="use this kubeconfig's cluster (server and CA only)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument(
        "--operator-namespace",
        default=os.environ.get("POD_NAMESPACE", "estuary-system"),
        help="namespace of Estuary's FederationLinks (default: $POD_NAMESPACE or estuary-system)",
    )
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="a namespace to offer every user (repeatable); RBAC still decides what each user sees",
    )
    parser.add_argument(
        "--insecure-cookies",
        action="store_true",
        help="send cookies over plain HTTP (local development only; behind TLS leave this off)",
    )
    parser.add_argument("--session-hours", type=float, default=8.0, help="how long a sign-in lasts")
    return parser


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from estuary.portal.app import create_app
    from estuary.portal.settings import (
        SECRET_ENV,
        PortalSettings,
        api_from_kubeconfig,
        api_in_cluster,
        secret_from_env,
    )

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ and not args.kubeconfig
    api = api_in_cluster() if in_cluster else api_from_kubeconfig(args.kubeconfig, args.context)
    secret, configured = secret_from_env()
    if not configured:
        log.warning(
            "%s is not set: using a random session secret, so sign-ins end when the portal restarts "
            "and differ between replicas",
            SECRET_ENV,
        )
    settings = PortalSettings(
        api=api,
        secret=secret,
        operator_namespace=args.operator_namespace,
        namespaces=tuple(args.namespace),
        secure_cookies=not args.insecure_cookies,
        session_hours=args.session_hours,
    )
    log.info("portal for API server %s listening on %s:%d", api.host, args.host, args.port)
    # Access logs carry method, path and status only: tokens never travel in a URL.
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        proxy_headers=True,
        server_header=False,
        log_level="info",
    )
    return 0
