"""The table worker's protocol: jobs, answers, errors, cancelling, and its lifetime."""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_fs import GatedFS, noted_pids

from shaledb.engine import table_worker
from shaledb.engine.block_cache import BlockCache
from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.fs import FileSystem
from shaledb.engine.memtable import MemTable
from shaledb.engine.sstable import SSTable
from shaledb.engine.table_worker import CompactionJob, FlushJob, TableWorker
from shaledb.engine.table_writer import TableSettings
from shaledb.engine.version_edit import TableFile
from shaledb.errors import CorruptionError, StorageError

SETTINGS = TableSettings(
    block_size=256, bloom_bits_per_key=10, compression="lz4", target_file_bytes=4096
)


def _columns(lo: int, hi: int, tag: bytes) -> tuple[list[bytes], bytes, list[bytes]]:
    keys = [b"key%06d" % i for i in range(lo, hi)]
    return keys, bytes(len(keys)), [tag + k for k in keys]


def _packed(columns: tuple[list[bytes], bytes, list[bytes]]) -> table_worker.PackedMemTable:
    """A memtable holding ``columns`` (no expiry), packed as a flush job carries it."""
    mem = MemTable(1)
    for key, flag, value in zip(*columns, strict=True):
        mem.put(key, flag, 0, value)
    return table_worker.PackedMemTable.of(mem)


def _flush(directory: Path, number: int, lo: int, hi: int, tag: bytes) -> FlushJob:
    entries = _packed(_columns(lo, hi, tag))
    return FlushJob(FileSystem(), str(directory), SETTINGS, number, (lo + 1, hi), entries)


def _read(directory: Path, table: TableFile) -> list[tuple[bytes, int, bytes]]:
    reader = SSTable(
        FileSystem(), str(directory / f"{table.number:06d}.sst"), table.number, BlockCache(0)
    )
    keys, flags, values = reader.columns_in(None, None)
    return list(zip(keys, flags, values))


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not been reaped (a zombie counts)."""
    return os.path.exists(f"/proc/{pid}")


@pytest.fixture
def worker() -> Iterator[TableWorker]:
    worker = TableWorker()
    yield worker
    worker.stop()


def test_a_flush_job_in_the_worker_writes_the_same_table_as_in_process(
    tmp_path: Path, worker: TableWorker
) -> None:
    here = table_worker.run_job(_flush(tmp_path, 1, 0, 500, b"v"))
    there = worker.run(_flush(tmp_path, 2, 0, 500, b"v"), lambda: False)
    assert worker.pid is not None and worker.pid != os.getpid()
    assert [(t.size, t.entries, t.smallest, t.largest) for t in there] == [
        (t.size, t.entries, t.smallest, t.largest) for t in here
    ]
    assert there[0].number == 2 and there[0].entries == 500
    assert _read(tmp_path, there[0]) == _read(tmp_path, here[0])
    assert (tmp_path / "000002.sst").read_bytes() == (tmp_path / "000001.sst").read_bytes()


def test_a_compaction_job_merges_newest_first_and_drops_what_it_may(
    tmp_path: Path, worker: TableWorker
) -> None:
    old = worker.run(_flush(tmp_path, 1, 0, 400, b"old"), lambda: False)[0]
    keys, _, values = _columns(200, 600, b"new")
    flags = bytes(TOMBSTONE if i % 10 == 0 else 0 for i in range(len(keys)))
    new = worker.run(
        FlushJob(
            FileSystem(),
            str(tmp_path),
            SETTINGS,
            2,
            (401, 800),
            _packed((keys, flags, values)),
        ),
        lambda: False,
    )[0]
    job = CompactionJob(
        FileSystem(),
        str(tmp_path),
        SETTINGS,
        [(0, [new, old])],
        1,
        True,
        tuple(range(10, 40)),
        0,
        _drops_key_000301,
    )
    outputs = worker.run(job, lambda: False)
    assert [t.number for t in outputs] == list(range(10, 10 + len(outputs)))
    merged = [e for t in outputs for e in _read(tmp_path, t)]
    expected = {b"key%06d" % i: b"old" + b"key%06d" % i for i in range(0, 200)}
    expected.update({k: v for k, f, v in zip(keys, flags, values) if not f & TOMBSTONE})
    del expected[b"key000301"]
    assert {k: v for k, _, v in merged} == expected
    assert [k for k, _, _ in merged] == sorted(expected)


def _drops_key_000301(key: bytes) -> bool:
    return key == b"key000301"


def test_an_error_in_the_worker_is_raised_as_it_is_in_process(
    tmp_path: Path, worker: TableWorker
) -> None:
    missing = CompactionJob(
        FileSystem(),
        str(tmp_path),
        SETTINGS,
        [(1, [TableFile(7, 100, 1, b"a", b"b")])],
        2,
        False,
        (8,),
        0,
        _drops_key_000301,
    )
    with pytest.raises(StorageError) as here:
        table_worker.run_job(missing)
    with pytest.raises(StorageError) as there:
        worker.run(missing, lambda: False)
    assert str(there.value) == str(here.value)
    assert "000007.sst" in str(there.value)
    assert worker.losses == 0, "an error answer is not a lost worker"
    (tmp_path / "000007.sst").write_bytes(b"not a table at all, too short for a footer")
    damaged = dataclasses.replace(missing, inputs=[(1, [TableFile(7, 42, 1, b"a", b"b")])])
    with pytest.raises(CorruptionError) as corrupt:
        worker.run(damaged, lambda: False)
    assert corrupt.value.path.endswith("000007.sst")


def test_a_compaction_that_needs_more_numbers_than_reserved_fails_and_leaves_nothing(
    tmp_path: Path, worker: TableWorker
) -> None:
    # Outputs are cut between merge windows (64 Ki entries): this needs two numbers.
    first = worker.run(_flush(tmp_path, 1, 0, 70_000, b"v"), lambda: False)[0]
    job = CompactionJob(
        FileSystem(), str(tmp_path), SETTINGS, [(0, [first])], 1, False, (5,), 0, _drops_key_000301
    )
    with pytest.raises(StorageError, match="more than the 1 file numbers reserved"):
        worker.run(job, lambda: False)
    assert sorted(os.listdir(tmp_path)) == ["000001.sst"]


def test_a_job_that_does_not_pickle_is_refused_before_anything_is_sent(
    tmp_path: Path, worker: TableWorker
) -> None:
    job = CompactionJob(
        FileSystem(), str(tmp_path), SETTINGS, [], 1, False, (1,), 0, lambda key: False
    )
    with pytest.raises(table_worker.NotSendable):
        worker.run(job, lambda: False)
    assert worker.pid is None, "no worker was started for it"


def test_cancelling_kills_and_reaps_the_worker_and_the_next_job_starts_another(
    tmp_path: Path, worker: TableWorker
) -> None:
    worker.run(_flush(tmp_path, 1, 0, 10, b"v"), lambda: False)
    pid = worker.pid
    assert pid is not None
    big = _flush(tmp_path, 2, 0, 300_000, b"v" * 50)
    started = time.monotonic()
    with pytest.raises(table_worker.JobCancelled):
        worker.run(big, lambda: time.monotonic() - started > 0.2)
    assert worker.pid is None
    assert not _alive(pid), "the killed worker was reaped"
    worker.run(_flush(tmp_path, 3, 0, 10, b"v"), lambda: False)
    assert worker.pid not in (None, pid)


def test_a_killed_worker_is_a_lost_worker_and_is_reaped(
    tmp_path: Path, worker: TableWorker
) -> None:
    worker.run(_flush(tmp_path, 1, 0, 10, b"v"), lambda: False)
    pid = worker.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(table_worker.WorkerLost):
        worker.run(_flush(tmp_path, 2, 0, 10, b"v"), lambda: False)
    assert worker.losses == 1 and worker.pid is None and not _alive(pid)


def test_stop_ends_the_worker_and_leaves_no_zombie(tmp_path: Path, worker: TableWorker) -> None:
    worker.run(_flush(tmp_path, 1, 0, 10, b"v"), lambda: False)
    pid = worker.pid
    assert pid is not None and _alive(pid)
    worker.stop()
    assert worker.pid is None and not _alive(pid)


#: A process that starts a worker, prints its pid and then waits to be killed.
_PARENT = """
import sys, time
from shaledb.engine import table_worker
from shaledb.engine.fs import FileSystem
from shaledb.engine.memtable import MemTable
from shaledb.engine.table_writer import TableSettings
mem = MemTable(1)
mem.put(b"k", 0, 0, b"v")
job = table_worker.FlushJob(
    FileSystem(), sys.argv[1], TableSettings(256, 10, "none", 4096), 1, (1, 1),
    table_worker.PackedMemTable.of(mem),
)
table_worker.for_flushes.run(job, lambda: False)
print(table_worker.for_flushes.pid, flush=True)
time.sleep(60)
"""


def test_the_worker_exits_when_the_engine_process_dies(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert _alive(pid)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    # Its parent gone, the orphan is reaped by init once it exits.
    assert not _alive(pid), "the worker outlived the process that started it"


@pytest.mark.parametrize("sizes", [[], [1], [0, 3, 1, 70_000, 0, 2]])
def test_a_packed_memtable_gives_the_columns_the_memtable_gives(sizes: list[int]) -> None:
    mem = MemTable(1)
    for i, n in enumerate(sizes):
        # Keys out of order, empty values (tombstones), and expiry prefixes included.
        flags = (TOMBSTONE, 0, HAS_TTL)[i % 3]
        mem.put(bytes([(7 * i) % 251]) * max(n, 1), flags, 1000 + i if flags else 0, b"v" * n)
    packed = table_worker.PackedMemTable.of(mem)
    assert pickle.loads(pickle.dumps(packed)).columns() == mem.columns()


def test_the_worker_outlives_the_thread_that_gave_it_its_first_job(
    tmp_path: Path, worker: TableWorker
) -> None:
    # The kernel kills a worker when the thread that started it ends; an engine's
    # background thread ends at close, so workers are started from a thread of their own.
    first = threading.Thread(
        target=worker.run, args=(_flush(tmp_path, 1, 0, 10, b"v"), lambda: False)
    )
    first.start()
    first.join()
    pid = worker.pid
    assert pid is not None
    time.sleep(0.2)
    assert _alive(pid)
    worker.run(_flush(tmp_path, 2, 0, 10, b"v"), lambda: False)
    assert worker.pid == pid and worker.losses == 0


def test_a_worker_that_keeps_dying_is_given_up_and_jobs_run_in_the_engine(
    tmp_path: Path, worker: TableWorker
) -> None:
    notes, gate = tmp_path / "notes", tmp_path / "gate"
    notes.mkdir()
    fs = GatedFS(os.getpid(), str(notes))

    def lose_one(number: int) -> None:
        """Run a job held in a new worker, and kill that worker."""
        fs.gate = str(gate)
        gate.touch()
        seen = set(noted_pids(str(notes), "held"))
        job = dataclasses.replace(_flush(tmp_path, number, 0, 10, b"v"), fs=fs)
        lost: list[BaseException] = []

        def run() -> None:
            try:
                worker.run(job, lambda: False)
            except table_worker.WorkerLost as exc:
                lost.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 30
        while not set(noted_pids(str(notes), "held")) - seen:
            assert time.monotonic() < deadline, "the job was not held"
            time.sleep(0.01)
        [pid] = set(noted_pids(str(notes), "held")) - seen
        os.kill(pid, signal.SIGKILL)
        thread.join(30)
        assert len(lost) == 1

    for number in range(1, table_worker.MAX_LOSSES):
        lose_one(number)
    assert worker.unavailable is None
    gate.unlink()
    worker.run(_flush(tmp_path, 10, 0, 10, b"v"), lambda: False)  # answered: the count restarts
    for number in range(11, 11 + table_worker.MAX_LOSSES - 1):
        lose_one(number)
    assert worker.unavailable is None
    lose_one(20)
    assert worker.unavailable is not None and worker.losses == 2 * table_worker.MAX_LOSSES - 1
    with pytest.raises(table_worker.WorkerUnavailable):
        worker.run(_flush(tmp_path, 21, 0, 10, b"v"), lambda: False)
    assert worker.pid is None, "no worker was started again"


def test_a_worker_that_cannot_start_is_unavailable(
    tmp_path: Path, worker: TableWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    with pytest.raises(table_worker.WorkerUnavailable, match="could not start the table worker"):
        worker.run(_flush(tmp_path, 1, 0, 10, b"v"), lambda: False)
    assert worker.pid is None and not (tmp_path / "000001.sst").exists()
