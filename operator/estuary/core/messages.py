"""Small formatting helpers, so every reason a person reads spells numbers the same way.

Why it exists: waiting reasons are the product's answer to "why is my job pending?"; CPU, memory
and job lists should look identical in every message the core writes.
"""

from __future__ import annotations

from collections.abc import Sequence

from estuary.model import Resources

# How an admission message names the type choice of the policy that made it.
POLICY_PHRASE = {
    "fastest": "fastest type that fits now",
    "preference": "first preferred type that fits now",
    "any_free": "pool with most free accelerators that fits now",
    "wait_fastest": "fastest type",
}


def cpu(milli: int) -> str:
    return f"{milli / 1000:g} CPU"


def memory(num_bytes: int) -> str:
    return f"{num_bytes / 2**30:g}Gi memory"


def worker(per_worker: Resources, resource: str) -> str:
    """'8 nvidia.com/gpu, 32 CPU, 256Gi memory' (zero parts left out)."""
    parts = []
    if per_worker.accelerators:
        parts.append(f"{per_worker.accelerators} {resource}")
    if per_worker.cpu_milli:
        parts.append(cpu(per_worker.cpu_milli))
    if per_worker.memory:
        parts.append(memory(per_worker.memory))
    return ", ".join(parts) or "nothing"


def keys(items: Sequence[str], limit: int = 3) -> str:
    """'a, b, c and 2 more'."""
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
