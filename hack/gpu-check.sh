#!/usr/bin/env bash
# Run the node agent's real NVML backend once on a machine with an NVIDIA GPU and print what it
# sees: the NodeReport as JSON, then the node annotations the agent would write. Exits non-zero
# when NVML cannot be used, reports no GPU, or reports a backend error. Installs nothing: it needs
# a Python >= 3.11 with nvidia-ml-py (pynvml) importable, and uses the sources through PYTHONPATH.
# Then, if pytest is importable, it runs the @pytest.mark.gpu tests too. Takes seconds; capped at 2 min.
#
#   hack/gpu-check.sh            # PYTHON=/path/to/python hack/gpu-check.sh to choose the interpreter
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
if ! "$PY" -c 'import sys, pynvml; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "gpu-check: $PY needs Python >= 3.11 and nvidia-ml-py (pynvml); set PYTHON=..." >&2
  exit 2
fi
command -v nvidia-smi >/dev/null && nvidia-smi -L || true

export PYTHONPATH="$PWD/operator${PYTHONPATH:+:$PYTHONPATH}"
timeout 90 "$PY" -c '
import json, sys
from datetime import UTC, datetime

from estuary.agent.annotations import node_annotations
from estuary.api.nodehealth import unhealthy_count
from estuary.agent.nvidia import NvidiaBackend
from estuary.agent.report import report_to_json

backend = NvidiaBackend(event_timeout_ms=200)
try:
    backend.collect()           # opens the NVML session and registers for XID events
    report = backend.collect()  # a second poll drains the event set
finally:
    backend.close()
now = datetime.now(UTC)
annotations = node_annotations(report, now)
print(json.dumps({"report": report_to_json(report), "annotations": annotations}, indent=2))
if report.errors or not report.devices:
    print("gpu-check: FAILED: " + ("; ".join(report.errors) or "no GPU reported"), file=sys.stderr)
    sys.exit(1)
assert unhealthy_count(annotations, now=now) == report.unhealthy_count
print(f"gpu-check: OK: {report.healthy_count} healthy, {report.unhealthy_count} unhealthy", file=sys.stderr)
'

if "$PY" -c 'import pytest, prometheus_client' 2>/dev/null; then
  timeout 60 "$PY" -m pytest -q -p no:cacheprovider -m gpu -rs tests/unit/agent
fi
