#!/usr/bin/env python3
"""Check the size limits of operator/: no module over 400 lines, no function over 60 lines.

Prints every module and function over its limit; exits 1 when one is not in EXCEPTIONS (each with
the reason it stays). Functions are measured from their `def` (decorators included) to their last
line, as `ast` sees them.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "operator" / "estuary"
MAX_MODULE, MAX_FUNCTION = 400, 60
EXCEPTIONS: dict[str, str] = {
    # "path/inside/estuary.py" or "path.py:function": "why it stays (and until when)"
}


def oversized(path: Path) -> list[tuple[str, int, int]]:
    """(name, lines, limit) of the module and each function in it over its limit."""
    text = path.read_text()
    rel = str(path.relative_to(ROOT))
    out = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE:
        out.append((rel, lines, MAX_MODULE))
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - start + 1
            if length > MAX_FUNCTION:
                out.append((f"{rel}:{node.name}", length, MAX_FUNCTION))
    return out


def main() -> int:
    failed = False
    for path in sorted(ROOT.rglob("*.py")):
        for name, lines, limit in oversized(path):
            excused = EXCEPTIONS.get(name)
            print(f"{name}: {lines} lines (limit {limit})" + (f" - allowed: {excused}" if excused else ""))
            failed = failed or excused is None
    if failed:
        print("over the limit: split it, or add it to EXCEPTIONS in hack/sizes.py with the reason")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
