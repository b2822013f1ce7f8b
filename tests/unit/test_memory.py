"""memory.py: on glibc the operator limits malloc arenas and can trim; elsewhere both do nothing."""

from __future__ import annotations

import platform

from estuary import memory


def test_arenas_are_limited_exactly_where_the_allocator_is_glibc() -> None:
    assert memory.limit_arenas() is (platform.libc_ver()[0] == "glibc")
    memory.trim()  # and a trim returns quietly, whatever the allocator
