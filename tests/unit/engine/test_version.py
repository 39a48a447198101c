"""Versions: immutable sets of tables per level, changed only by edits."""

from __future__ import annotations

from pathlib import Path

import pytest

from shaledb.engine.block_cache import BlockCache
from shaledb.engine.entry import TOMBSTONE
from shaledb.engine.fs import FileSystem
from shaledb.engine.sstable import SSTable, SSTableBuilder
from shaledb.engine.version import NUM_LEVELS, FileMeta, Version
from shaledb.engine.version_edit import VersionEdit


class Tables:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.number = 0
        self.cache = BlockCache(1 << 20)

    def make(self, entries: dict[bytes, bytes | None]) -> FileMeta:
        self.number += 1
        path = self.root / f"{self.number:06d}.sst"
        b = SSTableBuilder(FileSystem(), str(path), 128, 10)
        for k in sorted(entries):
            v = entries[k]
            b.add(k, TOMBSTONE if v is None else 0, 0, v or b"")
        info = b.finish()
        table = SSTable(FileSystem(), str(path), self.number, self.cache)
        return FileMeta(
            self.number, info.size, info.entries, info.smallest, info.largest, table=table
        )


@pytest.fixture
def tables(tmp_path: Path) -> Tables:
    return Tables(tmp_path)


def test_empty_version() -> None:
    v = Version()
    assert len(v.levels) == NUM_LEVELS
    assert v.get(b"x") is None and list(v.files()) == [] and v.deepest_nonempty() == 0


def test_apply_returns_a_new_version_and_leaves_the_old_one(tables: Tables) -> None:
    a = tables.make({b"a": b"1"})
    v1 = Version()
    v2 = v1.apply(VersionEdit(added=[(0, a)]))
    assert list(v1.files()) == []
    assert list(v2.files()) == [(0, a)]
    v3 = v2.apply(VersionEdit(removed=[(0, a.number)]))
    assert list(v3.files()) == [] and list(v2.files()) == [(0, a)]


def test_level0_is_newest_first_and_newer_wins(tables: Tables) -> None:
    old = tables.make({b"k": b"old", b"o": b"only-old"})
    new = tables.make({b"k": b"new"})
    v = Version().apply(VersionEdit(added=[(0, old)])).apply(VersionEdit(added=[(0, new)]))
    assert [f.number for f in v.levels[0]] == [new.number, old.number]
    assert v.get(b"k") == (0, 0, b"new")
    assert v.get(b"o") == (0, 0, b"only-old")


def test_shallower_levels_shadow_deeper_ones(tables: Tables) -> None:
    deep = tables.make({b"a": b"deep", b"b": b"deep", b"c": b"deep"})
    mid = tables.make({b"b": None})
    top = tables.make({b"c": b"top"})
    v = Version().apply(VersionEdit(added=[(3, deep), (1, mid), (0, top)]))
    assert v.get(b"a") == (0, 0, b"deep")
    assert v.get(b"b") == (TOMBSTONE, 0, b"")  # the tombstone is returned as stored
    assert v.get(b"c") == (0, 0, b"top")
    assert v.get(b"d") is None
    assert v.deepest_nonempty() == 3


def test_deeper_levels_are_sorted_and_searched_by_range(tables: Tables) -> None:
    files = [
        tables.make({bytes([c]) + b"1": bytes([c]), bytes([c]) + b"9": bytes([c])}) for c in b"mdxa"
    ]
    v = Version().apply(VersionEdit(added=[(2, f) for f in files]))
    assert [f.smallest for f in v.levels[2]] == [b"a1", b"d1", b"m1", b"x1"]
    for c in b"adm":
        assert v.get(bytes([c]) + b"9") == (0, 0, bytes([c]))
        assert v.get(bytes([c]) + b"5") is None
    v.check(str)  # disjoint: no error
    assert [f.smallest for f in v.overlapping(2, b"d5", b"m1")] == [b"d1"]
    assert [f.smallest for f in v.overlapping(2, b"d5", b"m2")] == [b"d1", b"m1"]
    assert [f.smallest for f in v.overlapping(2, None, None)] == [b"a1", b"d1", b"m1", b"x1"]
    assert v.level_bytes(2) == sum(f.size for f in files)


def test_check_reports_overlap_in_a_deeper_level(tables: Tables) -> None:
    a = tables.make({b"a": b"1", b"m": b"1"})
    b = tables.make({b"k": b"2", b"z": b"2"})
    v = Version().apply(VersionEdit(added=[(1, a), (1, b)]))
    with pytest.raises(AssertionError, match="level 1"):
        v.check(lambda n: f"table {n}")


def test_overlaps_is_half_open(tables: Tables) -> None:
    f = tables.make({b"b": b"", b"d": b""})
    assert f.overlaps(b"a", b"b") is False
    assert f.overlaps(b"a", b"b\x00") is True
    assert f.overlaps(b"d", None) is True
    assert f.overlaps(b"d\x00", None) is False
    assert f.overlaps(None, None) is True
