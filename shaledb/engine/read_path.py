"""The read path: point lookups and scan planning over one engine state.

A read takes the published :class:`~shaledb.engine.state.EngineState` once and looks
through it newest first: the memtable, the immutable memtables, level 0 (newest
first), then one table per deeper level. No lock is taken for a point read. A scan
copies the part of the active memtable it needs under the write lock (the memtable
keeps one version per key, so a snapshot of it is a copy); everything else it reads
is immutable.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from functools import partial
from operator import itemgetter

from shaledb.engine.base import RawEntry, RawFound
from shaledb.engine.entry import MAYBE_DEAD, TOMBSTONE
from shaledb.engine.iterators import Columns, ColumnSource, live, merge, merge_windows
from shaledb.engine.sstable.reader import SSTable
from shaledb.engine.state import EngineState
from shaledb.engine.version import NUM_LEVELS, FileMeta

#: Scans wanting at most this many entries merge entry by entry; longer ones by windows.
HEAP_MERGE_LIMIT = 1000
#: Entries per window of a long scan, and a typical block's entry count to sample by.
_WINDOW_ENTRIES = 4096
_ENTRIES_PER_BLOCK = 32
_key = itemgetter(0)


def get(state: EngineState, key: bytes, now_ms: Callable[[], int]) -> RawFound | None:
    """The live entry for ``key`` in ``state``; None when missing, deleted or expired.

    ``now_ms`` is the clock, read only for an entry that has an expiry.
    """
    raw = state.mem.entries.get(key)
    if raw is None:
        for imm in state.imms:
            raw = imm.entries.get(key)
            if raw is not None:
                break
        else:
            raw = state.version.get(key)
            if raw is None:
                return None
    flags = raw[0]
    # is_live, inlined: this is the hottest line of every read.
    if flags & MAYBE_DEAD and (flags & TOMBSTONE or raw[1] <= now_ms()):
        return None
    return raw


def scan(
    state_of: Callable[[], EngineState],
    lock: threading.Lock,
    lo: bytes,
    hi: bytes | None,
    reverse: bool,
    limit: int | None,
    now_ms: int,
) -> Iterator[RawEntry]:
    """Live entries with ``lo <= key < hi`` over the state ``state_of()`` returns under
    ``lock`` (the write lock, held only while the memtable is copied)."""
    if limit is None or limit > HEAP_MERGE_LIMIT:
        return _scan_windows(state_of, lock, lo, hi, reverse, now_ms)
    if limit <= 0:
        return iter(())
    with lock:
        state = state_of()
        copied, bound = state.mem.range_items(lo, hi, reverse, limit, now_ms)
    # With a limit, the memtable copy ends where enough results are certain; no
    # source needs to be read past that point.
    if bound is not None:
        if reverse:
            lo = bound
        else:
            hi = bound
    found = _short_scan(state, copied, bound is not None, lo, hi, reverse, limit, now_ms)
    if found is not None:
        return iter(found)
    return _heap_scan(state, copied, lo, hi, reverse, now_ms)


def _short_scan(
    state: EngineState,
    copied: list[RawEntry],
    copy_cut: bool,
    lo: bytes,
    hi: bytes | None,
    reverse: bool,
    limit: int,
    now_ms: int,
) -> list[RawEntry] | None:
    """The scan's result when the first ``limit`` entries of every source settle it.

    The largest source (by entries) is read first, ``limit`` entries; every other
    source only up to the last of those, at most ``limit`` entries, so each decodes
    about its share of the result. The lists are merged in C: one dict, oldest source
    first so the newest entry of a key wins, and one sort. Every source has given all
    its keys up to the nearest last key of a source that was cut short, so the merged
    entries up to it are final. None when fewer than ``limit`` of those are live (dead
    entries in the way): then the entry-by-entry merge runs instead.
    """
    version = state.version
    # (size, reader) of every source but the memtable copy, newest first.
    readers: list[tuple[int, Callable[[bytes, bytes | None], list[RawEntry]]]] = []
    for imm in state.imms:
        readers.append((len(imm), partial(imm.first_entries, reverse=reverse, n=limit)))
    for f in version.levels[0]:
        if f.overlaps(lo, hi):
            readers.append((f.entries, partial(f.table.first_entries, reverse=reverse, n=limit)))
    for level in range(1, NUM_LEVELS):
        files = version.levels[level]
        if files:
            size = sum(f.entries for f in files)
            readers.append((size, partial(version.first_entries, level, reverse=reverse, n=limit)))
    lists: list[list[RawEntry]] = [copied, *([] for _ in readers)]
    cuts = [copied[-1][0]] if copy_cut else []
    if readers:
        largest = max(range(len(readers)), key=lambda i: readers[i][0])
        lists[largest + 1] = first = readers[largest][1](lo, hi)
        if len(first) >= limit:
            # The others need nothing past the largest source's last key.
            if reverse:
                lo = first[-1][0]
            else:
                hi = first[-1][0] + b"\x00"
        for i, (_, read) in enumerate(readers):
            if i != largest:
                lists[i + 1] = read(lo, hi)
    for entries in lists[1:]:
        if len(entries) >= limit:
            cuts.append(entries[-1][0])
    lists = [entries for entries in lists if entries]
    if len(lists) == 1:
        merged = lists[0]
    else:
        by_key: dict[bytes, RawEntry] = {}
        for entries in reversed(lists):
            by_key.update(zip(map(_key, entries), entries))
        merged = list(map(by_key.__getitem__, sorted(by_key, reverse=reverse)))
    cut = (max(cuts) if reverse else min(cuts)) if cuts else None
    out: list[RawEntry] = []
    for entry in merged:
        key = entry[0]
        if cut is not None and (key < cut if reverse else key > cut):
            return None
        flags = entry[1]
        # is_live, inlined.
        if not flags & MAYBE_DEAD or not (flags & TOMBSTONE or entry[2] <= now_ms):
            out.append(entry)
            if len(out) == limit:
                return out
    return out if cut is None else None


def _heap_scan(
    state: EngineState,
    copied: list[RawEntry],
    lo: bytes,
    hi: bytes | None,
    reverse: bool,
    now_ms: int,
) -> Iterator[RawEntry]:
    """A short scan merged entry by entry: a heap over every source, newest first."""
    sources: list[Iterator[RawEntry]] = [iter(copied)]
    sources.extend(imm.iter_range(lo, hi, reverse) for imm in state.imms)
    version = state.version
    for f in version.levels[0]:
        if f.overlaps(lo, hi):
            sources.append(f.table.iter_range(lo, hi, reverse))
    for level in range(1, NUM_LEVELS):
        files = version.overlapping(level, lo, hi)
        if files:
            sources.append(_chain(files[::-1] if reverse else files, lo, hi, reverse))
    return live(merge(sources, reverse), now_ms)


def _scan_windows(
    state_of: Callable[[], EngineState],
    lock: threading.Lock,
    lo: bytes,
    hi: bytes | None,
    reverse: bool,
    now_ms: int,
) -> Iterator[RawEntry]:
    """A long scan: sources read as columns and merged window by window."""
    with lock:
        state = state_of()
        copied = state.mem.columns_between(lo, hi)
    sources: list[ColumnSource] = [_columns_of(copied)]
    sources.extend(imm.columns_between for imm in state.imms)
    tables: list[SSTable] = []
    version = state.version
    for f in version.levels[0]:
        if f.overlaps(lo, hi):
            sources.append(f.table.columns_in)
            tables.append(f.table)
    for level in range(1, NUM_LEVELS):
        files = version.overlapping(level, lo, hi)
        if files:
            sources.append(_level_columns(files))
            tables.extend(f.table for f in files)
    step = max(1, _WINDOW_ENTRIES // max(1, _ENTRIES_PER_BLOCK))
    bounds = sorted(key for t in tables for key in t.block_last_keys[step - 1 :: step])
    return merge_windows(sources, bounds, lo, hi, now_ms, reverse)


def _chain(files: list[FileMeta], lo: bytes, hi: bytes | None, reverse: bool) -> Iterator[RawEntry]:
    for f in files:
        yield from f.table.iter_range(lo, hi, reverse)


def _columns_of(columns: Columns) -> ColumnSource:
    """A column source over sorted columns already in memory."""
    keys, flags, values = columns

    def window(lo: bytes | None, hi: bytes | None) -> Columns:
        start = 0 if lo is None else bisect_left(keys, lo)
        end = len(keys) if hi is None else bisect_left(keys, hi, start)
        return keys[start:end], flags[start:end], values[start:end]

    return window


def _level_columns(files: list[FileMeta]) -> ColumnSource:
    """A column source over one level's tables (disjoint, in key order)."""

    def window(lo: bytes | None, hi: bytes | None) -> Columns:
        keys: list[bytes] = []
        flags = bytearray()
        values: list[bytes] = []
        for f in files:
            if f.overlaps(lo, hi):
                k, fl, v = f.table.columns_in(lo, hi)
                keys += k
                flags += fl
                values += v
        return keys, bytes(flags), values

    return window
