"""The memtable: recent writes in memory, newest version of each key only.

A plain dict maps each key to ``(flags, expire_ms, value)``, the tuple a point read
returns as is. Key order is kept lazily: new keys wait in a pending list and are
merged into a ``SortedList`` only when an ordered read or a flush asks for it, so a
put costs an append and a scan pays a logarithmic insert per key put since the last
one (a plain sorted list paid a move of the whole list per key, or a full sort once
more than a few were pending: milliseconds under the write lock for a scan after a
burst of puts).

Rejected alternative: a sorted map updated on every put. It keeps scans cheap but costs
every put a logarithmic insert; most workloads put far more often than they scan.

Only one version per key is kept, so snapshots of the active memtable are copies
(:meth:`MemTable.range_items`); an immutable memtable is shared as is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from operator import itemgetter

from sortedcontainers import SortedList

from shaledb.engine.base import RawEntry, RawFound, RawOp
from shaledb.engine.block import value_with_expiry
from shaledb.engine.entry import HAS_TTL, MAYBE_DEAD, TOMBSTONE

_first = itemgetter(0)
_third = itemgetter(2)

#: Approximate bytes of Python bookkeeping per entry, beyond the key and value bytes.
ENTRY_OVERHEAD = 96


class MemTable:
    """Recent writes. Writes must be serialized by the caller; reads may run concurrently.

    Attributes:
        wal_number: the write-ahead log holding this memtable's writes.
        last_seq: the sequence number of the newest write applied.
        approximate_bytes: keys + values + per-entry overhead.
    """

    __slots__ = (
        "entries",
        "wal_number",
        "last_seq",
        "approximate_bytes",
        "_sorted",
        "_pending",
        "_sort_lock",
    )

    def __init__(self, wal_number: int) -> None:
        self.entries: dict[bytes, RawFound] = {}
        self.wal_number = wal_number
        self.last_seq = 0
        self.approximate_bytes = 0
        self._sorted = SortedList()
        self._pending: list[bytes] = []
        # An immutable memtable is sorted by the flusher and by scans at the same time.
        self._sort_lock = threading.Lock()

    @classmethod
    def holding(cls, entries: dict[bytes, RawFound]) -> MemTable:
        """An immutable memtable of ``entries`` (another memtable's, as the table worker
        receives them), to sort and flush."""
        mem = cls(0)
        mem.entries = entries
        mem._pending = list(entries)
        return mem

    def __len__(self) -> int:
        return len(self.entries)

    def put(self, key: bytes, flags: int, expire_ms: int, value: bytes) -> None:
        """Record a put or (with the TOMBSTONE flag) a delete of ``key``."""
        entries = self.entries
        old = entries.get(key)
        if old is None:
            self._pending.append(key)
            self.approximate_bytes += len(key) + len(value) + ENTRY_OVERHEAD
        else:
            self.approximate_bytes += len(value) - len(old[2])
        entries[key] = (flags, expire_ms, value)

    def put_many(self, ops: Sequence[RawOp]) -> None:
        """:meth:`put` of every ``(flags, key, expire_ms, value)`` of ``ops``, in order,
        in one call (a batch's ops)."""
        entries = self.entries
        pending = self._pending
        grown = 0
        for flags, key, expire_ms, value in ops:
            old = entries.get(key)
            if old is None:
                pending.append(key)
                grown += len(key) + len(value) + ENTRY_OVERHEAD
            else:
                grown += len(value) - len(old[2])
            entries[key] = (flags, expire_ms, value)
        self.approximate_bytes += grown

    def sorted_keys(self) -> SortedList:
        """Every key, sorted (a ``SortedList``). Shared: callers must not change it.

        On the active memtable only under the write lock: writers append to the
        pending list under it, unseen by the sort lock."""
        if not self._pending:
            return self._sorted
        with self._sort_lock:
            pending = self._pending
            if pending:
                self._sorted.update(pending)
                self._pending = []
        return self._sorted

    def _bounds(self, lo: bytes | None, hi: bytes | None) -> tuple[SortedList, int, int]:
        """The sorted keys and the index range of ``lo <= key < hi`` (None: unbounded)."""
        keys = self.sorted_keys()
        start = 0 if lo is None else keys.bisect_left(lo)
        end = len(keys) if hi is None else keys.bisect_left(hi)
        return keys, start, max(start, end)

    def range_items(
        self,
        lo: bytes,
        hi: bytes | None,
        reverse: bool = False,
        limit: int | None = None,
        now_ms: int = 0,
    ) -> tuple[list[RawEntry], bytes | None]:
        """A copy of the entries with ``lo <= key < hi``, in order (a snapshot).

        With ``limit``, the copy stops once it holds ``limit`` live entries (neither
        tombstones nor expired at ``now_ms``), and the second item is the bound beyond
        which a scan wanting ``limit`` results needs nothing from any source: the new
        ``hi`` going forward, the new ``lo`` going backward. Otherwise it is None.
        """
        entries = self.entries
        if limit is not None and limit <= 0:
            return [], lo  # as a bound either way, lo leaves an empty range
        if not entries:
            return [], None
        # irange bisects both ends in C and keeps no positional index (bisect_left
        # would build and update one, for nothing here).
        picked = self.sorted_keys().irange(lo, hi, (True, False), reverse)
        if limit is None:
            return [(k, *entries[k]) for k in picked], None
        copied: list[RawEntry] = []
        found = 0
        for key in picked:
            if found >= limit:
                last = copied[-1][0]
                return copied, last if reverse else last + b"\x00"
            flags, expire_ms, value = entries[key]
            copied.append((key, flags, expire_ms, value))
            # is_live, inlined: this runs once per copied entry.
            if not flags & MAYBE_DEAD or not (flags & TOMBSTONE or expire_ms <= now_ms):
                found += 1
        return copied, None

    def columns_between(
        self, lo: bytes | None, hi: bytes | None
    ) -> tuple[list[bytes], bytes, list[bytes]]:
        """Entries with ``lo <= key < hi`` as new lists ``(keys, flags, stored values)``,
        values prefixed by their expiry where they have one (a snapshot, like SSTable
        columns)."""
        keys, start, end = self._bounds(lo, hi)
        picked = list(keys.islice(start, end))
        found = list(map(self.entries.__getitem__, picked))
        flags = bytes(map(_first, found))
        if any(map(HAS_TTL.__and__, flags)):
            stored = [value_with_expiry(*f) for f in found]
        else:
            stored = list(map(_third, found))
        return picked, flags, stored

    def iter_range(self, lo: bytes, hi: bytes | None, reverse: bool = False) -> Iterator[RawEntry]:
        """Entries with ``lo <= key < hi`` without copying; only for an immutable memtable."""
        entries = self.entries
        keys, start, end = self._bounds(lo, hi)
        for k in keys.islice(start, end, reverse):
            yield (k, *entries[k])

    def first_entries(self, lo: bytes, hi: bytes | None, reverse: bool, n: int) -> list[RawEntry]:
        """The first ``n`` entries of :meth:`iter_range` as a list; only for an immutable
        memtable."""
        entries = self.entries
        keys, start, end = self._bounds(lo, hi)
        if reverse:
            start = max(start, end - n)
        else:
            end = min(end, start + n)
        return [(k, *entries[k]) for k in keys.islice(start, end, reverse)]

    def columns(self) -> tuple[list[bytes], bytes, list[bytes]]:
        """Every entry as columns, for flushing: :meth:`columns_between` unbounded."""
        return self.columns_between(None, None)

    def __iter__(self) -> Iterator[RawEntry]:
        """Every entry in key order (tombstones and expired entries included)."""
        entries = self.entries
        for k in self.sorted_keys():
            yield (k, *entries[k])
