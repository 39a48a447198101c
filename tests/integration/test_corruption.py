"""Damaged files: a torn WAL tail is dropped; any other damage is an error naming file and offset.

Each test writes a real database, closes it, damages one file the way a crash or a bad
disk would, and reopens it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import shaledb
from shaledb.engine.check import check_directory
from shaledb.engine.record_log import HEADER_SIZE, read_records
from shaledb.errors import CorruptionError


def only(directory: Path, suffix: str) -> Path:
    found = sorted(p for p in directory.iterdir() if p.name.endswith(suffix))
    assert len(found) == 1, found
    return found[0]


def record_starts(path: Path) -> list[int]:
    data = path.read_bytes()
    records, end = read_records(data, str(path), tail_may_be_torn=False)
    assert end == len(data)
    return [record.offset for record in records]


def flip(path: Path, offset: int, mask: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


@pytest.fixture
def wal_db(data_dir: Path) -> Path:
    """A closed database whose 20 writes are all in its (only) WAL."""
    with shaledb.open(str(data_dir)) as db:
        for i in range(20):
            db.put(f"key{i:02d}", f"value{i}" * 5)
    return only(data_dir, ".wal")


def check_reopen_drops_only_the_last_write(data_dir: Path) -> None:
    with shaledb.open(str(data_dir)) as db:
        assert dict(db.scan()) == {f"key{i:02d}": f"value{i}" * 5 for i in range(19)}
        db.put("after", "reopen")
        db.put("key19", "rewritten")
    with shaledb.open(str(data_dir)) as db:
        assert db.get("after") == "reopen" and db.get("key19") == "rewritten"
        assert db.count() == 21


# -- the WAL ---------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [1, HEADER_SIZE - 1, HEADER_SIZE + 3, -1])
def test_wal_truncated_inside_its_last_record(wal_db: Path, data_dir: Path, keep: int) -> None:
    last = record_starts(wal_db)[-1]
    size = wal_db.stat().st_size
    cut = size - 1 if keep == -1 else last + keep
    assert last < cut < size
    os.truncate(wal_db, cut)
    check_reopen_drops_only_the_last_write(data_dir)


@pytest.mark.parametrize("tail", [b"\x00" * 5000, b"\x00", os.urandom(300), b"\xff" * 64])
def test_wal_with_zeros_or_garbage_after_a_torn_record(
    wal_db: Path, data_dir: Path, tail: bytes
) -> None:
    last = record_starts(wal_db)[-1]
    os.truncate(wal_db, last + 20)
    with open(wal_db, "ab") as f:
        f.write(tail)
    check_reopen_drops_only_the_last_write(data_dir)


def test_wal_with_zeros_after_complete_records_loses_nothing(wal_db: Path, data_dir: Path) -> None:
    with open(wal_db, "ab") as f:
        f.write(b"\x00" * 4096)
    with shaledb.open(str(data_dir)) as db:
        assert db.count() == 20


def test_damage_in_the_middle_of_the_wal_is_an_error_naming_file_and_offset(
    wal_db: Path, data_dir: Path
) -> None:
    starts = record_starts(wal_db)
    damaged = starts[3]
    flip(wal_db, damaged + HEADER_SIZE + 15)
    with pytest.raises(CorruptionError) as info:
        shaledb.open(str(data_dir))
    message = str(info.value)
    assert wal_db.name in message and f"offset {damaged}" in message
    assert info.value.offset == damaged and info.value.path.endswith(wal_db.name)
    # The failed open released the directory and changed nothing: it fails the same way again.
    with pytest.raises(CorruptionError):
        shaledb.open(str(data_dir))
    assert wal_db.exists()


def test_damaged_record_header_in_the_middle_of_the_wal(wal_db: Path, data_dir: Path) -> None:
    damaged = record_starts(wal_db)[1]
    flip(wal_db, damaged + 5, 0xFF)  # the length field, now crossing the block boundary
    with pytest.raises(CorruptionError, match=f"offset {damaged}"):
        shaledb.open(str(data_dir))


def test_power_cut_hole_in_the_newest_wal_drops_it_and_what_follows(data_dir: Path) -> None:
    """Pages written back out of order, then a power cut: a hole of zeros with whole
    records after it. Everything from the hole on was written after the last fsync
    that completed, so the open drops it as it drops a torn tail."""
    with shaledb.open(str(data_dir), fsync="never") as db:
        for i in range(300):
            db.put(f"key{i:03d}", f"value{i}" * 40)
    wal = only(data_dir, ".wal")
    starts = record_starts(wal)
    hole = 8192
    kept = sum(1 for end in starts[1:] if end <= hole)
    assert 0 < kept < 299
    data = wal.read_bytes()
    wal.write_bytes(data[:hole] + bytes(4096) + data[hole + 4096 :])
    report = check_directory(str(data_dir))
    assert report.healthy, report.damage
    torn_at = starts[kept]
    assert [n for n in report.notes if f"at offset {torn_at}" in n and wal.name in n]
    with shaledb.open(str(data_dir)) as db:
        assert dict(db.scan()) == {f"key{i:03d}": f"value{i}" * 40 for i in range(kept)}
        db.put("after", "the cut")
    with shaledb.open(str(data_dir)) as db:
        assert db.count() == kept + 1 and db.get("after") == "the cut"


def test_a_hole_in_the_manifest_is_damage(data_dir: Path) -> None:
    """The same hole in a manifest (fsynced before every use) is an error, not a tail."""
    with shaledb.open(str(data_dir)) as db:
        for i in range(40):
            db.put(f"key{i:03d}", "v")
            db.flush()
    manifest = sorted(data_dir.glob("MANIFEST-*"))[-1]
    data = manifest.read_bytes()
    assert len(data) > 3 * 512
    manifest.write_bytes(data[:512] + bytes(512) + data[1024:])
    with pytest.raises(CorruptionError, match=manifest.name):
        shaledb.open(str(data_dir))


# -- SSTables --------------------------------------------------------------------------------


@pytest.fixture
def sst_db(data_dir: Path) -> tuple[Path, dict[str, str]]:
    """A closed database with one SSTable of many small blocks, and its contents."""
    contents = {f"key{i:04d}": f"value-{i}-" + "x" * 20 for i in range(600)}
    with shaledb.open(str(data_dir), block_size=256) as db:
        db.batch_put(list(contents), list(contents.values()))
        db.flush()
    return only(data_dir, ".sst"), contents


def test_flipped_bit_in_a_data_block_fails_reads_of_that_block_only(
    sst_db: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    sst, contents = sst_db
    flip(sst, 40)  # inside the first data block
    failed, good = [], []
    with shaledb.open(str(data_dir), block_size=256) as db:  # a fresh block cache
        for key, value in contents.items():
            try:
                got = db.get(key)
            except CorruptionError as exc:
                assert sst.name in str(exc) and "offset 0" in str(exc)
                failed.append(key)
            else:
                assert got == value
                good.append(key)
        # The first block's keys fail, every time; all the others read fine.
        assert failed and failed == sorted(contents)[: len(failed)]
        assert len(failed) < 30 and len(good) == len(contents) - len(failed)
        with pytest.raises(CorruptionError):
            db.get(failed[0])
        with pytest.raises(CorruptionError, match=sst.name):
            list(db.scan())
        assert list(db.scan(start=good[0])) == [(k, contents[k]) for k in good]


def test_flipped_bit_is_not_hidden_by_a_warm_cache_after_reopen(
    sst_db: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    sst, contents = sst_db
    first = sorted(contents)[0]
    with shaledb.open(str(data_dir)) as db:
        assert db.get(first) == contents[first]
    flip(sst, 10)
    with shaledb.open(str(data_dir)) as db, pytest.raises(CorruptionError):
        db.get(first)


@pytest.mark.parametrize("back", [1, 8, 12, 30, 48])
def test_flipped_footer_byte_fails_the_open_naming_the_file(
    sst_db: tuple[Path, dict[str, str]], data_dir: Path, back: int
) -> None:
    sst, _ = sst_db
    flip(sst, sst.stat().st_size - back)
    with pytest.raises(CorruptionError) as info:
        shaledb.open(str(data_dir))
    assert sst.name in str(info.value)


def test_truncated_table_fails_the_open(
    sst_db: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    sst, _ = sst_db
    os.truncate(sst, sst.stat().st_size - 100)
    with pytest.raises(CorruptionError, match=sst.name):
        shaledb.open(str(data_dir))


def test_missing_live_table_fails_the_open(
    sst_db: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    sst, _ = sst_db
    sst.unlink()
    with pytest.raises(CorruptionError, match="missing"):
        shaledb.open(str(data_dir))


def test_corruption_met_by_a_compaction_is_reported_not_hidden(
    sst_db: tuple[Path, dict[str, str]], data_dir: Path
) -> None:
    sst, contents = sst_db
    flip(sst, 40)
    with shaledb.open(str(data_dir)) as db, pytest.raises(CorruptionError, match=sst.name):
        db.compact()
    # Nothing was lost by the failed compaction: the good blocks still read.
    with shaledb.open(str(data_dir)) as db:
        last = sorted(contents)[-1]
        assert db.get(last) == contents[last]


# -- the manifest and CURRENT ---------------------------------------------------------------


def test_damage_inside_the_manifest_fails_the_open(data_dir: Path) -> None:
    with shaledb.open(str(data_dir)) as db:
        db.create_namespace("ns").create_table("t")
        db.put("k", "v")
        db.flush()
    manifest = data_dir / (data_dir / "CURRENT").read_text().splitlines()[0]
    flip(manifest, HEADER_SIZE + 3)
    with pytest.raises(CorruptionError, match=manifest.name):
        shaledb.open(str(data_dir))


def test_current_naming_a_missing_manifest(data_dir: Path) -> None:
    with shaledb.open(str(data_dir)) as db:
        db.put("k", "v")
    (data_dir / "CURRENT").write_text("MANIFEST-999999\n")
    with pytest.raises(CorruptionError, match="MANIFEST-999999"):
        shaledb.open(str(data_dir))
