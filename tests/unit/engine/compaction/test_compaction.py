"""Compaction: the pure picking policy and what survives a merge."""

from __future__ import annotations

from pathlib import Path

import pytest

from shaledb.engine import compaction as compactions
from shaledb.engine.block import value_with_expiry
from shaledb.engine.block_cache import BlockCache
from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.fs import FileSystem
from shaledb.engine.sstable import SSTable, SSTableBuilder
from shaledb.engine.version import FileMeta, Version
from shaledb.engine.version_edit import VersionEdit
from shaledb.options import Options


class Tables:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.number = 0

    def make(self, entries: list[tuple[bytes, int, int, bytes]]) -> FileMeta:
        self.number += 1
        path = self.root / f"{self.number:06d}.sst"
        b = SSTableBuilder(FileSystem(), str(path), 256, 10)
        for e in sorted(entries):
            b.add(*e)
        info = b.finish()
        table = SSTable(FileSystem(), str(path), self.number, BlockCache(0))
        return FileMeta(
            self.number, info.size, info.entries, info.smallest, info.largest, table=table
        )

    def span(self, lo: str, hi: str, value: bytes = b"v") -> FileMeta:
        return self.make([(lo.encode(), 0, 0, value), (hi.encode(), 0, 0, value)])


@pytest.fixture
def tables(tmp_path: Path) -> Tables:
    return Tables(tmp_path)


def _version(*placed: tuple[int, FileMeta]) -> Version:
    v = Version()
    for level, meta in placed:  # level 0 entries: oldest first
        v = v.apply(VersionEdit(added=[(level, meta)]))
    return v


def test_nothing_to_do() -> None:
    assert compactions.pick(Version(), Options()) is None
    assert compactions.for_range(Version(), None, None) is None


def test_level0_trigger(tables: Tables) -> None:
    opts = Options(l0_compaction_trigger=2)
    a = tables.span("a", "c")
    v = _version((0, a))
    assert compactions.pick(v, opts) is None
    b = tables.span("x", "z")
    l1_hit, l1_miss = tables.span("b", "b5"), tables.span("m", "n")
    v = _version((1, l1_hit), (1, l1_miss), (0, a), (0, b))
    chosen = compactions.pick(v, opts)
    assert chosen is not None and chosen.output_level == 1
    numbers = {(level, f.number) for level, f in chosen.input_files()}
    # Level 0's span a..z covers every level 1 table.
    assert numbers == {(0, a.number), (0, b.number), (1, l1_hit.number), (1, l1_miss.number)}


def test_level0_pulls_in_only_overlapping_level1(tables: Tables) -> None:
    opts = Options(l0_compaction_trigger=2)
    a, b = tables.span("c", "d"), tables.span("c1", "e")
    inside, outside = tables.span("d5", "d9"), tables.span("x", "y")
    v = _version((1, inside), (1, outside), (0, a), (0, b))
    chosen = compactions.pick(v, opts)
    assert chosen is not None
    assert {f.number for _, f in chosen.input_files()} == {a.number, b.number, inside.number}
    assert chosen.drops_tombstones  # nothing deeper than level 1


def test_deeper_level_over_its_size_is_compacted(tables: Tables) -> None:
    big = tables.make([(f"k{i:04d}".encode(), 0, 0, b"x" * 100) for i in range(50)])
    small = tables.span("a", "b")
    below = tables.span("k0010", "k0020")
    deeper = tables.span("k0015", "k0016")
    opts = Options(max_bytes_for_level_base=1000, level_size_ratio=10)
    # The table overlapping least below moves first: here `small`, which overlaps nothing.
    v = _version((1, big), (1, small), (2, below), (3, deeper))
    chosen = compactions.pick(v, opts)
    assert chosen is not None and chosen.output_level == 2
    assert [(level, f.number) for level, f in chosen.input_files()] == [(1, small.number)]
    v = _version((1, big), (2, below), (3, deeper))
    chosen = compactions.pick(v, opts)
    assert chosen is not None and chosen.output_level == 2
    assert [(level, f.number) for level, f in chosen.input_files()] == [
        (1, big.number),
        (2, below.number),
    ]
    assert not chosen.drops_tombstones  # level 3 overlaps
    assert compactions.policy.max_bytes_for_level(1, opts) == 1000
    assert compactions.policy.max_bytes_for_level(3, opts) == 100_000


def test_the_level_furthest_over_its_limit_goes_first(tables: Tables) -> None:
    l0 = [tables.span("a", "z") for _ in range(4)]
    l1 = [
        tables.make([(f"k{n}-{i:03d}".encode(), 0, 0, b"x" * 100) for i in range(40)])
        for n in range(3)
    ]
    opts = Options(max_bytes_for_level_base=1000, l0_compaction_trigger=4)
    v = _version(*[(0, f) for f in l0], *[(1, f) for f in l1])
    scores = compactions.scores(v, opts)
    assert scores[0] == 1.0 and scores[1] > 10
    chosen = compactions.pick(v, opts)
    assert chosen is not None and chosen.output_level == 2  # level 1, not level 0
    fewer = Options(max_bytes_for_level_base=10**9, l0_compaction_trigger=4)
    chosen = compactions.pick(v, fewer)
    assert chosen is not None and chosen.output_level == 1


def test_for_range_closes_over_overlap(tables: Tables) -> None:
    a = tables.span("a", "f")
    b = tables.span("e", "k")  # overlaps a, not the range
    c = tables.span("x", "z")
    deep = tables.span("j", "m")
    v = _version((0, a), (0, b), (0, c), (2, deep))
    chosen = compactions.for_range(v, b"b", b"c")
    assert chosen is not None
    assert {f.number for _, f in chosen.input_files()} == {a.number, b.number, deep.number}
    assert chosen.output_level == 2 and chosen.drops_tombstones
    everything = compactions.for_range(v, None, None)
    assert everything is not None and len(everything.input_files()) == 4


def test_merged_entries_newest_first(tables: Tables) -> None:
    old = tables.make([(b"k", 0, 0, b"old"), (b"o", 0, 0, b"o")])
    new = tables.make([(b"k", 0, 0, b"new")])
    deep = tables.make([(b"k", 0, 0, b"deep"), (b"z", 0, 0, b"z")])
    v = _version((2, deep), (0, old), (0, new))
    chosen = compactions.for_range(v, None, None)
    assert chosen is not None
    merged = list(compactions.merged_windows(chosen))
    assert merged == [([b"k", b"o", b"z"], b"\x00\x00\x00", [b"new", b"o", b"z"])]


def test_merged_windows_cover_every_key_once_across_many_windows(tables: Tables) -> None:
    older = tables.make([(b"%05d" % i, 0, 0, b"old") for i in range(0, 3000, 2)])
    newer = tables.make([(b"%05d" % i, 0, 0, b"new") for i in range(0, 3000, 3)])
    deep = tables.make([(b"%05d" % i, 0, 0, b"deep") for i in range(1, 3000, 2)])
    v = _version((2, deep), (0, older), (0, newer))
    chosen = compactions.for_range(v, None, None)
    assert chosen is not None
    windows = compactions.windows(chosen, window_entries=100)
    assert len(windows) > 10 and windows[0][0] is None and windows[-1][1] is None
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))
    merged: list[tuple[bytes, bytes]] = []
    for keys, _flags, values in compactions.merged_windows(chosen, window_entries=100):
        merged.extend(zip(keys, values))
    expected = {b"%05d" % i: b"old" for i in range(0, 3000, 2)}
    expected.update({b"%05d" % i: b"deep" for i in range(1, 3000, 2)})
    expected.update({b"%05d" % i: b"new" for i in range(0, 3000, 3)})
    assert merged == sorted(expected.items())


ENTRIES = [
    (b"\x01dropped", 0, 0, b"x"),
    (b"\x02alive", 0, 0, b"x"),
    (b"\x02dead", TOMBSTONE, 0, b""),
    (b"\x02expired", HAS_TTL | 0x20, 1000, b"x"),
    (b"\x02later", HAS_TTL, 5000, b"x"),
]


def _surviving(bottom: bool) -> list:
    c = compactions.Compaction([], 1, bottom, "test")
    columns = (
        [e[0] for e in ENTRIES],
        bytes(e[1] for e in ENTRIES),
        [value_with_expiry(e[1], e[2], e[3]) for e in ENTRIES],
    )
    keys, flags, values = compactions.surviving(columns, c, 2000, lambda k: k[:1] == b"\x01")
    return [
        (k, f, *((int.from_bytes(v[:8], "little"), v[8:]) if f & HAS_TTL else (0, v)))
        for k, f, v in zip(keys, flags, values)
    ]


def test_bottom_compaction_drops_tombstones_expired_and_dropped() -> None:
    assert _surviving(True) == [(b"\x02alive", 0, 0, b"x"), (b"\x02later", HAS_TTL, 5000, b"x")]


def test_upper_compaction_keeps_tombstones_and_turns_expired_into_tombstones() -> None:
    assert _surviving(False) == [
        (b"\x02alive", 0, 0, b"x"),
        (b"\x02dead", TOMBSTONE, 0, b""),
        (b"\x02expired", TOMBSTONE | 0x20, 0, b""),
        (b"\x02later", HAS_TTL, 5000, b"x"),
    ]
