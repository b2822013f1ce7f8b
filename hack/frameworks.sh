#!/usr/bin/env bash
# Build (once) the venv of the framework tier and print its path: torch, deepspeed, mindspore and
# jax[cpu] from PyPI, pinned in tests/framework/requirements.txt. The venv is keyed by the hash of
# that file, ~/.cache/estuary/frameworks-<hash>, so a changed pin builds a new one and an unchanged
# one is reused across runs and worktrees. Never installs into .venv: the unit tier downloads nothing.
# Cold: about 3.9 GB from PyPI (torch brings its CUDA libraries), 6-10 minutes; 8.5 GB on disk.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/tests/framework/requirements.txt"
HASH="$(sha256sum "$REQ" | cut -c1-12)"
VENV="${ESTUARY_CACHE:-$HOME/.cache/estuary}/frameworks-$HASH"
if [ ! -f "$VENV/.installed" ]; then
  echo "==> framework venv $VENV: installing $(grep -c '^[a-z]' "$REQ") packages from PyPI (cold: ~3.9 GB, 6-10 min)" >&2
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  start=$(date +%s)
  # DS_BUILD_OPS=0: DeepSpeed compiles no CUDA/C++ ops at install (they build on first use, if ever).
  DS_BUILD_OPS=0 "$VENV/bin/pip" install -q --no-cache-dir -r "$REQ" >&2
  # DeepSpeed's CPU accelerator compiles its shared-memory collective op at first use (g++, about
  # 2 minutes on 2 cores); build it now so that no test's timeout includes a compile.
  # (Built the way the tier's pods run it: the venv first on PATH, HOME as the tests set it.)
  PATH="$VENV/bin:/usr/local/bin:/usr/bin:/bin" HOME=/root DS_ACCELERATOR=cpu \
    "$VENV/bin/python" -c "from deepspeed.comm.torch import build_shm_op; build_shm_op()" >&2
  cp "$REQ" "$VENV/requirements.txt"
  echo "    installed in $(( $(date +%s) - start ))s; $(du -sh "$VENV" | cut -f1) on disk" >&2
  touch "$VENV/.installed"
fi
echo "$VENV"
