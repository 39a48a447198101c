"""Fuzzing the SSTable reader: damaged table files, random files, and block contents
that pass their checksum but are malformed (shaledb.engine.sstable, shaledb.engine.block).

Opening a damaged file and reading it (``get``, ``iter_range`` both ways, ``columns_in``,
``salvage``) raises nothing but ShaleDB errors, within the deadline and a bounded
allocation (fuzz_support), and what it does return is what was written: damage is
detected, never served.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from fuzz_support import FAST, SLOW, bounded, mutated
from hypothesis import given
from hypothesis import strategies as st

from shaledb.engine import block as blocks
from shaledb.engine.block_cache import BlockCache
from shaledb.engine.checksum import CRC, crc32c
from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.fs import FileSystem
from shaledb.engine.sstable import SSTable
from shaledb.engine.sstable.builder import SSTableBuilder
from shaledb.errors import CorruptionError

ENTRIES = st.dictionaries(
    st.binary(min_size=1, max_size=16),
    st.tuples(st.sampled_from([0, TOMBSTONE, HAS_TTL]), st.binary(max_size=60)),
    min_size=1,
    max_size=60,
)


@pytest.fixture(scope="module")
def workdir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="shaledb-fuzz-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def build(path: str, entries: dict[bytes, tuple[int, bytes]], compression: str) -> bytes:
    builder = SSTableBuilder(FileSystem(), path, 128, 10, compression, 1)
    for key in sorted(entries):
        flags, value = entries[key]
        builder.add(key, flags, 7 if flags & HAS_TTL else 0, b"" if flags & TOMBSTONE else value)
    builder.finish()
    with open(path, "rb") as f:
        return f.read()


def expected(entries: dict[bytes, tuple[int, bytes]]) -> dict[bytes, tuple[int, int, bytes]]:
    return {
        k: (f, 7 if f & HAS_TTL else 0, b"" if f & TOMBSTONE else v)
        for k, (f, v) in entries.items()
    }


def read_table(path: str, want: dict[bytes, tuple[int, int, bytes]] | None) -> None:
    """Open and read the table at ``path`` every way; with ``want``, what reads return
    must match it (a read may instead raise CorruptionError)."""
    try:
        table = SSTable(FileSystem(), path, 1, BlockCache(1 << 20))
    except CorruptionError:
        return
    for key in list(want or ())[:20] + [b"", b"\xff" * 20]:
        try:
            found = table.get(key)
        except CorruptionError:
            continue
        if want is not None:
            assert found == want.get(key), f"damaged table served {found!r} for {key!r}"
    for reverse in (False, True):
        try:
            got = list(table.iter_range(b"", None, reverse=reverse))
        except CorruptionError:
            continue
        if want is not None:
            assert {k: (f, e, v) for k, f, e, v in got} == want
    try:
        keys, flags, values = table.columns_in(None, None)
    except CorruptionError:
        pass
    else:
        assert len(keys) == len(flags) == len(values)
    entries, _ = table.salvage()
    if want is not None:
        for key, f, e, v in entries:
            assert want.get(key) == (f, e, v), f"salvage produced {key!r} that was not written"


def check_damaged_table(workdir: str, entries: dict, compression: str, data: st.DataObject) -> None:
    path = os.path.join(workdir, "000001.sst")
    original = build(path, entries, compression)
    damaged = data.draw(mutated(original))
    with open(path, "wb") as f:
        f.write(damaged)
    with bounded(len(damaged)):
        read_table(path, expected(entries) if damaged != original else None)


def check_random_table(workdir: str, data: bytes) -> None:
    path = os.path.join(workdir, "000002.sst")
    with open(path, "wb") as f:
        f.write(data)
    with bounded(len(data)):
        read_table(path, None)


def check_block(contents: bytes, compression: int) -> None:
    """Contents sealed with a valid checksum, then unsealed and decoded: a malformed
    block that checks out (a writer bug, a checksum collision) is still only an error."""
    body = contents + bytes((compression,))
    sealed = body + CRC.pack(crc32c(body))
    with bounded(len(contents)):
        block = blocks.Block(blocks.unseal(sealed, "fuzz.sst", 0, "data block"), "fuzz.sst", 0)
        for i in range(len(block)):
            block.entry(i)
        list(block.iter_from(0, None))
        list(block.iter_down(len(block) - 1, b""))
        block.get(b"k")


@FAST
@given(ENTRIES, st.sampled_from(["none", "lz4"]), st.data())
def test_damaged_tables_into_the_reader(
    workdir: str, entries: dict, compression: str, data: st.DataObject
) -> None:
    check_damaged_table(workdir, entries, compression, data)


@FAST
@given(st.binary(max_size=2048))
def test_random_files_into_the_reader(workdir: str, data: bytes) -> None:
    check_random_table(workdir, data)


@FAST
@given(st.binary(max_size=512))
def test_malformed_blocks_that_pass_their_checksum(contents: bytes) -> None:
    check_block(contents, blocks.COMPRESSION_NONE)


@FAST
@given(st.binary(max_size=512))
def test_malformed_lz4_blocks_that_pass_their_checksum(contents: bytes) -> None:
    check_block(contents, blocks.COMPRESSION_LZ4)


@pytest.mark.slow
@SLOW
@given(ENTRIES, st.sampled_from(["none", "lz4"]), st.data())
def test_damaged_tables_into_the_reader_at_length(
    workdir: str, entries: dict, compression: str, data: st.DataObject
) -> None:
    check_damaged_table(workdir, entries, compression, data)


@pytest.mark.slow
@SLOW
@given(st.binary(max_size=4096))
def test_malformed_blocks_that_pass_their_checksum_at_length(contents: bytes) -> None:
    check_block(contents, blocks.COMPRESSION_NONE)
