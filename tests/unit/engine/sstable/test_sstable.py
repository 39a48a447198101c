"""SSTables: build, read, ranges in both directions, filters, and damage."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from shaledb.engine.block_cache import BlockCache
from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.fs import FileSystem
from shaledb.engine.sstable import FOOTER_SIZE, SSTable, SSTableBuilder
from shaledb.errors import CorruptionError


def _entries(n: int, seed: int = 1) -> list[tuple[bytes, int, int, bytes]]:
    rng = random.Random(seed)
    keys = sorted({f"key{rng.randrange(10**6):07d}".encode() for _ in range(n)})
    out = []
    for i, k in enumerate(keys):
        kind = i % 5
        if kind == 3:
            out.append((k, TOMBSTONE, 0, b""))
        elif kind == 4:
            out.append((k, HAS_TTL, 1_700_000_000_000 + i, f"t{i}".encode()))
        else:
            out.append((k, 0, 0, rng.randbytes(rng.randint(0, 40))))
    return out


def _build(path: Path, entries: list, block_size: int = 256, bits: int = 10) -> SSTable:
    builder = SSTableBuilder(FileSystem(), str(path), block_size, bits)
    for e in entries:
        builder.add(*e)
    info = builder.finish()
    assert info.entries == len(entries)
    assert info.smallest == entries[0][0] and info.largest == entries[-1][0]
    assert info.size == path.stat().st_size
    return SSTable(FileSystem(), str(path), 1, BlockCache(1 << 20))


@pytest.fixture
def entries() -> list:
    return _entries(400)


@pytest.fixture
def table(tmp_path: Path, entries: list) -> SSTable:
    return _build(tmp_path / "000001.sst", entries)


def test_many_blocks_were_written(table: SSTable) -> None:
    assert len(table.block_offsets) > 10


def test_every_entry_reads_back(table: SSTable, entries: list) -> None:
    assert table.entries == len(entries)
    for key, flags, expire, value in entries:
        assert table.get(key) == (flags, expire, value)
    assert list(table.iter_range(b"", None)) == entries
    assert list(table.iter_range(b"", None, reverse=True)) == entries[::-1]


def test_absent_keys_read_as_none(table: SSTable, entries: list) -> None:
    present = {e[0] for e in entries}
    probes = [b"a", b"key", b"zzz", b"\xff"] + [e[0] + b"\x00" for e in entries[::7]]
    for key in probes:
        assert key not in present
        assert table.get(key) is None


def test_ranges_match_a_sorted_list(table: SSTable, entries: list) -> None:
    rng = random.Random(3)
    keys = [e[0] for e in entries]
    candidates = keys + [k + b"\x00" for k in keys[::5]] + [b"", b"a", b"key5", b"zz"]
    for _ in range(300):
        lo = rng.choice(candidates)
        hi = rng.choice(candidates + [None])
        expected = [e for e in entries if e[0] >= lo and (hi is None or e[0] < hi)]
        assert list(table.iter_range(lo, hi)) == expected, (lo, hi)
        assert list(table.iter_range(lo, hi, reverse=True)) == expected[::-1], (lo, hi)


def test_range_on_block_boundaries(table: SSTable, entries: list) -> None:
    keys = [e[0] for e in entries]
    for last in table.block_last_keys[:-1]:
        i = keys.index(last)
        hi = keys[i + 2] if i + 2 < len(keys) else None
        assert [e[0] for e in table.iter_range(last, hi)] == keys[i : i + 2]
        assert [e[0] for e in table.iter_range(keys[i - 1], keys[i + 1], reverse=True)] == [
            keys[i],
            keys[i - 1],
        ]


def test_single_entry_table(tmp_path: Path) -> None:
    t = _build(tmp_path / "1.sst", [(b"only", 0, 0, b"one")])
    assert t.get(b"only") == (0, 0, b"one")
    assert list(t.iter_range(b"", None, reverse=True)) == [(b"only", 0, 0, b"one")]
    assert list(t.iter_range(b"p", None)) == [] == list(t.iter_range(b"", b"only", reverse=True))


def test_table_without_filter(tmp_path: Path, entries: list) -> None:
    t = _build(tmp_path / "1.sst", entries, bits=0)
    assert not t.has_filter
    assert t.get(entries[10][0]) == entries[10][1:]
    assert t.get(b"missing") is None


def test_filter_skips_blocks_for_absent_keys(tmp_path: Path, entries: list) -> None:
    cache = BlockCache(1 << 20)
    path = tmp_path / "1.sst"
    _build(path, entries)
    t = SSTable(FileSystem(), str(path), 1, cache)
    for i in range(1000):
        t.get(f"key{i:07d}x".encode())
    assert cache.misses < 50  # about 1% of the probes reach a block


def test_blocks_are_cached(tmp_path: Path, entries: list) -> None:
    cache = BlockCache(1 << 20)
    path = tmp_path / "1.sst"
    _build(path, entries)
    t = SSTable(FileSystem(), str(path), 1, cache)
    t.get(entries[0][0])
    t.get(entries[0][0])
    assert cache.hits >= 1
    list(t.iter_range(b"", None, fill_cache=False))
    assert cache.used == cache.get((1, t.block_offsets[0])).memory_bytes()


def test_empty_builder_refuses_to_finish(tmp_path: Path) -> None:
    builder = SSTableBuilder(FileSystem(), str(tmp_path / "1.sst"), 256, 10)
    with pytest.raises(ValueError):
        builder.finish()
    builder.abandon()


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("back", [1, 5, 9, 20, FOOTER_SIZE])
def test_damaged_footer_is_corruption_naming_the_file(
    tmp_path: Path, entries: list, back: int
) -> None:
    path = tmp_path / "000009.sst"
    _build(path, entries)
    _flip(path, path.stat().st_size - back)
    with pytest.raises(CorruptionError) as info:
        SSTable(FileSystem(), str(path), 9, BlockCache(0))
    assert str(path) in str(info.value) and info.value.path == str(path)


def test_file_too_short_for_a_footer(tmp_path: Path) -> None:
    path = tmp_path / "000009.sst"
    path.write_bytes(b"x" * 10)
    with pytest.raises(CorruptionError, match="too short"):
        SSTable(FileSystem(), str(path), 9, BlockCache(0))


def test_damaged_data_block_fails_only_its_keys(tmp_path: Path, entries: list) -> None:
    path = tmp_path / "000009.sst"
    _build(path, entries)
    _flip(path, 10)  # inside the first data block
    t = SSTable(FileSystem(), str(path), 9, BlockCache(1 << 20))
    first_block_last = t.block_last_keys[0]
    in_first = [e for e in entries if e[0] <= first_block_last]
    rest = [e for e in entries if e[0] > first_block_last]
    for key, *_ in in_first:
        with pytest.raises(CorruptionError) as info:
            t.get(key)
        assert str(path) in str(info.value) and "offset 0" in str(info.value)
    for key, flags, expire, value in rest:
        assert t.get(key) == (flags, expire, value)
    with pytest.raises(CorruptionError):
        list(t.iter_range(b"", None))
    assert list(t.iter_range(rest[0][0], None)) == rest


def test_damaged_index_block_is_corruption_at_open(tmp_path: Path, entries: list) -> None:
    path = tmp_path / "000009.sst"
    _build(path, entries)
    t = SSTable(FileSystem(), str(path), 9, BlockCache(0))
    import struct

    raw = path.read_bytes()[-FOOTER_SIZE:]
    index_offset = struct.unpack_from("<Q", raw, 0)[0]
    del t
    _flip(path, index_offset + 3)
    with pytest.raises(CorruptionError, match="index block"):
        SSTable(FileSystem(), str(path), 9, BlockCache(0))
    assert os.path.exists(path)


def test_table_cache_unloads_the_least_recently_used_and_reloads_on_read(tmp_path: Path) -> None:
    from shaledb.engine.table_cache import TableCache

    fs = FileSystem()
    cache = BlockCache(0)
    open_tables = TableCache(2)
    tables = []
    for n in range(1, 5):
        path = str(tmp_path / f"{n:06d}.sst")
        b = SSTableBuilder(fs, path, 256, 10)
        for i in range(50):
            b.add(b"k%03d" % i, 0, 0, b"table%d" % n)
        b.finish()
        tables.append(SSTable(fs, path, n, cache, open_tables))
    assert len(open_tables) == 2
    assert [t.loaded for t in tables] == [False, False, True, True]
    reader = tables[2].iter_range(b"", None)  # holds its table's parts while iterating
    assert next(reader)[0] == b"k000"
    assert tables[0].get(b"k007") == (0, 0, b"table1")  # reloads, evicting table 4
    assert not tables[3].loaded and tables[2].loaded
    assert tables[1].get(b"k001") == (0, 0, b"table2")  # evicts table 3, mid-iteration
    assert tables[0].loaded and not tables[2].loaded and len(open_tables) == 2
    assert len(list(reader)) == 49  # the unloaded table's open iterator still reads
    assert tables[2].get(b"k049") == (0, 0, b"table3")
    open_tables.forget(3)
    assert len(open_tables) == 1


@pytest.mark.parametrize("compression", ["lz4", "none"])
def test_compressed_tables_round_trip_and_shrink_compressible_data(
    tmp_path: Path, compression: str
) -> None:
    fs = FileSystem()
    path = str(tmp_path / "000001.sst")
    b = SSTableBuilder(fs, path, 4096, 10, compression)
    entries = [(b"k%05d" % i, 0, 0, b'{"name": "user%d", "active": true}' % i) for i in range(3000)]
    for e in entries:
        b.add(*e)
    info = b.finish()
    raw = sum(len(k) + len(v) for k, _, _, v in entries)
    if compression == "lz4":
        assert info.size < raw * 0.6
    else:
        assert info.size > raw
    t = SSTable(fs, path, 1, BlockCache(1 << 20))
    assert list(t.iter_range(b"", None)) == entries
    assert t.get(b"k01234") == (0, 0, b'{"name": "user1234", "active": true}')


def test_incompressible_blocks_are_stored_plain(tmp_path: Path) -> None:
    from shaledb.engine import block as blocks

    contents = blocks.encode([b"k"], b"\x00", [os.urandom(3000)])
    sealed = blocks.seal(contents, blocks.COMPRESSION_LZ4)
    assert sealed[-5] == blocks.COMPRESSION_NONE
    assert blocks.unseal(sealed, "t", 0, "data block") == contents


def test_a_damaged_compressed_block_is_corruption(tmp_path: Path) -> None:
    from shaledb.engine import block as blocks

    contents = blocks.encode([b"k%d" % i for i in range(100)], bytes(100), [b"same" * 10] * 100)
    sealed = bytearray(blocks.seal(contents, blocks.COMPRESSION_LZ4))
    assert sealed[-5] == blocks.COMPRESSION_LZ4 and len(sealed) < len(contents)
    sealed[10] ^= 0xFF
    with pytest.raises(CorruptionError, match="checksum"):
        blocks.unseal(bytes(sealed), "t.sst", 0, "data block")


def test_first_entries_match_iter_range_in_both_directions(table: SSTable, entries: list) -> None:
    rng = random.Random(5)
    keys = [e[0] for e in entries]
    probes = [b"", b"zzz", keys[0], keys[-1]] + [rng.choice(keys) for _ in range(30)]
    probes += [k + b"\x00" for k in probes[4:10]]
    for lo in probes:
        for hi in [None, rng.choice(keys), lo + b"\x00"]:
            for n in (1, 7, 40):
                for reverse in (False, True):
                    want = list(table.iter_range(lo, hi, reverse))[:n]
                    assert table.first_entries(lo, hi, reverse, n) == want, (lo, hi, n, reverse)


@pytest.mark.parametrize("ttl_every", [0, 97])
def test_first_entries_across_many_blocks_and_fences(tmp_path: Path, ttl_every: int) -> None:
    # Blocks without an expiry take the short path of Block.entries_from; more than a
    # few fences of index keys; limits from 1 up to several blocks' worth.
    from shaledb.engine.sstable.reader import FENCE_STEP

    rng = random.Random(9)
    keys = sorted({rng.randbytes(rng.choice([8, 12])) for _ in range(3000)})
    entries = [
        (k, HAS_TTL, 5, b"t") if ttl_every and i % ttl_every == 0 else (k, 0, 0, b"v%d" % i)
        for i, k in enumerate(keys)
    ]
    table = _build(tmp_path / "000002.sst", entries, block_size=200)
    assert len(table.block_offsets) > 3 * FENCE_STEP
    last_keys = table.block_last_keys
    probes = [b"", b"\xff" * 13, keys[0], keys[-1], *last_keys[:: FENCE_STEP // 2]]
    probes += [k + b"\x00" for k in last_keys[FENCE_STEP - 1 :: FENCE_STEP]]
    probes += [rng.choice(keys) for _ in range(40)]
    for lo in probes:
        for hi in [None, rng.choice(keys), lo + b"\x00"]:
            for n in (1, 2, 10, 60):
                for reverse in (False, True):
                    want = list(table.iter_range(lo, hi, reverse))[:n]
                    assert table.first_entries(lo, hi, reverse, n) == want, (lo, hi, n, reverse)
