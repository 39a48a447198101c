"""check_hashlog, repair_hashlog, backup_hashlog and the identity tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import shaledb
from shaledb.engine.check import check_directory
from shaledb.engine.detect import detect_engine
from shaledb.engine.hashlog import (
    HashLogEngine,
    backup_hashlog,
    check_hashlog,
    is_hashlog_data_file,
    is_hashlog_directory,
    repair_hashlog,
)
from shaledb.engine.hashlog.records import ENTRY_SIZE, HEADER_SIZE
from shaledb.engine.lsm import LSMEngine
from shaledb.engine.repair import repair_directory
from shaledb.errors import CorruptionError, LockedError, StorageError
from shaledb.options import Options

SMALL = {"fsync": "never", "hashlog_segment_bytes": 1024}


def fill(directory: Path, n: int = 120) -> dict[bytes, bytes]:
    engine = HashLogEngine(str(directory), Options(**SMALL))
    model = {}
    for i in range(n):
        key, value = f"k{i % 40:02d}".encode(), f"v{i}".encode() * 3
        engine.put(0, key, value)
        model[key] = value
    engine.save_catalog({"version": 1})
    engine.close()
    return model


def contents(directory: Path) -> dict[bytes, bytes]:
    with_engine = HashLogEngine(str(directory))
    try:
        return {k: v for k, _, _, v in with_engine.scan(b"", None)}
    finally:
        with_engine.close()


def test_identity(tmp_path: Path) -> None:
    fill(tmp_path / "db")
    assert is_hashlog_directory(str(tmp_path / "db"))
    assert is_hashlog_data_file(str(tmp_path / "db" / "000001.hld"))
    assert not is_hashlog_data_file(str(tmp_path / "db" / "HASHLOG"))
    assert not is_hashlog_data_file(str(tmp_path / "nothing"))
    LSMEngine(str(tmp_path / "lsm")).close()
    assert not is_hashlog_directory(str(tmp_path / "lsm"))
    with pytest.raises(StorageError, match="LSM database"):
        HashLogEngine(str(tmp_path / "lsm"))


def test_check_a_healthy_store(tmp_path: Path) -> None:
    fill(tmp_path / "db")
    report = check_hashlog(str(tmp_path / "db"))
    assert report.healthy, report.damage
    segments = len(list((tmp_path / "db").glob("*.hld")))
    assert report.summary == f"{segments} data segments, 120 records, index files ok"


def test_check_refuses_a_store_in_use(tmp_path: Path) -> None:
    engine = HashLogEngine(str(tmp_path / "db"))
    try:
        with pytest.raises(LockedError):
            check_hashlog(str(tmp_path / "db"))
    finally:
        engine.close()


def test_check_finds_damage_and_stale_indexes(tmp_path: Path) -> None:
    fill(tmp_path / "db")
    first = tmp_path / "db" / "000001.hld"
    data = bytearray(first.read_bytes())
    data[HEADER_SIZE + ENTRY_SIZE + 2] ^= 0xFF
    first.write_bytes(bytes(data))
    (tmp_path / "db" / "000002.hli").unlink()
    report = check_hashlog(str(tmp_path / "db"))
    assert not report.healthy
    assert any(f"{first}" in d and f"offset {HEADER_SIZE}" in d for d in report.damage)
    assert report.index_files_rebuilt == 1 and "1 index file(s) to rebuild" in report.summary


def test_repair_keeps_every_readable_record_and_moves_inputs_aside(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    model = fill(directory)
    first = directory / "000001.hld"
    data = bytearray(first.read_bytes())
    data[HEADER_SIZE + ENTRY_SIZE + 2] ^= 0xFF  # the first record of the first segment
    first.write_bytes(bytes(data))
    for index in directory.glob("*.hli"):
        index.unlink()  # so the open reads the damaged data
    with pytest.raises(CorruptionError):
        HashLogEngine(str(directory))
    report = repair_hashlog(str(directory))
    assert report.damaged_places == 1 and report.keys_kept == len(model)
    assert "000001.hld" in report.moved and (directory / "lost" / "000001.hld").exists()
    # Every key survives: the damaged record was an old version (later ones overwrite k00).
    assert contents(directory) == model
    assert check_hashlog(str(directory)).healthy
    engine = HashLogEngine(str(directory))
    assert engine.load_catalog() == {"version": 1}
    engine.close()


def test_repair_two_file_form_keeps_the_old_pair_in_lost(tmp_path: Path) -> None:
    data, index = tmp_path / "data", tmp_path / "index"
    engine = HashLogEngine.two_files(str(data), str(index), Options(fsync="never"))
    for i in range(30):
        engine.put(0, f"k{i}".encode(), b"v" * 20)
    engine.close()
    raw = bytearray(data.read_bytes())
    raw[HEADER_SIZE + 3] ^= 0xFF
    data.write_bytes(bytes(raw))
    report = repair_hashlog(str(data), str(index))
    assert report.keys_kept == 29 and report.damaged_places == 1
    assert sorted(p.name for p in (tmp_path / "lost").iterdir()) == ["data", "index"]
    assert check_hashlog(str(data), str(index)).healthy
    engine = HashLogEngine.two_files(str(data), str(index))
    assert engine.get(b"k0") is None and engine.get(b"k29") == (0, 0, b"v" * 20)
    engine.close()


def test_backup_of_a_live_store_opens(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    model = fill(directory)
    engine = HashLogEngine(str(directory), Options(**SMALL))
    engine.put(0, b"while-open", b"acknowledged before the backup")
    model[b"while-open"] = b"acknowledged before the backup"
    copied = backup_hashlog(str(directory), str(tmp_path / "copy"))
    engine.close()
    assert copied > 0
    assert contents(tmp_path / "copy") == model
    with pytest.raises(StorageError, match="not empty"):
        backup_hashlog(str(directory), str(tmp_path / "copy"))


def test_backup_of_the_two_file_form(tmp_path: Path) -> None:
    engine = HashLogEngine.two_files(str(tmp_path / "d"), str(tmp_path / "i"))
    engine.put(0, b"a", b"1")
    engine.save_catalog({"version": 1})
    engine.close()
    assert backup_hashlog(str(tmp_path / "d"), str(tmp_path / "d2")) > 0
    engine = HashLogEngine.two_files(str(tmp_path / "d2"), str(tmp_path / "i2"))
    assert engine.get(b"a") == (0, 0, b"1") and engine.load_catalog() == {"version": 1}
    engine.close()


def test_check_finds_an_index_file_that_disagrees_with_its_data(tmp_path: Path) -> None:
    from shaledb.engine.hashlog.index_file import IndexItems, decode_index, encode_index

    fill(tmp_path / "db", 10)
    path = tmp_path / "db" / "000001.hli"
    index = decode_index(path.read_bytes(), str(path))
    items = IndexItems()
    for seq, flags, key, expire_ms, offset, length in index.records:
        items.add(seq, flags, key, expire_ms, offset + (1 if seq == 5 else 0), length)
    path.write_bytes(encode_index(index.file_id, index.covers, items))  # a good CRC
    report = check_hashlog(str(tmp_path / "db"))
    assert not report.healthy
    assert any("disagree" in d and str(path) in d for d in report.damage)


def test_a_newest_segment_without_header_is_a_creation_cut_short(tmp_path: Path) -> None:
    model = fill(tmp_path / "db")
    numbers = sorted(int(p.stem) for p in (tmp_path / "db").glob("*.hld"))
    cut = tmp_path / "db" / f"{numbers[-1] + 1:06d}.hld"
    cut.write_bytes(bytes(10))  # a power cut kept the name, not the header
    report = check_hashlog(str(tmp_path / "db"))
    assert report.healthy and any("creation cut short" in n for n in report.notes)
    assert contents(tmp_path / "db") == model
    assert not cut.exists()


def test_a_store_that_lost_its_identity_file_points_to_repair_which_restores_it(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "db"
    model = fill(directory)
    (directory / "HASHLOG").unlink()
    before = sorted(p.name for p in directory.iterdir())
    assert detect_engine(str(directory)) == "hashlog"
    with pytest.raises(CorruptionError, match="shaledb repair") as caught:
        shaledb.open(str(directory))
    assert "HASHLOG: missing" in str(caught.value) and "000001.hld" in str(caught.value)
    assert sorted(p.name for p in directory.iterdir()) == before  # nothing changed
    checked = check_directory(str(directory))
    assert not checked.healthy and any("HASHLOG" in d for d in checked.damage)
    repair_directory(str(directory))
    assert (directory / "HASHLOG").exists()
    assert contents(directory) == model
    assert check_directory(str(directory)).healthy


def test_a_lost_segment_whose_index_file_remains_is_reported_not_ignored(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "db"
    fill(directory)
    segments = sorted(p.name for p in directory.glob("*.hld"))
    assert len(segments) > 2
    lost = directory / segments[1]
    lost.unlink()  # deleted by hand, or by a bad disk; its index file still says it was
    before = sorted(p.name for p in directory.iterdir())
    with pytest.raises(CorruptionError, match="index file of a data segment that is missing"):
        HashLogEngine(str(directory))
    assert sorted(p.name for p in directory.iterdir()) == before  # the evidence stays
    report = check_hashlog(str(directory))
    assert any(lost.name[:-4] + ".hli" in d and "missing" in d for d in report.damage)
    repaired = repair_hashlog(str(directory))
    assert any("missing data segment" in d for d in repaired.dropped)
    assert (directory / "lost" / (lost.name[:-4] + ".hli")).exists()
    assert check_hashlog(str(directory)).healthy
    assert len(contents(directory)) > 0
