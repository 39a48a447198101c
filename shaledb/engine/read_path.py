"""The read path: point lookups and scan planning over one engine state.

A read takes the published :class:`~shaledb.engine.state.EngineState` once and looks
through it newest first: the memtable, the immutable memtables, level 0 (newest
first), then one table per deeper level. No lock is taken for a point read. A scan
copies the part of the active memtable it needs under the write lock (the memtable
keeps one version per key, so a snapshot of it is a copy); everything else it reads
is immutable. A short scan reads the tables first, so that the copy is only the few
entries the tables leave open (see :func:`scan`).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import islice
from operator import itemgetter

from shaledb.engine.base import RawEntry, RawFound
from shaledb.engine.entry import MAYBE_DEAD, TOMBSTONE
from shaledb.engine.iterators import Columns, ColumnSource, live, merge, merge_windows
from shaledb.engine.memtable import MemTable
from shaledb.engine.sstable.reader import SSTable
from shaledb.engine.state import EngineState
from shaledb.engine.version import NUM_LEVELS, FileMeta, ScanPlan, SourceRead

#: Scans wanting at most this many entries merge entry by entry; longer ones by windows.
HEAP_MERGE_LIMIT = 1000
#: Entries per window of a long scan, and a typical block's entry count to sample by.
_WINDOW_ENTRIES = 4096
_ENTRIES_PER_BLOCK = 32
_key = itemgetter(0)
_flags = itemgetter(1)


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
    ``lock`` (the write lock, held only while the memtable is copied).

    A short scan reads the state's tables and immutable memtables first, without the
    lock, then under it checks that the state is still the one it read and copies the
    active memtable only up to where the tables' entries settle the result: one state
    at one moment, as if the copy had come first (everything but the active memtable
    is immutable, and a state is replaced whole on every rotation, flush and
    compaction). When the state changed meanwhile, or dead entries hide the answer,
    the scan starts over the other way round (:func:`_snapshot_scan`).
    """
    if limit is None or limit > HEAP_MERGE_LIMIT:
        return _scan_windows(state_of, lock, lo, hi, reverse, now_ms)
    if limit <= 0:
        return iter(())
    state = state_of()
    lists, cut = _table_lists(state, lo, hi, reverse, limit)
    mem_lo, mem_hi = lo, hi
    if cut is not None:
        if reverse:
            mem_lo = cut
        else:
            mem_hi = cut + b"\x00"
    with lock:
        same = state_of() is state
        if same:
            copied, bound = state.mem.range_items(mem_lo, mem_hi, reverse, limit, now_ms)
    if same:
        if copied:
            lists.insert(0, copied)
            if bound is not None:
                cut = copied[-1][0] if cut is None else _nearest(cut, copied[-1][0], reverse)
        found = _merged(lists, cut, reverse, limit, now_ms)
        if found is not None:
            return iter(found)
    return _snapshot_scan(state_of, lock, lo, hi, reverse, limit, now_ms)


def _snapshot_scan(
    state_of: Callable[[], EngineState],
    lock: threading.Lock,
    lo: bytes,
    hi: bytes | None,
    reverse: bool,
    limit: int,
    now_ms: int,
) -> Iterator[RawEntry]:
    """A short scan that copies the memtable first: under the lock, until it holds
    ``limit`` live entries; then :func:`_short_scan`, or the heap merge."""
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
    return islice(_heap_scan(state, copied, lo, hi, reverse, now_ms), limit)


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
    """The scan's result when the first ``limit`` entries of every source settle it,
    given the memtable's copy (``copy_cut``: it stopped at ``limit`` live entries, and
    ``lo``/``hi`` end at its last key); None when they do not (see :func:`_merged`)."""
    lists, cut = _table_lists(state, lo, hi, reverse, limit)
    if copied:
        lists.insert(0, copied)
        if copy_cut:
            cut = copied[-1][0] if cut is None else _nearest(cut, copied[-1][0], reverse)
    return _merged(lists, cut, reverse, limit, now_ms)


def _nearest(a: bytes, b: bytes, reverse: bool) -> bytes:
    """Of two cut keys, the one nearer the scan's start."""
    return (a if a > b else b) if reverse else (a if a < b else b)


def _table_lists(
    state: EngineState, lo: bytes, hi: bytes | None, reverse: bool, limit: int
) -> tuple[list[list[RawEntry]], bytes | None]:
    """The first ``limit`` entries of ``lo <= key < hi`` of every source but the active
    memtable, as non-empty lists newest source first, and the cut: the key nearest the
    start among the last keys of the lists that hold ``limit`` entries (None if none
    does), up to which every source has given all its entries.

    The largest source (by entries) is read first, ``limit`` entries; every other
    source only up to the last of those, at most ``limit``, so each decodes about its
    share of the result.
    """
    plan = state.version.scan_plan
    if state.imms:
        plan = _with_memtables(plan, state.imms)
    sources = plan.sources
    largest = plan.largest
    lists: list[list[RawEntry] | None] = [None] * len(sources)
    cut: bytes | None = None
    if largest >= 0:
        smallest, biggest, read = sources[largest]
        if (hi is None or smallest < hi) and biggest >= lo:
            first = read(lo, hi, reverse, limit)
            if first:
                lists[largest] = first
                if len(first) >= limit:
                    # The others need nothing past the largest source's last key.
                    cut = first[-1][0]
                    if reverse:
                        lo = cut
                    else:
                        hi = cut + b"\x00"
    for i, (smallest, biggest, read) in enumerate(sources):
        if i != largest and (hi is None or smallest < hi) and biggest >= lo:
            entries = read(lo, hi, reverse, limit)
            if entries:
                lists[i] = entries
                if len(entries) >= limit:
                    last = entries[-1][0]
                    cut = last if cut is None else _nearest(cut, last, reverse)
    return [entries for entries in lists if entries], cut


def _with_memtables(plan: ScanPlan, imms: tuple[MemTable, ...]) -> ScanPlan:
    """``plan`` with the immutable memtables (newest first) as its newest sources."""
    sources: list[tuple[bytes, bytes, SourceRead]] = []
    sizes: list[int] = []
    for imm in imms:
        keys = imm.sorted_keys()
        if keys:
            sources.append((keys[0], keys[-1], imm.first_entries))
            sizes.append(len(keys))
    return ScanPlan.of([*sources, *plan.sources], [*sizes, *plan.sizes])


def _merged(
    lists: list[list[RawEntry]], cut: bytes | None, reverse: bool, limit: int, now_ms: int
) -> list[RawEntry] | None:
    """The first ``limit`` live entries of the sources' lists (newest first) merged, the
    newest entry of a key winning; None when entries up to ``cut`` (the key up to which
    every list is complete) hold fewer than ``limit`` live ones but the sources may
    hold more past it (dead entries in the way): then the caller merges entry by entry.

    The lists are concatenated newest first and sorted by key, which keeps equal keys
    in that order (the sort is stable, in both directions), so the first of a run of
    equal keys is the newest. Rejected alternative: one dict filled oldest source first
    and a sort of its keys; for the few dozen entries of a short scan the dict costs
    more than skipping a repeated key.
    """
    if len(lists) == 1:
        merged = lists[0]
        if not any(map(MAYBE_DEAD.__and__, map(_flags, merged))):
            # One source, every entry live: its entries are the result as they are.
            return merged if len(merged) <= limit else merged[:limit]
    elif lists:
        merged = [entry for entries in lists for entry in entries]
        merged.sort(key=_key, reverse=reverse)
    else:
        return []
    out: list[RawEntry] = []
    last: bytes | None = None
    for entry in merged:
        key = entry[0]
        if key == last:
            continue
        last = key
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
