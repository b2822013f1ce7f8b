"""Keep the operator's resident memory close to what it holds (glibc's allocator, on Linux).

Why it exists: the operator's threads (the background writers, creates and dry runs, Kopf's
watches) each make glibc give them an arena of their own, and memory a thread freed stays in its
arena: after 10,000 jobs are first told why they wait, the process kept well over what it then
held. Two arenas in all (as MALLOC_ARENA_MAX=2, set here because an environment variable must be
set before the process starts) and a trim after a busy spell return that memory to the system.
Python's own small-object allocator is not affected. On anything but glibc both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("estuary.memory")
M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
ARENAS = 2


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") else None


_LIBC = _libc()


def limit_arenas(count: int = ARENAS) -> bool:
    """At most `count` malloc arenas for the threads started after this; True when applied.
    Call it before any thread starts."""
    if _LIBC is None or not _LIBC.mallopt(M_ARENA_MAX, count):
        log.info("could not limit malloc arenas (not glibc): memory use is the allocator's default")
        return False
    return True


def trim() -> None:
    """Give the memory freed in every arena back to the system."""
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)
