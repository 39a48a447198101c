"""The engine with its table worker: a worker killed mid-job, close() during a job, the
engine process killed under a busy worker, I/O errors in the worker, and many opens.

The workers are the process-wide ``table_worker.for_flushes`` and ``for_compactions``;
a job is held in one (by
``GatedFS``, just before its directory fsync, so its output tables are on disk but not
reported) to be killed at a known point.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from worker_fs import FailingTableFS, GatedFS, noted_pids

import shaledb
from shaledb.engine import table_worker
from shaledb.engine.check import check_directory
from shaledb.engine.fs import FileSystem
from shaledb.engine.lsm import LSMEngine
from shaledb.errors import ClosedError, StorageError
from shaledb.options import Options

SETTINGS: dict[str, object] = dict(
    memtable_entries=100_000, block_size=256, target_file_bytes=2048, background_compaction=False
)


def options(**overrides: object) -> Options:
    return Options(**{**SETTINGS, **overrides})  # type: ignore[arg-type]


def open_db(directory: Path, fs: FileSystem | None = None, **overrides: object) -> shaledb.DB:
    return shaledb.DB.over(LSMEngine(str(directory), options(**overrides), fs=fs))


def fill(db: shaledb.DB, count: int, tag: str) -> dict[str, str]:
    written = {f"k{i:04d}": f"{tag}{i}" for i in range(count)}
    for key, value in written.items():
        db.put(key, value)
    return written


def wait_until(condition: Callable[[], object], what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def alive(pid: int) -> bool:
    """Whether ``pid`` exists, unreaped zombies included."""
    return os.path.exists(f"/proc/{pid}")


def table_files(directory: Path) -> set[int]:
    return {int(n[:-4]) for n in os.listdir(directory) if n.endswith(".sst")}


def live_tables(db: shaledb.DB) -> set[int]:
    engine = db._engine
    assert isinstance(engine, LSMEngine)
    return engine._versions.current.numbers()


def assert_reopens_clean(directory: Path, expected: dict[str, str]) -> None:
    """Every acknowledged write is there, ``check`` is happy, every table file is live."""
    with open_db(directory) as db:
        assert dict(db.scan()) == expected
        assert table_files(directory) == live_tables(db)
    report = check_directory(str(directory))
    assert report.healthy, report.damage


class Held:
    """A job held in the worker: ``gate`` closed, released when the test ends."""

    def __init__(self, tmp_path: Path) -> None:
        self.notes = tmp_path / "notes"
        self.notes.mkdir()
        self.gate = tmp_path / "gate"
        self.fs = GatedFS(os.getpid(), str(self.notes))

    def close_gate(self) -> None:
        self.gate.touch()
        self.fs.gate = str(self.gate)

    def worker_pid(self) -> int:
        wait_until(lambda: noted_pids(str(self.notes), "held"), "a job held in the worker")
        [pid] = noted_pids(str(self.notes), "held")
        return pid

    def open_gate(self) -> None:
        self.fs.gate = ""
        self.gate.unlink(missing_ok=True)


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Held]:
    held = Held(tmp_path)
    yield held
    held.open_gate()


def run_in_thread(call: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, errors


@pytest.mark.parametrize("job", ["flush", "compact"])
def test_a_worker_killed_mid_job_loses_nothing_and_leaves_no_table_behind(
    tmp_path: Path, held: Held, job: str
) -> None:
    directory = tmp_path / "db"
    with open_db(directory, held.fs) as db:
        acked = fill(db, 300, "old")
        db.flush()
        acked.update(fill(db, 200, "new"))
        if job == "compact":
            db.flush()
        before = db.stats()
        assert before["worker_jobs"] >= 1, "the flushes so far ran in the worker"
        held.close_gate()
        thread, errors = run_in_thread(db.flush if job == "flush" else db.compact)
        pid = held.worker_pid()
        worker = table_worker.for_flushes if job == "flush" else table_worker.for_compactions
        assert pid == worker.pid != os.getpid()
        held_outputs = table_files(directory) - live_tables(db)
        assert held_outputs, "the held job wrote its output tables"
        os.kill(pid, signal.SIGKILL)
        thread.join(60)
        assert not thread.is_alive() and errors == []
        assert not alive(pid), "the killed worker was reaped"
        after = db.stats()
        # The engine built the tables itself; the worker's outputs are gone.
        assert after["worker_jobs"] == before["worker_jobs"]
        assert (after["flushes"], after["compactions"]) == (
            before["flushes"] + (job == "flush"),
            before["compactions"] + (job == "compact"),
        )
        assert not held_outputs & table_files(directory)
        assert table_files(directory) == live_tables(db)
        assert dict(db.scan()) == acked
        held.open_gate()
        acked.update(fill(db, 50, "later"))
        db.flush()  # the next job starts a new worker
        assert db.stats()["worker_jobs"] == after["worker_jobs"] + 1
        assert table_worker.for_flushes.pid not in (None, pid)
    assert_reopens_clean(directory, acked)


def test_flushes_go_on_while_a_compaction_is_held_in_its_worker(tmp_path: Path, held: Held) -> None:
    directory = tmp_path / "db"
    settings = dict(background_compaction=True, l0_compaction_trigger=2)
    with open_db(directory, held.fs, **settings) as db:
        acked: dict[str, str] = {}
        for round in range(2):  # two level-0 tables: a compaction starts the worker
            acked.update(fill(db, 200, f"r{round}-"))
            db.flush()
        wait_until(lambda: db.stats()["compactions"] == 1, "the first compaction")
        held.fs.only_pid = table_worker.for_compactions.pid
        held.close_gate()
        for round in range(2, 4):  # two more: the next compaction is held
            acked.update(fill(db, 200, f"r{round}-"))
            db.flush()
        assert held.worker_pid() == table_worker.for_compactions.pid
        flushes = db.stats()["flushes"]
        acked.update(fill(db, 200, "during"))
        db.flush()  # does not wait for the held compaction
        stats = db.stats()
        assert (stats["flushes"], stats["compactions"]) == (flushes + 1, 1)
        assert dict(db.scan()) == acked
        held.open_gate()
        wait_until(lambda: db.stats()["compactions"] >= 2, "the held compaction")
        assert dict(db.scan()) == acked
    assert_reopens_clean(directory, acked)


@pytest.mark.parametrize("job", ["flush", "compact"])
def test_close_during_a_job_stops_the_worker_and_loses_nothing(
    tmp_path: Path, held: Held, job: str
) -> None:
    directory = tmp_path / "db"
    db = open_db(directory, held.fs)
    acked = fill(db, 400, "v")
    if job == "compact":
        db.flush()
        acked.update(fill(db, 100, "w"))
        db.flush()
    held.close_gate()
    thread, errors = run_in_thread(db.flush if job == "flush" else db.compact)
    pid = held.worker_pid()
    started = time.monotonic()
    db.close()
    took = time.monotonic() - started
    thread.join(30)
    assert not thread.is_alive()
    assert [type(e) for e in errors] == [ClosedError]
    assert not alive(pid), "close() killed and reaped the busy worker"
    # Not a timing assertion on speed: a held job never ends by itself before the
    # gate's limit, so close() returning at all shows that it cancelled the job.
    assert took < 30
    assert_reopens_clean(directory, acked)


#: A process that writes, then holds a flush in the worker and waits to be killed.
_ENGINE_CHILD = """
import os, sys, threading, time
from pathlib import Path
import shaledb
from shaledb.engine import table_worker
from shaledb.engine.lsm import LSMEngine
from shaledb.options import Options
from worker_fs import GatedFS
directory, notes, gate = sys.argv[1:4]
fs = GatedFS(os.getpid(), notes)
db = shaledb.DB.over(LSMEngine(directory, Options(fsync="always", block_size=256), fs=fs))
for i in range(500):
    db.put(f"k{i:04d}", f"v{i}")
Path(gate).touch()
fs.gate = gate
threading.Thread(target=db.flush, daemon=True).start()
time.sleep(60)
"""


def test_the_engine_process_killed_under_a_busy_worker_leaves_nothing_live(
    tmp_path: Path,
) -> None:
    directory, notes, gate = tmp_path / "db", tmp_path / "notes", tmp_path / "gate"
    notes.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", _ENGINE_CHILD, str(directory), str(notes), str(gate)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        wait_until(lambda: noted_pids(str(notes), "held"), "the child's held flush")
        [pid] = noted_pids(str(notes), "held")
        assert pid != child.pid
        orphans = table_files(directory)
        assert orphans, "the held flush wrote its table"
    finally:
        child.kill()
        child.wait()
    wait_until(lambda: not alive(pid), "the orphaned worker to exit", limit=10)
    gate.unlink()
    expected = {f"k{i:04d}": f"v{i}" for i in range(500)}
    assert_reopens_clean(directory, expected)
    assert not orphans & table_files(directory), "open removed the unlisted table"


@pytest.mark.parametrize("background_process", [True, False], ids=["worker", "in-process"])
@pytest.mark.parametrize(
    ("op", "code"), [("write", errno.ENOSPC), ("sync", errno.EIO)], ids=["ENOSPC", "EIO-fsync"]
)
@pytest.mark.parametrize("job", ["flush", "compact"])
def test_an_io_error_while_building_tables_surfaces_the_same_in_both_modes(
    tmp_path: Path, background_process: bool, op: str, code: int, job: str
) -> None:
    directory, notes = tmp_path / "db", tmp_path / "notes"
    notes.mkdir()
    fs = FailingTableFS(op, code, str(notes))
    with open_db(directory, fs, background_process=background_process) as db:
        acked = fill(db, 300, "old")
        db.flush()
        acked.update(fill(db, 200, "new"))
        if job == "compact":
            db.flush()
        fs.armed = True
        with pytest.raises(StorageError) as raised:
            db.flush() if job == "flush" else db.compact()
        message = str(raised.value).replace(str(directory), "DIR")
        action = "fsync" if op == "sync" else op
        assert action in message and os.strerror(code) in message and ".sst" in message, message
        [where] = noted_pids(str(notes), "failed")
        if background_process:
            worker = table_worker.for_flushes if job == "flush" else table_worker.for_compactions
            assert where == worker.pid != os.getpid()
        else:
            assert where == os.getpid()
        fs.armed = False
        assert dict(db.scan()) == acked, "reads go on"
        if job == "flush":
            # A failed flush stops writes, as every failed background job does.
            with pytest.raises(StorageError):
                db.put("k9999", "x")
        assert table_files(directory) == live_tables(db), "the failed job's tables were removed"
    assert_reopens_clean(directory, acked)


def test_a_failed_flush_ends_the_compaction_thread_too(tmp_path: Path) -> None:
    directory, notes = tmp_path / "db", tmp_path / "notes"
    notes.mkdir()
    fs = FailingTableFS("sync", errno.EIO, str(notes))
    with open_db(directory, fs, background_compaction=True) as db:
        acked = fill(db, 300, "v")
        lanes = {t.name for t in threading.enumerate() if t.name.startswith("shaledb-")}
        assert {"shaledb-background", "shaledb-compaction"} <= lanes
        fs.armed = True
        with pytest.raises(StorageError):
            db.flush()
        wait_until(
            lambda: not any(t.name == "shaledb-compaction" for t in threading.enumerate()),
            "the compaction thread to end",
        )
        assert dict(db.scan()) == acked
    assert_reopens_clean(directory, acked)


def children() -> set[int]:
    """The process ids whose parent is this process."""
    me = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                found.add(int(entry))
    return found


def test_many_opens_and_closes_share_one_worker(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    with open_db(directory) as db:
        db.put("first", "x")
        db.flush()
    worker = table_worker.for_flushes.pid
    assert worker is not None
    before = children()
    assert worker in before
    for i in range(40):
        with open_db(directory) as db:
            db.put(f"k{i}", "v")
            db.flush()
            assert db.stats()["worker_jobs"] == 1
    assert table_worker.for_flushes.pid == worker
    assert children() == before, "no process was left behind by an open or a close"
