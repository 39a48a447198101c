"""The in-memory index of the hash-log engine: every key's newest record.

A dict from key to :data:`Location` answers point reads with one lookup. Scans need
the keys in order: a ``SortedList`` of them is built on the first scan and then kept
up to date cheaply (new keys are collected in a set and merged in at the next scan;
removed keys are taken out at once). Rejected: sorting the dict's keys for each scan
(O(n log n) per scan), and keeping the sorted list up to date on every put before any
scan asked for it (a point-read workload would pay ~1 us per new key for nothing).

Not thread-safe by itself: the engine changes it under its write lock; point reads
read the dict without a lock (one dict lookup is atomic in CPython).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sortedcontainers import SortedList

if TYPE_CHECKING:
    from shaledb.engine.hashlog.segments import Segment

#: Where a key's record is and what the index knows of it without reading it:
#: ``(segment, offset, length, flags, expire_ms)``.
Location = tuple["Segment", int, int, int, int]


class KeyDir:
    """Key -> :data:`Location`, with the keys in order on demand."""

    __slots__ = ("_added", "_sorted", "entries", "live_bytes")

    def __init__(self) -> None:
        self.entries: dict[bytes, Location] = {}
        self._sorted: SortedList | None = None
        self._added: set[bytes] = set()
        #: Bytes of the records the index points to (the rest of the data is dead).
        self.live_bytes = 0

    def __len__(self) -> int:
        return len(self.entries)

    def set(self, key: bytes, location: Location) -> None:
        old = self.entries.get(key)
        self.entries[key] = location
        if old is None:
            self.live_bytes += location[2]
            if self._sorted is not None:
                self._added.add(key)
        else:
            self.live_bytes += location[2] - old[2]

    def remove(self, key: bytes) -> None:
        old = self.entries.pop(key, None)
        if old is None:
            return
        self.live_bytes -= old[2]
        if self._sorted is not None:
            if key in self._added:
                self._added.discard(key)
            else:
                self._sorted.discard(key)

    def replace_if(self, key: bytes, old: Location, new: Location | None) -> bool:
        """Point ``key`` at ``new`` (remove it when None) if it still points at ``old``."""
        if self.entries.get(key) is not old:
            return False
        if new is None:
            self.remove(key)
        else:
            self.set(key, new)
        return True

    def sorted_keys(self) -> SortedList:
        """Every key, in order (built or brought up to date now)."""
        if self._sorted is None:
            self._sorted = SortedList(self.entries)
        elif self._added:
            self._sorted.update(self._added)
            self._added = set()
        return self._sorted
