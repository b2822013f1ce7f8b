"""The waiting jobs of one cycle, in queue order, each `Waiting` made only when it is asked for.

Why it exists: a cycle over 10,000 queued jobs hands nearly all of them their class's verdict, and
every admission ahead of a job moves its position, so building a `Waiting` object per job and
cycle was most of what a steady cycle cost, whether or not anyone read it. Here a cycle records
two lists, the keys and the shared verdict entries (reason, message, one `TypeVerdict` per pool:
one tuple per class, not per job); a job's `Waiting`, with its 1-based position, is made when a
caller reads it. It is a read-only `Mapping` like the dict it replaces, equal to a dict with the
same items in any order (`Mapping.__eq__`); iteration is in queue order, as before.
`keys_with` finds the jobs with given reasons (the simulator's nominated and dropped jobs)
without making the others.
"""

from __future__ import annotations

from collections.abc import Container, ItemsView, Iterator, Mapping, ValuesView
from itertools import compress
from operator import itemgetter

from estuary.model import Reason, TypeVerdict, Waiting

Entry = tuple[Reason, str, tuple[TypeVerdict, ...]]  # a Waiting without key and position

_new = object.__new__
_REASON = itemgetter(0)
_slot = Waiting.__dict__  # the slots' descriptors: setting through them skips the frozen check
_set_key, _set_reason, _set_message, _set_position, _set_verdicts = (
    _slot[name].__set__ for name in ("job_key", "reason", "message", "position", "verdicts")
)


def make_waiting(key: str, entry: Entry, position: int) -> Waiting:
    """`Waiting(key, *entry, position)` through its slots: five times cheaper than the frozen
    dataclass's `__init__` (five `object.__setattr__` calls); the same object, equality and hash."""
    made = _new(Waiting)
    _set_key(made, key)
    _set_reason(made, entry[0])
    _set_message(made, entry[1])
    _set_position(made, position)
    _set_verdicts(made, entry[2])
    return made


class WaitingList(Mapping[str, Waiting]):
    """Waiting jobs by key, in queue order (position = index + 1)."""

    __slots__ = ("_entries", "_index", "_keys")

    def __init__(self, keys: list[str], entries: list[Entry]) -> None:
        self._keys = keys
        self._entries = entries
        self._index: dict[str, int] | None = None  # made on the first lookup by key

    def _positions(self) -> dict[str, int]:
        if self._index is None:
            self._index = dict(zip(self._keys, range(len(self._keys)), strict=True))
        return self._index

    def __getitem__(self, key: str) -> Waiting:
        index = self._positions()[key]
        return make_waiting(key, self._entries[index], index + 1)

    def __contains__(self, key: object) -> bool:
        return key in self._positions()

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"WaitingList({dict(self.items())!r})"

    def _made(self) -> Iterator[Waiting]:
        for index, (key, entry) in enumerate(zip(self._keys, self._entries, strict=True)):
            yield make_waiting(key, entry, index + 1)

    def items(self) -> ItemsView[str, Waiting]:
        return _Items(self)

    def values(self) -> ValuesView[Waiting]:
        return _Values(self)

    def keys_with(self, reasons: Container[Reason]) -> list[str]:
        """The keys of the jobs waiting for one of `reasons`, in queue order."""
        wanted = map(reasons.__contains__, map(_REASON, self._entries))  # C loops, no Python frame
        return list(compress(self._keys, wanted))


class _Items(ItemsView[str, Waiting]):
    _mapping: WaitingList

    def __iter__(self) -> Iterator[tuple[str, Waiting]]:
        for made in self._mapping._made():
            yield made.job_key, made


class _Values(ValuesView[Waiting]):
    _mapping: WaitingList

    def __iter__(self) -> Iterator[Waiting]:
        return self._mapping._made()


def keys_with(waiting: Mapping[str, Waiting], reasons: Container[Reason]) -> list[str]:
    """The waiting jobs with one of `reasons`, without making every job's `Waiting` when the core
    returned a `WaitingList` (thousands of jobs wait when a cluster is overloaded)."""
    if isinstance(waiting, WaitingList):
        return waiting.keys_with(reasons)
    return [key for key, w in waiting.items() if w.reason in reasons]
