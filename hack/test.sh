#!/usr/bin/env bash
# Run every check: lint, types, CRDs in sync, unit tests, and end-to-end tests against a local
# control plane that the tests start themselves (binaries are built once and cached).
# Usage: hack/test.sh [pytest args]     e.g. hack/test.sh -m "not e2e"   for the fast tier only
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash hack/venv.sh || exit 1
PY=.venv/bin/python
failed=0
step() { echo; echo "==> $*"; }
step "control-plane binaries (cached in ~/.cache/estuary; built from Go modules when missing)"
$PY hack/cluster.py tools >/dev/null || failed=1
step "ruff";  .venv/bin/ruff check . || failed=1
step "ruff format"; .venv/bin/ruff format --check . || failed=1
step "mypy";  .venv/bin/mypy || failed=1
step "import layers (lint-imports: contracts in pyproject.toml)"; .venv/bin/lint-imports || failed=1
step "module and function sizes"; $PY hack/sizes.py || failed=1
step "CRDs match the API models"; $PY -m estuary.cli crds --check || failed=1
step "pytest"
$PY -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest selected no tests (exit 5): not a failure"
  rc=0
fi
[ "$rc" -ne 0 ] && failed=1
if [ "$failed" -ne 0 ]; then
  echo; echo "FAILED: see the steps above"; exit 1
fi
echo; echo "all checks passed"
