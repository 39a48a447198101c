"""Recovery proves a dropped manifest tail was never acted on, and WALs are complete.

Each test damages a real directory the way issue 9 found ShaleDB losing data silently:
a flipped bit or a cut in the manifest after an edit that was acted on, an older live
WAL cut at a record boundary, emptied or deleted, a torn WAL plus a crash during the
next open. The open must either keep every acknowledged write or refuse with a
CorruptionError that names the file, and never delete a table it cannot prove dead.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from shaledb.engine import lsm
from shaledb.engine.batch import decode_batch
from shaledb.engine.check import check_directory
from shaledb.engine.lsm import LSMEngine
from shaledb.engine.record_log import read_records
from shaledb.engine.repair import repair_directory
from shaledb.errors import CorruptionError
from shaledb.options import Options

OPTS = Options(memtable_entries=10, background_compaction=False)


def put_keys(engine: LSMEngine, start: int, count: int) -> None:
    for i in range(start, start + count):
        engine.put(0, f"k{i:04d}".encode(), f"v{i}".encode())


def all_keys(engine: LSMEngine) -> dict[bytes, bytes]:
    return {key: value for key, _flags, _expire, value in engine.scan(b"", None)}


def names(directory: Path, suffix: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(suffix))


def manifest_of(directory: Path) -> Path:
    return directory / (directory / "CURRENT").read_text().splitlines()[0]


def record_ends(path: Path) -> list[int]:
    """Where each record ends (the next one starts; the last ends at the file's end)."""
    records, end = read_records(path.read_bytes(), str(path), tail_may_be_torn=False)
    return [r.offset for r in records[1:]] + [end]


def flushed_database(directory: Path) -> None:
    """A database whose manifest's last edit is a flush that deleted its WAL."""
    engine = LSMEngine(str(directory), OPTS)
    put_keys(engine, 0, 5)
    engine.flush()
    engine.close()


def test_a_flipped_bit_in_the_last_edit_is_not_taken_for_a_torn_write(data_dir: Path) -> None:
    flushed_database(data_dir)
    manifest = manifest_of(data_dir)
    tables = names(data_dir, ".sst")
    data = bytearray(manifest.read_bytes())
    data[record_ends(manifest)[-2] + 12] ^= 0x10  # inside the flush edit's payload
    manifest.write_bytes(bytes(data))
    with pytest.raises(CorruptionError) as info:
        LSMEngine(str(data_dir), OPTS)
    assert ".wal" in str(info.value) and manifest.name in str(info.value)
    assert names(data_dir, ".sst") == tables  # nothing deleted


@pytest.mark.parametrize("how", ["truncated", "zeroed"])
def test_a_manifest_cut_after_an_acted_on_edit_is_corruption(data_dir: Path, how: str) -> None:
    flushed_database(data_dir)
    manifest = manifest_of(data_dir)
    tables = names(data_dir, ".sst")
    keep = record_ends(manifest)[0]  # only the snapshot written by the open
    data = manifest.read_bytes()
    cut = data[:keep] if how == "truncated" else data[:keep] + bytes(len(data) - keep)
    manifest.write_bytes(cut)
    with pytest.raises(CorruptionError, match="missing"):
        LSMEngine(str(data_dir), OPTS)
    assert names(data_dir, ".sst") == tables


def test_a_truncated_manifest_that_lost_a_compaction_names_the_manifest(data_dir: Path) -> None:
    engine = LSMEngine(str(data_dir), OPTS)
    for round_ in range(3):
        put_keys(engine, round_ * 5, 5)
        engine.flush()
    engine.compact()
    engine.close()
    manifest = manifest_of(data_dir)
    manifest.write_bytes(manifest.read_bytes()[: record_ends(manifest)[-2]])
    with pytest.raises(CorruptionError) as info:
        LSMEngine(str(data_dir), OPTS)
    message = str(info.value)
    assert message.startswith(str(manifest)) and "lost the edits" in message


@pytest.fixture
def live_wals(data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The image of a process killed while two flushes were pending: three live WALs,
    the two frozen ones full and the newest empty."""
    release = threading.Event()
    real_flush = lsm.flush_immutable

    def held_flush(*args: object) -> None:
        release.wait()
        real_flush(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(lsm, "flush_immutable", held_flush)
    engine = LSMEngine(str(data_dir), OPTS)
    put_keys(engine, 0, 20)  # two rotations; a third would wait for the held flush
    image = tmp_path / "image"
    shutil.copytree(data_dir, image)  # what kill -9 would leave: every write is in the OS
    release.set()
    engine.close()
    monkeypatch.setattr(lsm, "flush_immutable", real_flush)
    assert len(names(image, ".wal")) == 3
    return image


def test_the_image_with_three_live_wals_recovers_everything(live_wals: Path) -> None:
    engine = LSMEngine(str(live_wals), OPTS)
    try:
        assert len(all_keys(engine)) == 20
    finally:
        engine.close()


@pytest.mark.parametrize("damage", ["cut", "emptied", "deleted"])
def test_an_older_live_wal_losing_records_is_corruption(live_wals: Path, damage: str) -> None:
    older = live_wals / names(live_wals, ".wal")[0]
    if damage == "cut":
        older.write_bytes(older.read_bytes()[: record_ends(older)[-2]])
    elif damage == "emptied":
        older.write_bytes(b"")
    else:
        older.unlink()
    with pytest.raises(CorruptionError) as info:
        LSMEngine(str(live_wals), OPTS)
    assert ".wal" in str(info.value)


def test_the_newest_wal_cut_below_the_manifests_last_sequence_is_corruption(
    data_dir: Path,
) -> None:
    engine = LSMEngine(str(data_dir), OPTS)
    put_keys(engine, 0, 5)
    engine.save_catalog({"version": 1})  # an edit: the log is durable up to here
    engine.close()
    wal = data_dir / names(data_dir, ".wal")[-1]
    wal.write_bytes(wal.read_bytes()[: record_ends(wal)[2]])
    with pytest.raises(CorruptionError, match="lost records"):
        LSMEngine(str(data_dir), OPTS)


def test_a_torn_wal_then_a_crash_during_the_next_open_still_opens(live_wals: Path) -> None:
    newest = live_wals / names(live_wals, ".wal")[1]  # the newest holding records
    records, _ = read_records(newest.read_bytes(), str(newest), tail_may_be_torn=False)
    seq, _ = decode_batch(records[-1].payload)
    with open(newest, "ab") as f:
        f.write(b"\x07\x00\x00\x00\x30\x00\x00\x00\x01partial")  # a torn record
    # An open that crashed after starting its new WAL and writing its table.
    number = int(names(live_wals, ".wal")[-1][:6]) + 5
    (live_wals / f"{number:06d}.wal").write_bytes(b"")
    for _ in range(2):
        engine = LSMEngine(str(live_wals), OPTS)
        try:
            assert len(all_keys(engine)) == 20
            assert engine.stats()["sequence"] >= seq
        finally:
            engine.close()


def test_unlisted_tables_are_moved_aside_when_the_manifest_ends_in_damage(
    data_dir: Path,
) -> None:
    engine = LSMEngine(str(data_dir), OPTS)
    put_keys(engine, 0, 5)
    engine.close()
    stray = data_dir / "000900.sst"
    stray.write_bytes(b"not known to the manifest")
    with open(manifest_of(data_dir), "ab") as f:
        f.write(b"\x00" * 13)  # a torn tail: dropped, but the open cannot vouch for tables
    engine = LSMEngine(str(data_dir), OPTS)
    try:
        assert len(all_keys(engine)) == 5
    finally:
        engine.close()
    assert not stray.exists()
    assert (data_dir / "lost" / "000900.sst").read_bytes() == b"not known to the manifest"


def test_the_newest_wal_deleted_is_corruption_and_check_says_so(data_dir: Path) -> None:
    """Writes after the manifest's last edit are only in the WAL it names: that WAL
    missing is a loss to report, not an empty database to open."""
    engine = LSMEngine(str(data_dir), OPTS)
    put_keys(engine, 0, 5)
    engine.close()
    wal = data_dir / names(data_dir, ".wal")[-1]
    wal.unlink()
    report = check_directory(str(data_dir))
    assert not report.healthy and any(wal.name in d and "missing" in d for d in report.damage)
    with pytest.raises(CorruptionError, match="missing") as info:
        LSMEngine(str(data_dir), OPTS)
    assert wal.name in str(info.value) and "shaledb repair" in str(info.value)
    repair_directory(str(data_dir))  # what the message offers: open with what is left
    LSMEngine(str(data_dir), OPTS).close()


def test_a_repaired_directory_opens_without_a_wal(data_dir: Path) -> None:
    engine = LSMEngine(str(data_dir), OPTS)
    put_keys(engine, 0, 5)
    engine.close()
    repair_directory(str(data_dir))
    assert names(data_dir, ".wal") == []
    engine = LSMEngine(str(data_dir), OPTS)
    try:
        assert len(all_keys(engine)) == 5
    finally:
        engine.close()
