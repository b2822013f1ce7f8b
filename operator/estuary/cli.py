"""The `estuary` command: one entry point, one subcommand per job."""

from __future__ import annotations

import sys


def _operator(argv: list[str]) -> int:
    import argparse
    import logging

    import kopf

    parser = argparse.ArgumentParser(prog="estuary operator", description="Run the operator.")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    kopf.configure(verbose=args.verbose)
    if not args.verbose:  # one line per watch event is noise at scale; Estuary logs its decisions
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    import estuary.handlers  # noqa: F401  (registers the handlers)

    kopf.run(standalone=True, clusterwide=True)
    return 0


def _commands() -> dict[str, tuple[str, str]]:
    return {
        "operator": ("estuary.cli", "_operator"),
        "crds": ("estuary.api.crdgen", "main"),
        "explain": ("estuary.explain", "main"),
        "sim": ("estuary.sim.cli", "main"),
        "agent": ("estuary.agent.cli", "main"),
        "portal": ("estuary.portal.cli", "main"),
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print(
            "usage: estuary {" + ",".join(commands) + "} [options]\n\n"
            "  operator  run the operator against the current kubeconfig\n"
            "  crds      regenerate crds/*.yaml from the API models\n"
            "  explain   say why a job waits or where it runs, per accelerator type\n"
            "  sim       replay a job trace on a simulated cluster with the real scheduling core\n"
            "  agent     node agent: accelerator health and metrics\n"
            "  portal    the web portal for researchers and platform teams (needs estuary[portal])"
        )
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module_name, function = commands[argv[0]]
    import importlib

    module = importlib.import_module(module_name)
    return int(getattr(module, function)(argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
