#!/usr/bin/env bash
# Run every check: lint, types, CRDs in sync, unit tests, and end-to-end tests against a local
# control plane that the tests start themselves (binaries are built once and cached), and the
# framework tier (tests/framework: torch, deepspeed, mindspore, jax run as local pods; their
# venv is built once by hack/frameworks.sh).
# Usage: hack/test.sh [pytest args]   e.g. hack/test.sh -m "not e2e and not framework"   the fast tier
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
step "framework venv (torch, deepspeed, mindspore, jax from PyPI; cached in ~/.cache/estuary)"
# Only when the selection holds framework tests (tests/framework): the unit tier downloads nothing.
# (Collected into a variable first: with pipefail, `grep -q` closing the pipe early would fail it.)
collected="$($PY -m pytest --collect-only -q "$@" 2>/dev/null || true)"
if grep -q "^tests/framework/" <<<"$collected"; then
  # The tier runs pods in network namespaces (ip, unshare) and DeepSpeed compiles one CPU op (g++).
  missing=""
  command -v ip >/dev/null || missing="$missing iproute2"
  command -v g++ >/dev/null || missing="$missing g++"
  if [ -n "$missing" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq $missing >/dev/null || failed=1
  fi
  ESTUARY_FRAMEWORK_VENV="$(bash hack/frameworks.sh)" || failed=1
  export ESTUARY_FRAMEWORK_VENV
  echo "    $ESTUARY_FRAMEWORK_VENV"
else
  echo "    no framework tests selected"
fi
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
