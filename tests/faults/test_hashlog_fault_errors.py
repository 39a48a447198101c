"""I/O errors injected under the hash-log engine: a failed append, a failed fsync in
mode ``always``, a failed merge. The caller gets a StorageError, writes (and reads,
where the rule says so) stop, and a reopen on a healthy disk has every acknowledged
write and nothing that raised."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_fs import Fault, FaultFS

from shaledb.engine.hashlog import HashLogEngine, check_hashlog
from shaledb.errors import StorageError
from shaledb.options import Options


def open_faulty(directory: Path, fsync: str = "never") -> tuple[HashLogEngine, FaultFS]:
    directory.mkdir(parents=True, exist_ok=True)
    fs = FaultFS(str(directory))
    options = Options(fsync=fsync, hashlog_segment_bytes=1024, hashlog_merge_ratio=1.0)
    return HashLogEngine(str(directory), options, fs=fs), fs  # type: ignore[arg-type]


def healthy_contents(directory: Path) -> dict[bytes, bytes]:
    assert check_hashlog(str(directory)).healthy
    engine = HashLogEngine(str(directory))
    try:
        return {k: v for k, _, _, v in engine.scan(b"", None)}
    finally:
        engine.close()


def test_disk_full_on_append_stops_writes(scratch: Path) -> None:
    engine, fs = open_faulty(scratch / "db")
    engine.put(0, b"a", b"1")
    fs.faults.append(Fault("write", "other", error="ENOSPC"))
    with pytest.raises(StorageError):
        engine.put(0, b"b", b"2" * 100)
    with pytest.raises(StorageError, match="stopped accepting writes"):
        engine.put(0, b"c", b"3")
    assert engine.get(b"a") == (0, 0, b"1")  # reads go on
    engine.close()
    # The short write left part of a record: the open drops it as a torn tail.
    assert healthy_contents(scratch / "db") == {b"a": b"1"}


def test_failed_fsync_in_always_mode_stops_reads_too(scratch: Path) -> None:
    engine, fs = open_faulty(scratch / "db", fsync="always")
    engine.put(0, b"a", b"1")
    fs.faults.append(Fault("sync", "other"))
    with pytest.raises(StorageError):
        engine.put(0, b"b", b"2")
    with pytest.raises(StorageError, match="could not be made durable"):
        engine.get(b"a")
    with pytest.raises(StorageError):
        engine.put(0, b"c", b"3")
    engine.close()
    # The write whose fsync failed was cut back off the file: it never comes back.
    assert healthy_contents(scratch / "db") == {b"a": b"1"}


def test_failed_merge_leaves_the_inputs_in_place(scratch: Path) -> None:
    engine, fs = open_faulty(scratch / "db")
    model = {}
    for i in range(100):
        key = f"k{i % 10}".encode()
        engine.put(0, key, f"v{i}".encode() * 5)
        model[key] = f"v{i}".encode() * 5
    fs.faults.append(Fault("rename", "temp"))
    with pytest.raises(StorageError):
        engine.compact()
    assert {k: v for k, _, _, v in engine.scan(b"", None)} == model
    engine.close()
    assert healthy_contents(scratch / "db") == model
