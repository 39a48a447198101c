"""The LSM engine itself: flushes, compactions, the manifest, stalls, faults.

The contract every engine shares is in tests/contract/; here are the behaviours only
the durable engine has. Fault injection goes through a FileSystem subclass, the seam
shaledb.engine.fs provides for it.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from close_race import check_close_waits_for_compact
from tiny_lsm import small_lsm_options

import shaledb
from shaledb.engine import compaction as compaction_module
from shaledb.engine import version_set, write_path
from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.fs import AppendFile, FileSystem
from shaledb.engine.lsm import LSMEngine
from shaledb.errors import ClosedError, StorageError
from shaledb.options import Options


def names(path: Path, suffix: str) -> list[str]:
    return sorted(n for n in os.listdir(path) if n.endswith(suffix))


def small(**overrides: Any) -> Options:
    return Options(**small_lsm_options(**{"memtable_entries": 8, **overrides}))


def puts(n: int, prefix: str = "k", value: str = "v") -> list:
    return [(0, f"{prefix}{i:05d}".encode(), 0, f"{value}{i}".encode()) for i in range(n)]


def all_items(engine: LSMEngine) -> dict[bytes, bytes]:
    return {k: v for k, _, _, v in engine.scan(b"", None)}


def test_a_new_directory_gets_a_manifest_a_wal_and_a_lock(data_dir: Path) -> None:
    engine = LSMEngine(str(data_dir), Options())
    try:
        assert (data_dir / "CURRENT").read_text().startswith("MANIFEST-")
        assert len(names(data_dir, ".wal")) == 1
        assert engine.stats()["engine"] == "lsm"
    finally:
        engine.close()


def test_puts_tombstones_and_a_put_with_expiry_flags_replay_from_the_wal(data_dir: Path) -> None:
    # put() packs a record without an expiry field; flags that carry HAS_TTL must go the
    # general way, or the record would not decode at the next open.
    engine = LSMEngine(str(data_dir), Options())
    engine.put(0, b"plain", b"1")
    engine.put(HAS_TTL, b"ttl-flag", b"2")  # no expiry given: expire_ms 0
    engine.put(0, b"gone", b"3")
    assert engine.delete(TOMBSTONE, b"gone") and not engine.delete(TOMBSTONE, b"never")
    engine.close()  # the WAL is replayed, not flushed, by the next open
    engine = LSMEngine(str(data_dir), Options())
    try:
        assert engine.get(b"plain") == (0, 0, b"1")
        found = engine.get(b"ttl-flag")
        assert found is None or found[2] == b"2"  # expire_ms 0 is in the past: hidden
        assert engine.get(b"gone") is None
        assert {k for k, _, _, _ in engine.scan(b"", None)} >= {b"plain"}
    finally:
        engine.close()


def test_flush_moves_the_memtable_to_a_table_and_drops_its_wal(data_dir: Path) -> None:
    engine = LSMEngine(str(data_dir), Options(memtable_entries=1000, background_compaction=False))
    try:
        for op in puts(50):
            engine.write([op])
        old_wal = names(data_dir, ".wal")
        assert names(data_dir, ".sst") == []
        engine.flush()
        assert len(names(data_dir, ".sst")) == 1
        assert old_wal[0] not in engine._writes.wal.path  # writes go to a new log now
        stats = engine.stats()
        assert stats["memtable_entries"] == 0 and stats["levels"][0]["files"] == 1
        assert stats["levels"][0]["entries"] == 50 and stats["flushes"] == 1
        assert len(all_items(engine)) == 50
        engine.flush()  # an empty memtable: nothing new
        assert len(names(data_dir, ".sst")) == 1
    finally:
        engine.close()
    # The flushed memtable's log is deleted (by the flusher, after flush() returns).
    assert len(names(data_dir, ".wal")) == 1 and names(data_dir, ".wal") != old_wal


def test_a_full_memtable_is_flushed_in_the_background(data_dir: Path) -> None:
    engine = LSMEngine(str(data_dir), small(background_compaction=False))
    try:
        for op in puts(80):
            engine.write([op])
        engine.flush()
        assert engine.stats()["levels"][0]["files"] == 10
        assert engine.stats()["flushes"] == 10
        assert len(all_items(engine)) == 80
    finally:
        engine.close()


def test_manual_compaction_merges_everything_into_one_level(data_dir: Path) -> None:
    engine = LSMEngine(str(data_dir), small(background_compaction=False))
    try:
        for op in puts(200):
            engine.write([op])
        for op in puts(100, value="w"):
            engine.write([op])
        engine.write([(1, f"k{i:05d}".encode(), 0, b"") for i in range(0, 200, 2)])
        engine.flush()
        before = engine.stats()["table_bytes"]
        engine.compact()
        stats = engine.stats()
        populated = [lv["level"] for lv in stats["levels"] if lv["files"]]
        assert len(populated) == 1 and populated[0] >= 1
        assert stats["table_bytes"] < before
        assert stats["levels"][populated[0]]["entries"] == 100  # tombstones gone at the bottom
        engine._versions.current.check(str)
        expected = {
            f"k{i:05d}".encode(): (f"w{i}" if i < 100 else f"v{i}").encode()
            for i in range(1, 200, 2)
        }
        assert all_items(engine) == expected
        # Table files of the inputs are gone from the directory.
        live = {f.number for _, f in engine._versions.current.files()}
        assert {int(n[:6]) for n in names(data_dir, ".sst")} == live
    finally:
        engine.close()


def test_background_compaction_keeps_levels_disjoint_and_data_right(data_dir: Path) -> None:
    rng = random.Random(2)
    model: dict[bytes, bytes] = {}
    engine = LSMEngine(str(data_dir), small())
    try:
        for i in range(2000):
            key = f"k{rng.randrange(400):04d}".encode()
            if rng.random() < 0.2:
                engine.write([(1, key, 0, b"")])
                model.pop(key, None)
            else:
                value = f"{i}".encode() * rng.randrange(1, 8)
                engine.write([(0, key, 0, value)])
                model[key] = value
            if i % 500 == 0:
                engine._versions.current.check(str)
        engine.flush()
        engine._versions.current.check(str)
        stats = engine.stats()
        assert stats["compactions"] > 0
        assert sum(1 for lv in stats["levels"] if lv["files"]) >= 2
        assert all_items(engine) == model
        for key in [f"k{i:04d}".encode() for i in range(400)]:
            found = engine.get(key)
            assert (found and found[2]) == model.get(key)
    finally:
        engine.close()
    engine = LSMEngine(str(data_dir), small())
    try:
        assert all_items(engine) == model
        engine._versions.current.check(str)
    finally:
        engine.close()


def test_a_large_manifest_is_rewritten(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(version_set, "MAX_MANIFEST_BYTES", 1500)
    db = shaledb.open(str(data_dir), memtable_size=4, l0_compaction_trigger=2, block_size=128)
    try:
        t = db.create_namespace("ns").create_table("t")
        for i in range(300):
            db.put(f"k{i % 50:02d}", f"v{i}")
            t.put(f"t{i % 7}", f"x{i}")
        db.namespace("ns").create_table("late")
        db.flush()
    finally:
        db.close()  # waits for background compactions: none is halfway through a rewrite
    manifests = names(data_dir, "")
    assert len([n for n in manifests if n.startswith("MANIFEST-")]) == 1
    assert os.path.getsize(data_dir / (data_dir / "CURRENT").read_text().splitlines()[0]) < 20_000
    with shaledb.open(str(data_dir)) as db:
        assert dict(db.scan()) == {f"k{i:02d}": f"v{250 + i}" for i in range(50)}
        assert db.namespace("ns").list_tables() == ["late", "t"]
        assert db.namespace("ns").table("t").get("t0") == "x294"


def test_dropped_table_is_removed_from_disk_by_compaction(data_dir: Path) -> None:
    with shaledb.open(str(data_dir), memtable_size=100, compression="none") as db:
        ns = db.create_namespace("ns")
        big = ns.create_table("big")
        big.batch_put([f"k{i:05d}" for i in range(2000)], ["x" * 100] * 2000)
        db.put("keep", "me")
        db.compact()
        with_table = db.stats()["table_bytes"]
        assert with_table > 200_000
        ns.drop_table("big")
        assert db.count() == 1
        db.compact()
        after = db.stats()["table_bytes"]
        assert after < with_table // 20
        assert db.get("keep") == "me"
        sst_bytes = sum(os.path.getsize(data_dir / n) for n in names(data_dir, ".sst"))
        assert sst_bytes == after
    with shaledb.open(str(data_dir)) as db:
        assert db.namespace("ns").list_tables() == []
        assert list(db.scan()) == [("keep", "me")]


def test_many_tables_with_long_ids_stay_separate(data_dir: Path) -> None:
    with shaledb.open(str(data_dir), memtable_size=50) as db:
        ns = db.create_namespace("many")
        tables = [ns.create_table(f"t{i}") for i in range(245)]
        for i in (0, 238, 239, 240, 244):
            tables[i].put("k", f"table {i}")
            tables[i].put(b"\xff\xff", f"high {i}")
        db.put(b"\xff\xff\xff", "default")
        db.compact()
        for i in (0, 238, 239, 240, 244):
            assert list(tables[i].scan()) == [("k", f"table {i}"), (b"\xff\xff", f"high {i}")]
        assert list(tables[241].scan()) == []
        assert list(db.scan()) == [(b"\xff\xff\xff", "default")]


def test_stats_describe_the_tree(data_dir: Path) -> None:
    engine = LSMEngine(str(data_dir), small(background_compaction=False))
    try:
        for op in puts(30):
            engine.write([op])
        engine.get(b"k00001")
        stats = engine.stats()
        for key in (
            "sequence",
            "memtable_entries",
            "memtable_bytes",
            "immutable_memtables",
            "wal_bytes",
            "levels",
            "table_bytes",
            "block_cache_bytes",
            "flushes",
            "compactions",
            "write_amplification",
            "fsync",
            "directory",
        ):
            assert key in stats, key
        assert stats["sequence"] == 30
        assert len(stats["levels"]) == 7
        engine.flush()
        stats = engine.stats()
        assert stats["memtable_entries"] == 0 and stats["immutable_memtables"] == 0
        assert sum(lv["entries"] for lv in stats["levels"]) == 30
    finally:
        engine.close()


def test_level0_stop_trigger_makes_writers_wait_not_fail(data_dir: Path) -> None:
    opts = small(
        l0_compaction_trigger=2, l0_slowdown_trigger=3, l0_stop_trigger=4, memtable_entries=2
    )
    engine = LSMEngine(str(data_dir), opts)
    try:
        for op in puts(300):
            engine.write([op])
        engine.flush()
        assert len(all_items(engine)) == 300
        assert engine.stats()["levels"][0]["files"] < 4 + write_path.MAX_IMMUTABLES + 1
    finally:
        engine.close()


def test_large_values_survive_flush_compaction_and_reopen(data_dir: Path) -> None:
    values = {f"big{i}".encode(): os.urandom(300_000 + i) for i in range(6)}
    engine = LSMEngine(str(data_dir), small(memtable_entries=2))
    try:
        for k, v in values.items():
            engine.write([(0, k, 0, v)])
        engine.flush()
        engine.compact()
        assert all_items(engine) == values
    finally:
        engine.close()
    engine = LSMEngine(str(data_dir), small())
    try:
        assert all_items(engine) == values
    finally:
        engine.close()


def test_closed_engine(data_dir: Path) -> None:
    engine = LSMEngine(str(data_dir), Options())
    engine.close()
    with pytest.raises(ClosedError):
        engine.write([(0, b"k", 0, b"v")])
    with pytest.raises(ClosedError):
        engine.get(b"k")


def test_close_waits_for_a_manual_compaction_in_another_thread(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A close must not release the directory while a manual compaction still writes
    tables and the manifest: it waits for it, and a compaction asked for later raises."""
    engine = LSMEngine(str(data_dir), small(background_compaction=False, background_process=False))
    engine.write(puts(100))
    engine.flush()
    check_close_waits_for_compact(engine, monkeypatch, compaction_module, "run")
    again = LSMEngine(str(data_dir), small())
    assert all_items(again) == {k: v for _, k, _, v in puts(100)}
    again.close()


def test_reads_during_flush_and_compaction_in_one_engine(data_dir: Path) -> None:
    """A reader thread checks every value against what its key says it must be."""
    engine = LSMEngine(str(data_dir), small(memtable_entries=16))
    errors: list[str] = []
    stop = threading.Event()
    written = [0]

    def reader() -> None:
        try:
            while not stop.is_set():
                floor = written[0]
                seen = 0
                for k, _, _, v in engine.scan(b"", None):
                    if not v.startswith(k + b"="):
                        errors.append(f"{k!r} -> {v!r}")
                    seen += 1
                if seen < min(floor, 500):
                    errors.append(f"scan saw {seen} keys after {floor} were written")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    th = threading.Thread(target=reader)
    th.start()
    try:
        for i in range(2000):
            key = f"k{i % 500:03d}".encode()
            engine.write([(0, key, 0, key + b"=" + str(i).encode())])
            written[0] = i + 1
            if i % 1000 == 999:
                engine.compact()
    finally:
        stop.set()
        th.join()
        engine.close()
    assert errors == []


# -- fault injection ---------------------------------------------------------------------


class FailingWrites(AppendFile):
    """Writes half of one WAL record, then fails as a full disk would."""

    armed = False

    def write(self, data: bytes) -> None:
        if FailingWrites.armed and self.path.endswith(".wal"):
            FailingWrites.armed = False
            os.write(self.fd, data[: len(data) // 2])
            self.size += len(data) // 2
            raise StorageError(f"cannot write {self.path}: No space left on device")
        super().write(data)


class FailingFS(FileSystem):
    def open_append(self, path: str, truncate_to: int | None = None) -> AppendFile:
        f = super().open_append(path, truncate_to)
        return FailingWrites(f.path, f.fd, f.size)


def test_a_failed_wal_append_does_not_make_later_writes_unrecoverable(data_dir: Path) -> None:
    engine = LSMEngine(str(data_dir), Options(), fs=FailingFS())
    engine.write([(0, b"a", 0, b"1")])
    FailingWrites.armed = True
    with pytest.raises(StorageError):
        engine.write([(0, b"b", 0, b"2")])
    assert engine.get(b"b") is None
    try:
        engine.write([(0, b"c", 0, b"3")])
        acknowledged = {b"a": b"1", b"c": b"3"}
    except StorageError:
        acknowledged = {b"a": b"1"}  # refusing writes after a failed append is fine too
    engine.close()
    engine = LSMEngine(str(data_dir), Options())
    try:
        assert all_items(engine) == acknowledged
    finally:
        engine.close()


class CrashBeforeCurrent(FileSystem):
    """Dies (raises) where CURRENT would be written: a crash during the first open."""

    def write_atomic(self, directory: str, name: str, data: bytes) -> None:
        raise StorageError("simulated crash before CURRENT was written")


def test_a_crash_during_the_first_open_leaves_an_openable_directory(data_dir: Path) -> None:
    with pytest.raises(StorageError):
        LSMEngine(str(data_dir), Options(), fs=CrashBeforeCurrent())
    engine = LSMEngine(str(data_dir), Options())
    try:
        engine.write([(0, b"k", 0, b"v")])
        assert engine.get(b"k") == (0, 0, b"v")
    finally:
        engine.close()


def test_a_failed_fsync_is_reported_to_the_writer(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = LSMEngine(str(data_dir), Options(fsync="always"))
    try:
        engine.write([(0, b"a", 0, b"1")])

        def failing(fd: int) -> None:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(os, "fdatasync", failing)
        with pytest.raises(StorageError, match="fsync"):
            engine.write([(0, b"b", 0, b"2")])
        # Once an fsync failed nothing later may be acknowledged as durable.
        with pytest.raises(StorageError):
            engine.write([(0, b"c", 0, b"3")])
        monkeypatch.undo()
    finally:
        with contextlib.suppress(StorageError):
            engine.close()


def test_deferred_sync_shares_one_fsync_among_a_threads_writes(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = LSMEngine(str(data_dir), Options(fsync="always"))
    calls: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    try:
        engine.write([(0, b"a", 0, b"1")])
        assert len(calls) == 1  # outside the block: one fsync per write
        calls.clear()
        with engine.deferred_sync():
            for i in range(50):
                engine.put(0, b"k%d" % i, b"v")
            with engine.deferred_sync():  # nested blocks sync once, at the outer end
                engine.write([(0, b"b", 0, b"2")])
            assert calls == []
        assert len(calls) == 1
    finally:
        monkeypatch.undo()
        engine.close()
    engine = LSMEngine(str(data_dir), Options())
    try:
        assert engine.get(b"k49") == (0, 0, b"v") and engine.get(b"b") == (0, 0, b"2")
    finally:
        engine.close()


def test_deferred_sync_reports_a_failed_fsync(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = LSMEngine(str(data_dir), Options(fsync="always"))

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    try:
        with pytest.raises(StorageError, match="fsync"), engine.deferred_sync():
            engine.put(0, b"a", b"1")
            monkeypatch.setattr(os, "fdatasync", failing)
        monkeypatch.undo()
    finally:
        with contextlib.suppress(StorageError):
            engine.close()


def test_a_write_whose_fsync_failed_is_neither_visible_nor_replayed(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = LSMEngine(str(data_dir), Options(fsync="always"))
    try:
        engine.write([(0, b"a", 0, b"1")])

        def failing(fd: int) -> None:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(os, "fdatasync", failing)
        with pytest.raises(StorageError, match="fsync"):
            engine.write([(0, b"b", 0, b"2")])
        monkeypatch.undo()
        # The write raised: no read may return it, and no later write is accepted.
        with pytest.raises(StorageError, match="reopened"):
            engine.get(b"b")
        with pytest.raises(StorageError):
            list(engine.scan(b"", None))
        with pytest.raises(StorageError):
            engine.write([(0, b"c", 0, b"3")])
    finally:
        with contextlib.suppress(StorageError):
            engine.close()
    engine = LSMEngine(str(data_dir), Options())
    try:
        assert engine.get(b"a") == (0, 0, b"1")
        assert engine.get(b"b") is None and engine.get(b"c") is None
    finally:
        engine.close()


def test_a_dropped_handle_releases_its_directory(data_dir: Path) -> None:
    import gc
    import warnings

    engine = LSMEngine(str(data_dir), Options(fsync="never"))
    engine.put(0, b"k", b"v")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del engine
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)
    engine = LSMEngine(str(data_dir), Options())  # not LockedError naming our own pid
    try:
        assert engine.get(b"k") == (0, 0, b"v")
    finally:
        engine.close()


def test_a_deleted_lock_file_stops_writes(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shaledb.engine import lsm as lsm_module
    from shaledb.errors import LockedError

    monkeypatch.setattr(lsm_module, "_IDLE_WAKE", 0.05)
    engine = LSMEngine(str(data_dir), Options())
    try:
        engine.put(0, b"a", b"1")
        (data_dir / "LOCK").unlink()  # what lets a second process lock a new LOCK file
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                engine.put(0, b"b", b"2")
            except StorageError as exc:
                assert "LOCK" in str(exc)
                break
            except LockedError as exc:
                assert "LOCK" in str(exc)
                break
            time.sleep(0.02)
        else:
            pytest.fail("writes went on after the LOCK file was deleted")
        assert engine.get(b"a") == (0, 0, b"1")  # reads still work
    finally:
        engine.close()


def test_reads_during_compaction_outlive_table_cache_evictions(data_dir: Path) -> None:
    opts = Options(
        memtable_entries=20,
        max_open_tables=2,
        background_compaction=False,
        target_file_bytes=1024,
        block_size=256,
    )
    engine = LSMEngine(str(data_dir), opts)
    try:
        for i in range(400):
            engine.put(0, b"k%04d" % i, b"v%d" % i)
        engine.flush()
        scan = engine.scan(b"", None, limit=10)  # a snapshot of the old tables
        first = next(scan)
        engine.compact()  # deletes every input, while the scan may still need them
        rest = list(scan)
        assert [first, *rest][:10] == [(b"k%04d" % i, 0, 0, b"v%d" % i) for i in range(10)]
        long_scan = engine.scan(b"", None)
        engine.compact()
        assert len(list(long_scan)) == 400
    finally:
        engine.close()
