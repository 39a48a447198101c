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


def test_get_probes_each_filter_itself_and_calls_only_tables_that_may_hold_the_key(
    tables: Tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    newer = tables.make({b"k%03d" % i: b"new" for i in range(0, 200, 2)})
    older = tables.make({b"k%03d" % i: b"old" for i in range(1, 200, 2)})
    deep = tables.make({b"k%03d" % i: b"deep" for i in range(200)})
    v = Version([[newer, older], [deep]])
    called: list[int] = []
    for meta in (newer, older, deep):
        real = meta.table.get

        def counted(key: bytes, hashes: object = None, real: object = real, n: int = meta.number):
            called.append(n)
            return real(key, hashes)  # type: ignore[operator]

        monkeypatch.setattr(meta.table, "get", counted)
    assert v.get(b"k001") == (0, 0, b"old")
    assert v.get(b"k002") == (0, 0, b"new")
    assert v.get(b"k0015") is None  # within every table's range, in none of them
    # Each present key is in one level-0 table: the other's filter says no, and so do
    # all three for the absent key (false positives aside, 1.5% at 10 bits a key, so
    # one is allowed); the deeper level is never called.
    assert deep.number not in called and len(called) <= 3


def test_a_tables_filter_is_dropped_on_unload_and_loaded_again(tables: Tables) -> None:
    meta = tables.make({b"a": b"1", b"b": b"2"})
    v = Version([[meta]])
    assert meta.table.filter is not None
    meta.table.unload()
    assert meta.table.filter is None
    assert v.get(b"a") == (0, 0, b"1")  # read through the table, which loads it again
    assert meta.table.filter is not None and v.get(b"c") is None
