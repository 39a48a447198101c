"""I/O errors injected by the FaultFS: disk full, failed fsyncs, failed table writes.

Each test runs a database on a :class:`~fault_fs.FaultFS`, arms a :class:`~fault_fs.Fault`
just before the operation under test, and checks three things: the caller gets a clear
:class:`~shaledb.errors.StorageError`; the engine does not go on as if nothing happened
(writes stop where the issue says they must); and after a reopen on a healthy disk every
acknowledged write is there, nothing that raised is, and no file is left that the
manifest does not account for. The scenarios are listed in docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_fs import Fault, FaultFS

import shaledb
from shaledb.engine.check import check_directory
from shaledb.engine.lsm import LSMEngine
from shaledb.errors import ShaleDBError, StorageError
from shaledb.options import Options


def options(**overrides: object) -> Options:
    settings: dict[str, object] = dict(
        memtable_entries=8,
        block_size=256,
        target_file_bytes=1024,
        compression="none",
        background_compaction=False,
        background_process=False,  # the recorded file system sees every table write
    )
    settings.update(overrides)
    return Options(**settings)  # type: ignore[arg-type]


@pytest.fixture
def directory(scratch: Path) -> str:
    return str(scratch / "db")


@contextlib.contextmanager
def faulty_db(directory: str, **overrides: object) -> Iterator[tuple[shaledb.DB, FaultFS]]:
    fs = FaultFS(directory)
    db = shaledb.DB.over(LSMEngine(directory, options(**overrides), fs=fs))
    try:
        yield db, fs
    finally:
        with contextlib.suppress(ShaleDBError):
            db.close()


def reopen(directory: str) -> shaledb.DB:
    """The database on a healthy disk (no faults)."""
    return shaledb.DB.over(LSMEngine(directory, options()))


def assert_accounted_for(directory: str) -> None:
    """``check`` finds nothing wrong and every table file on disk is live."""
    report = check_directory(directory)
    assert report.healthy, report.damage
    engine = LSMEngine(directory, options())
    try:
        live = engine._versions.current.numbers()
    finally:
        engine.close()
    tables = {int(n[:-4]) for n in os.listdir(directory) if n.endswith(".sst")}
    assert tables <= live, f"table files no manifest lists: {sorted(tables - live)}"


def fill(db: shaledb.DB, count: int, prefix: str = "k", tag: str = "v") -> dict[str, str]:
    written = {f"{prefix}{i:03d}": f"{tag}{i}" for i in range(count)}
    for key, value in written.items():
        db.put(key, value)
    return written


# -- disk full during a manifest append ---------------------------------------------------


def test_disk_full_during_a_catalog_edit_stops_writes_and_reopens(directory: str) -> None:
    with faulty_db(directory) as (db, fs):
        acked = fill(db, 20)
        db.flush()
        fs.faults.append(Fault("write", "manifest", error="ENOSPC", times=None))
        with pytest.raises(StorageError, match="No space left"):
            db.namespace("default").create_table("orders")
        # Half an edit may be in the manifest: nothing may be logged after it, and the
        # engine must say so instead of acknowledging writes it cannot make durable.
        with pytest.raises(StorageError):
            db.put("after", "the failure")
        with pytest.raises(StorageError):
            db.flush()
        fs.faults.clear()
    with reopen(directory) as db:
        assert dict(db.scan()) == acked
        assert db.namespace("default").list_tables() == ["default"]  # the edit was torn
        db.put("later", "write")  # and the database is writable again
    assert_accounted_for(directory)


def test_disk_full_during_a_flush_edit_stops_writes_and_reopens(directory: str) -> None:
    with faulty_db(directory) as (db, fs):
        acked = fill(db, 20)
        db.flush()
        fs.faults.append(Fault("write", "manifest", error="ENOSPC", times=None))
        acked.update(fill(db, 7, prefix="m"))  # below the memtable's size: no flush yet
        with pytest.raises(StorageError):
            db.flush()
        assert fs.faults[0].fired, "the flush never wrote its edit"
        with pytest.raises(StorageError):
            db.put("after", "the failure")
        fs.faults.clear()
    with reopen(directory) as db:
        assert dict(db.scan()) == acked
    assert_accounted_for(directory)


# -- a manifest fsync error during compact(), then a second compaction ---------------------


def test_manifest_fsync_error_during_compaction_then_a_second_compaction(directory: str) -> None:
    with faulty_db(directory) as (db, fs):
        expected = fill(db, 40, tag="old")
        db.flush()
        fs.faults.append(Fault("sync", "manifest"))
        with pytest.raises(StorageError):
            db.compact()
        assert fs.faults[0].fired
        fs.faults.clear()
        # Whatever the engine accepts now must be what a reopen reads back.
        for key in list(expected):
            try:
                db.put(key, "new" + key)
            except StorageError:
                break
            expected[key] = "new" + key
        with contextlib.suppress(StorageError):
            db.compact()
    engine = LSMEngine(directory, options())
    try:
        level1 = sorted(engine._versions.current.levels[1], key=lambda f: f.smallest)
        for before, after in zip(level1, level1[1:]):
            assert before.largest < after.smallest, (
                f"level 1 tables {before.number} and {after.number} overlap"
            )
    finally:
        engine.close()
    with reopen(directory) as db:
        assert dict(db.scan()) == expected
    assert_accounted_for(directory)


# -- a WAL fsync error with fsync="always" -------------------------------------------------


def test_wal_fsync_error_in_always_mode(directory: str) -> None:
    with faulty_db(directory, fsync="always") as (db, fs):
        acked = fill(db, 5)
        fs.faults.append(Fault("sync", "wal"))
        with pytest.raises(StorageError, match="fsync"):
            db.put("raised", "never acknowledged")
        fs.faults.clear()
        # Not visible: the memtable may hold it, so reads refuse until a reopen.
        with pytest.raises(StorageError, match="reopened"):
            db.get("raised")
        for i in range(3):  # every later write raises
            with pytest.raises(StorageError):
                db.put(f"later{i}", "refused")
    with reopen(directory) as db:
        assert dict(db.scan()) == acked  # and none is replayed


def test_wal_fsync_error_in_always_mode_is_not_visible(directory: str) -> None:
    with faulty_db(directory, fsync="always") as (db, fs):
        fill(db, 5)
        fs.faults.append(Fault("sync", "wal"))
        with pytest.raises(StorageError, match="fsync"):
            db.put("raised", "never acknowledged")
        fs.faults.clear()
        with pytest.raises(StorageError):
            db.put("later", "refused")
        with pytest.raises(StorageError):
            db.get("later")
    with reopen(directory) as db:
        assert db.get("raised") is None and db.get("later") is None


def test_disk_full_during_a_wal_append(directory: str) -> None:
    with faulty_db(directory, fsync="always") as (db, fs):
        acked = fill(db, 5)
        fs.faults.append(Fault("write", "wal", error="ENOSPC", times=None))
        with pytest.raises(StorageError, match="No space left"):
            db.batch_put([f"b{i}" for i in range(10)], ["x" * 50] * 10)
        fs.faults.clear()
        assert db.get("b0") is None
        with pytest.raises(StorageError):
            db.put("later", "refused")
    with reopen(directory) as db:
        assert dict(db.scan()) == acked  # the half-written batch is a torn tail
    assert_accounted_for(directory)


# -- EIO on table writes during flush and compaction ---------------------------------------


@pytest.mark.parametrize("op", ["write", "sync", "open"])
def test_table_error_during_flush_loses_nothing_and_leaves_no_garbage(
    directory: str, op: str
) -> None:
    with faulty_db(directory) as (db, fs):
        acked = fill(db, 20)
        db.flush()
        fs.faults.append(Fault(op, "table"))
        acked.update(fill(db, 7, prefix="m"))
        with pytest.raises(StorageError):
            db.flush()
        assert fs.faults[0].fired
        fs.faults.clear()
        assert dict(db.scan()) == acked  # reads go on from the memtable
    with reopen(directory) as db:
        assert dict(db.scan()) == acked
    assert_accounted_for(directory)


@pytest.mark.parametrize("op", ["write", "sync", "open"])
def test_table_error_during_compaction_loses_nothing_and_leaves_no_garbage(
    directory: str, op: str
) -> None:
    with faulty_db(directory) as (db, fs):
        acked = fill(db, 30, tag="old")
        db.flush()
        acked.update(fill(db, 30, tag="new"))
        db.flush()
        fs.faults.append(Fault(op, "table"))
        with pytest.raises(StorageError):
            db.compact()
        assert fs.faults[0].fired
        fs.faults.clear()
        assert dict(db.scan()) == acked
        tables = {n for n in os.listdir(directory) if n.endswith(".sst")}
        live = {f"{n:06d}.sst" for n in db._engine._versions.current.numbers()}
        assert tables == live, f"compaction left {sorted(tables - live)} behind"
    with reopen(directory) as db:
        assert dict(db.scan()) == acked
    assert_accounted_for(directory)


# -- a failed open ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["table", "manifest", "wal", "current"])
def test_an_open_error_at_startup_is_a_storage_error_and_destroys_nothing(
    directory: str, kind: str
) -> None:
    with shaledb.DB.over(LSMEngine(directory, options())) as db:
        acked = fill(db, 20)
        db.flush()
        acked.update(fill(db, 3, prefix="m"))
    fs = FaultFS(directory, [Fault("open", kind)])
    with pytest.raises(StorageError):
        LSMEngine(directory, options(), fs=fs)
    assert fs.faults[0].fired
    with reopen(directory) as db:
        assert dict(db.scan()) == acked
    assert_accounted_for(directory)
