#!/usr/bin/env bash
# Create .venv (if missing) and install Estuary with its test extras into it. Sourced by the other
# scripts; safe to run again (pip skips what is installed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  echo "==> creating $ROOT/.venv"
  python3 -m venv "$ROOT/.venv"
fi
if ! "$ROOT/.venv/bin/python" -c "import estuary, kopf, pytest, hypothesis" 2>/dev/null \
    || [ "$ROOT/pyproject.toml" -nt "$ROOT/.venv/.installed" ]; then
  echo "==> installing Estuary and its test tools into .venv"
  "$ROOT/.venv/bin/pip" install -q --upgrade pip
  "$ROOT/.venv/bin/pip" install -q -e "$ROOT[test]"
  touch "$ROOT/.venv/.installed"
fi
