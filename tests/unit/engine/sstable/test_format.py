"""The SSTable footer: version 2 records the table's sequence range; version 1 still reads."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import shaledb
from shaledb.engine.block_cache import BlockCache
from shaledb.engine.checksum import crc32c
from shaledb.engine.fs import FileSystem
from shaledb.engine.sstable import SSTable, SSTableBuilder
from shaledb.engine.sstable.format import (
    FOOTER_SIZE,
    FOOTER_V1_SIZE,
    MAGIC,
    UNKNOWN_SEQS,
    BlockHandle,
    Footer,
    decode_handles,
    seq_hull,
)
from shaledb.errors import CorruptionError


def test_version_2_round_trip_with_its_sequence_range() -> None:
    footer = Footer(BlockHandle(10, 20), BlockHandle(30, 0), 7, 100, 250, 3)
    raw = footer.encode()
    assert len(raw) == FOOTER_SIZE == 68
    assert raw[-16:-12] == (2).to_bytes(4, "little")
    assert Footer.decode(raw) == footer and Footer.decode(raw).seq_range == (100, 250)
    assert Footer.decode(b"junk" * 9 + raw, "t.sst") == footer  # the last bytes decide


def _v1(index: BlockHandle, filt: BlockHandle, entries: int) -> bytes:
    head = struct.pack("<QIQIQI", *index, *filt, entries, 1)
    return head + struct.pack("<IQ", crc32c(head), MAGIC)


def test_version_1_footers_still_read_with_an_unknown_range() -> None:
    raw = _v1(BlockHandle(1, 2), BlockHandle(3, 4), 5)
    assert len(raw) == FOOTER_V1_SIZE == 48
    footer = Footer.decode(b"\x00" * 16 + raw)
    assert footer.entries == 5 and footer.seq_range == UNKNOWN_SEQS


@pytest.mark.parametrize("version", [0, 3, 2**31])
def test_unknown_version_is_refused(version: int) -> None:
    raw = bytearray(Footer(BlockHandle(0, 0), BlockHandle(0, 0), 0).encode())
    raw[-16:-12] = version.to_bytes(4, "little")
    with pytest.raises(CorruptionError, match="version"):
        Footer.decode(bytes(raw), "t.sst")


def test_a_footer_flip_in_the_sequence_range_fails_the_checksum() -> None:
    raw = bytearray(Footer(BlockHandle(0, 9), BlockHandle(0, 0), 1, 5, 6).encode())
    raw[35] ^= 1
    with pytest.raises(CorruptionError, match="checksum"):
        Footer.decode(bytes(raw), "t.sst")


def test_seq_hull() -> None:
    assert seq_hull([(5, 9), (1, 3), (7, 12)]) == (1, 12)
    assert seq_hull([]) == UNKNOWN_SEQS
    assert seq_hull([(5, 9), UNKNOWN_SEQS]) == UNKNOWN_SEQS


def test_builder_records_the_range_and_the_reader_exposes_it(tmp_path: Path) -> None:
    path = str(tmp_path / "000001.sst")
    builder = SSTableBuilder(FileSystem(), path, 4096, 10, "none", 1, (40, 90))
    builder.add(b"a", 0, 0, b"1")
    builder.finish()
    assert SSTable(FileSystem(), path, 1, BlockCache(0)).seq_range == (40, 90)


def test_flushes_and_compactions_record_ranges_that_cover_their_writes(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    with shaledb.open(str(directory), memtable_size=1000) as db:
        for i in range(10):
            db.put(f"a{i}", "x")  # sequence numbers 1..10
        db.flush()
        for i in range(5):
            db.put(f"b{i}", "y")  # 11..15
        db.flush()
        ranges = sorted(
            SSTable(FileSystem(), str(p), 0, BlockCache(0)).seq_range
            for p in directory.glob("*.sst")
        )
        assert ranges == [(1, 10), (11, 15)]
        db.compact()
    tables = list(directory.glob("*.sst"))
    assert [SSTable(FileSystem(), str(p), 0, BlockCache(0)).seq_range for p in tables] == [(1, 15)]


def test_handles_decode_in_one_call_as_one_by_one() -> None:
    handles = [BlockHandle(i * 4101, 4096 + i) for i in range(300)]
    offsets, sizes = decode_handles([h.encode() for h in handles])
    assert list(zip(offsets, sizes, strict=True)) == [tuple(h) for h in handles]
    assert decode_handles([]) == ([], [])


@pytest.mark.parametrize("cut", [1, -1])
def test_a_handle_of_the_wrong_size_is_corruption_naming_the_file(cut: int) -> None:
    good = BlockHandle(10, 20).encode()
    bad = good[:-1] if cut < 0 else good + b"\0"
    with pytest.raises(CorruptionError, match=r"t\.sst: index entry at offset 7 holds"):
        decode_handles([good, bad, good], "t.sst", 7)
