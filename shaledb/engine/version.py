"""Versions: the immutable set of live tables, by level, changed only by edits.

Level 0 holds tables flushed from memtables, newest first; their key ranges may
overlap. Every deeper level holds tables with disjoint key ranges, sorted by key.
A :class:`Version` is never changed: applying a
:class:`~shaledb.engine.version_edit.VersionEdit` makes a new one, which the engine
installs whole, so readers holding the old one are unaffected.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from shaledb.engine import bloom
from shaledb.engine.base import RawEntry, RawFound
from shaledb.engine.sstable.reader import SSTable
from shaledb.engine.version_edit import TableFile, VersionEdit

NUM_LEVELS = 7


@dataclass(frozen=True)
class FileMeta(TableFile):
    """One live table: what the manifest records, and its open reader."""

    table: SSTable = field(compare=False, repr=False, kw_only=True)


#: A short scan's read of one source: ``(lo, hi, reverse, n)`` to its first ``n``
#: stored entries of ``lo <= key < hi`` in scan order (``SSTable.first_entries``).
SourceRead = Callable[[bytes, bytes | None, bool, int], list[RawEntry]]


class ScanPlan(NamedTuple):
    """The sources a short scan reads, made once per version (and per set of immutable
    memtables): each as ``(smallest key, largest key, read)``, newest first: level 0
    table by table, then each deeper level that holds tables as one source."""

    sources: tuple[tuple[bytes, bytes, SourceRead], ...]
    #: The entry count of each source.
    sizes: tuple[int, ...]
    #: The index in ``sources`` of the one with the most entries (-1: no source), which
    #: a short scan reads first.
    largest: int

    @classmethod
    def of(
        cls, sources: Sequence[tuple[bytes, bytes, SourceRead]], sizes: Sequence[int]
    ) -> ScanPlan:
        """A plan of ``sources`` (newest first) whose entry counts are ``sizes``."""
        largest = max(range(len(sizes)), key=sizes.__getitem__) if sizes else -1
        return cls(tuple(sources), tuple(sizes), largest)


class Version:
    """The live tables by level. Immutable."""

    __slots__ = ("levels", "_largest", "scan_plan")

    def __init__(self, levels: Iterable[Iterable[FileMeta]] | None = None) -> None:
        lv = [list(level) for level in levels] if levels is not None else []
        lv += [[] for _ in range(NUM_LEVELS - len(lv))]
        self.levels: tuple[tuple[FileMeta, ...], ...] = tuple(tuple(level) for level in lv)
        self._largest = [[f.largest for f in level] for level in self.levels]
        sources: list[tuple[bytes, bytes, SourceRead]] = []
        sizes: list[int] = []
        for f in self.levels[0]:
            sources.append((f.smallest, f.largest, f.table.first_entries))
            sizes.append(f.entries)
        for level in range(1, NUM_LEVELS):
            files = self.levels[level]
            if len(files) == 1:
                read: SourceRead = files[0].table.first_entries
            elif files:
                # A partial of the level's parts, not a bound method: the plan must not
                # hold its version (a cycle would keep old tables' files until a GC).
                read = partial(_level_first_entries, files, self._largest[level])
            else:
                continue
            sources.append((files[0].smallest, files[-1].largest, read))
            sizes.append(sum(f.entries for f in files))
        #: What a short scan reads (see :class:`ScanPlan`).
        self.scan_plan = ScanPlan.of(sources, sizes)

    def apply(self, edit: VersionEdit) -> Version:
        """A new version with the edit's tables removed and added.

        Every added table must be a :class:`FileMeta` (opened); the manifest's own
        records are opened by :mod:`shaledb.engine.version_set` before they get here.
        """
        gone = set(edit.removed)
        levels = [
            [f for f in files if (n, f.number) not in gone] for n, files in enumerate(self.levels)
        ]
        for level, meta in edit.added:
            if not isinstance(meta, FileMeta):
                raise TypeError(f"table {meta.number} is added to a version without a reader")
            if level == 0:
                levels[0].insert(0, meta)  # level 0: newest first
            else:
                levels[level].append(meta)
        for level in range(1, NUM_LEVELS):
            levels[level].sort(key=lambda f: f.smallest)
        return Version(levels)

    def files(self) -> Iterable[tuple[int, FileMeta]]:
        for level, files in enumerate(self.levels):
            for meta in files:
                yield level, meta

    def numbers(self) -> set[int]:
        """The file numbers of every live table."""
        return {f.number for files in self.levels for f in files}

    def get(self, key: bytes) -> RawFound | None:
        """The newest stored entry for ``key`` (tombstones included), or None."""
        # The bloom filter hashes, once for every table probed; each table's filter is
        # probed here (SSTable.filter), so a table without the key costs no call.
        hashes = bloom.hashes(key)
        word, bits = hashes
        for meta in self.levels[0]:
            if meta.smallest <= key <= meta.largest:
                table = meta.table
                probe = table.filter
                if probe is not None and probe[0][word % probe[1]] & bits != bits:
                    continue
                found = table.get(key, hashes)
                if found is not None:
                    return found
        for level in range(1, NUM_LEVELS):
            files = self.levels[level]
            if not files:
                continue
            i = bisect_left(self._largest[level], key)
            if i < len(files) and files[i].smallest <= key:
                table = files[i].table
                probe = table.filter
                if probe is not None and probe[0][word % probe[1]] & bits != bits:
                    continue
                found = table.get(key, hashes)
                if found is not None:
                    return found
        return None

    def first_entries(
        self, level: int, lo: bytes, hi: bytes | None, reverse: bool, n: int
    ) -> list[RawEntry]:
        """The first ``n`` stored entries of ``lo <= key < hi`` in one level >= 1 (whose
        tables are disjoint), in scan order: the tables are found by bisecting."""
        return _level_first_entries(self.levels[level], self._largest[level], lo, hi, reverse, n)

    def overlapping(self, level: int, lo: bytes | None, hi: bytes | None) -> list[FileMeta]:
        return [f for f in self.levels[level] if f.overlaps(lo, hi)]

    def level_bytes(self, level: int) -> int:
        return sum(f.size for f in self.levels[level])

    def deepest_nonempty(self) -> int:
        for level in range(NUM_LEVELS - 1, -1, -1):
            if self.levels[level]:
                return level
        return 0

    def check(self, describe: Callable[[int], str]) -> None:
        """Assert the level invariant (deeper levels disjoint); used by tests and check."""
        for level in range(1, NUM_LEVELS):
            files = self.levels[level]
            for a, b in zip(files, files[1:]):
                if a.largest >= b.smallest:
                    raise AssertionError(
                        f"level {level}: {describe(a.number)} and {describe(b.number)} overlap"
                    )


def _level_first_entries(
    files: Sequence[FileMeta],
    largest: list[bytes],
    lo: bytes,
    hi: bytes | None,
    reverse: bool,
    n: int,
) -> list[RawEntry]:
    """:meth:`Version.first_entries` of a level's ``files`` and their largest keys."""
    out: list[RawEntry] = []
    if not reverse:
        for i in range(bisect_left(largest, lo), len(files)):
            f = files[i]
            if hi is not None and f.smallest >= hi:
                break
            out += f.table.first_entries(lo, hi, False, n - len(out))
            if len(out) >= n:
                break
        return out
    start = len(files) - 1 if hi is None else min(bisect_left(largest, hi), len(files) - 1)
    for i in range(start, -1, -1):
        f = files[i]
        if f.largest < lo:
            break
        if hi is not None and f.smallest >= hi:
            continue
        out += f.table.first_entries(lo, hi, True, n - len(out))
        if len(out) >= n:
            break
    return out
