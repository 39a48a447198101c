"""The durable engine: a log-structured merge tree over one data directory.

This module is the facade and the lifecycle; each path lives in its own module
(docs/architecture.md walks through each):

- write: :mod:`~shaledb.engine.write_path` (WAL, memtable, rotation, stalls);
- read: :mod:`~shaledb.engine.read_path`, lock-free over one published
  :class:`~shaledb.engine.state.EngineState`;
- flush and compaction run on background threads here (one, or one for each):
  :mod:`~shaledb.engine.flush`, :mod:`~shaledb.engine.compaction`; their tables are
  built in the worker process of :mod:`~shaledb.engine.table_worker` (option
  ``background_process``) or on the thread itself; each ends with an edit that the
  :class:`~shaledb.engine.version_set.VersionSet` makes durable before the new
  version is installed and old files are deleted;
- recovery: :mod:`~shaledb.engine.recovery`.

Implements :class:`shaledb.engine.base.Engine`; its durability rule holds.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

from shaledb.engine import compaction as compactions
from shaledb.engine import filenames, read_path, recovery, table_worker
from shaledb.engine.base import RawEntry, RawFound, RawOp
from shaledb.engine.block_cache import BlockCache
from shaledb.engine.flush import flush_immutable
from shaledb.engine.fs import DirectoryLock, FileSystem
from shaledb.engine.memtable import MemTable
from shaledb.engine.state import EngineState
from shaledb.engine.table_cache import TableCache
from shaledb.engine.table_writer import TableWriter
from shaledb.engine.version import FileMeta
from shaledb.engine.version_edit import VersionEdit
from shaledb.engine.version_set import VersionSet
from shaledb.engine.write_path import WritePath
from shaledb.errors import ClosedError, LockedError, ShaleDBError, StorageError
from shaledb.options import Options


class LSMEngine:
    """A durable, sorted key-value engine in one directory. Thread-safe."""

    def __init__(
        self, directory: str, options: Options | None = None, fs: FileSystem | None = None
    ) -> None:
        self.directory = directory
        self.options = options or Options()
        self._fs = fs or FileSystem()
        self._fs.make_dirs(directory)
        self._dir_lock = self._fs.lock(filenames.path(directory, filenames.LOCK))
        self._compaction_lock = threading.Lock()
        self._drop_filter: Callable[[bytes], bool] = _no_key_dropped
        self._cache = BlockCache(self.options.block_cache_bytes)
        self._table_cache = TableCache(self.options.max_open_tables)
        self._versions = VersionSet(self._fs, directory, self._cache, self._table_cache)
        self._tables = TableWriter(self._fs, directory, self.options, self._versions)
        self._compactions = 0
        self._compaction_bytes_read = 0
        self._worker_jobs = 0
        try:
            wal, mem = recovery.recover(
                self._fs, directory, self.options, self._versions, self._tables
            )
        except BaseException:
            self._versions.close()
            self._dir_lock.release()
            raise
        self._writes = WritePath(directory, self.options, self._versions, wal, mem)
        self._now_ms = self.now_ms  # bound once: every get passes it
        # The hottest write goes straight to the write path (an instance attribute wins
        # over the method, which keeps the signature and docs): one Python frame less.
        self.put = self._writes.put  # type: ignore[method-assign]
        self._versions.sync_log = self._writes.sync_log
        self._versions.on_failure = self._writes.stop
        # With a worker process, compactions get a thread (and a worker) of their own, so
        # that a long compaction never holds up the flushes writers wait for.
        lanes = (
            (_FLUSHES, _COMPACTIONS)
            if self.options.background_process and self.options.background_compaction
            else (_EVERY_JOB,)
        )
        threads = tuple(
            threading.Thread(
                target=_background,
                args=(weakref.ref(self), self._writes, lane),
                name=_THREAD_NAMES[lane],
                daemon=True,
            )
            for lane in lanes
        )
        self._parts = _Parts(
            directory, self._writes, self._versions, self._dir_lock, threads, self._compaction_lock
        )
        # A handle dropped without close() still releases its directory, with a
        # ResourceWarning, as an unclosed file does.
        self._finalizer = weakref.finalize(self, _shut_down, self._parts, True)
        for thread in threads:
            thread.start()

    @property
    def closed(self) -> bool:
        return self._writes.closed

    def now_ms(self) -> int:
        return int(self.options.clock() * 1000)

    # -- writes and reads ------------------------------------------------------------

    def write(self, ops: Sequence[RawOp], condition: Callable[[], bool] | None = None) -> bool:
        return self._writes.write(ops, condition)

    def put(self, flags: int, key: bytes, value: bytes) -> None:
        """``write([Op(flags, key, 0, value)])`` (:meth:`WritePath.put`, which replaces
        this method on every instance)."""
        self._writes.put(flags, key, value)

    def delete(self, flags: int, key: bytes) -> bool:
        return self._writes.delete((flags, key, 0, b""), self._now_ms)

    def deferred_sync(self) -> AbstractContextManager[None]:
        return self._writes.deferred_sync()

    def get(self, key: bytes) -> RawFound | None:
        writes = self._writes
        if writes.closed or writes.read_error is not None:
            self._check_readable()
        return read_path.get(writes.state, key, self._now_ms)

    def _check_readable(self) -> None:
        if self._writes.closed:
            raise ClosedError("the database is closed")
        if self._writes.read_error is not None:
            raise self._writes.read_error

    def scan(
        self, lo: bytes, hi: bytes | None, reverse: bool = False, limit: int | None = None
    ) -> Iterator[RawEntry]:
        # _state checks that the engine is readable, under the lock.
        return read_path.scan(self._state, self._writes.lock, lo, hi, reverse, limit, self.now_ms())

    def _state(self) -> EngineState:
        self._check_readable()
        return self._writes.state

    # -- flush and compaction ------------------------------------------------------------

    def flush(self) -> None:
        writes = self._writes
        writes.wait_flushed(writes.freeze())
        writes.wal.sync()

    def compact(self, lo: bytes | None = None, hi: bytes | None = None) -> None:
        self._writes.check_usable()
        with self._compaction_lock:
            # Again under the lock: a close waits for this lock, then shuts everything.
            self._writes.check_usable()
            chosen = compactions.for_range(self._versions.current, lo, hi)
            if chosen is not None:
                try:
                    self._run_compaction(chosen, allow_move=False)
                except table_worker.JobCancelled:
                    raise ClosedError("the database was closed during the compaction") from None

    def _next_job(self, lane: str) -> MemTable | compactions.Compaction | None:
        """For ``lane``: the oldest immutable memtable, else a compaction that is due,
        else None (the flush lane takes only the first, the compaction lane the second)."""
        imms = self._writes.state.imms
        if imms and lane != _COMPACTIONS:
            return imms[-1]
        if self.options.background_compaction and lane != _FLUSHES:
            return compactions.pick(self._versions.current, self.options)
        return None

    def _run_job(self, job: MemTable | compactions.Compaction) -> None:
        if isinstance(job, MemTable):
            flush_immutable(
                job, self._fs, self.directory, self._flush_table, self._versions, self._writes
            )
            return
        with self._compaction_lock:
            # Picked again under the lock: a manual compaction may have run meanwhile.
            chosen = compactions.pick(self._versions.current, self.options)
            if chosen is not None:
                self._run_compaction(chosen, allow_move=True)

    def _check_lock(self) -> None:
        if not self._dir_lock.still_held():
            self._writes.stop(
                LockedError(
                    f"{self._dir_lock.path} was deleted or replaced while the database was "
                    "open, so another process may have opened it too; writes stopped to "
                    "protect the data (close this handle and reopen)"
                )
            )

    def _run_compaction(self, chosen: compactions.Compaction, allow_move: bool) -> None:
        move = compactions.trivial_move(chosen) if allow_move else None
        if move is not None:
            self._versions.log_and_apply(move, self._writes.install)
            return
        edit = compactions.replacement(chosen, self._compaction_outputs(chosen))
        self._versions.log_and_apply(edit, self._writes.install)
        self._compactions += 1
        self._compaction_bytes_read += chosen.input_bytes()
        for _, f in chosen.input_files():
            self._cache.forget_table(f.number)
            self._table_cache.forget(f.number)
            f.table.delete_when_unused(self._fs)

    def _flush_table(self, imm: MemTable) -> FileMeta | None:
        """``imm`` written to a durable, open level-0 table (None when it is empty)."""
        tables = self._tables
        if self.options.background_process and len(imm):
            job = table_worker.FlushJob(
                self._fs,
                self.directory,
                tables.settings,
                self._versions.new_file_number(),
                tables.flush_seqs(imm),
                table_worker.PackedMemTable.of(imm),
            )
            built = self._in_worker(job, "flush")
            if built is not None:
                return built[0]
        return tables.write_memtable(imm)

    def _compaction_outputs(self, chosen: compactions.Compaction) -> list[FileMeta]:
        """The durable, open output tables of ``chosen``."""
        now_ms, target = self.now_ms(), self.options.target_file_bytes
        if self.options.background_process:
            reserved = table_worker.reserve_numbers(chosen, target)
            job = table_worker.CompactionJob(
                self._fs,
                self.directory,
                self._tables.settings,
                [
                    (level, list(map(table_worker.record_of, files)))
                    for level, files in chosen.inputs
                ],
                chosen.output_level,
                chosen.drops_tombstones,
                tuple(self._versions.new_file_number() for _ in range(reserved)),
                now_ms,
                self._drop_filter,
            )
            built = self._in_worker(job, "compaction")
            if built is not None:
                return built
        return compactions.run(chosen, self._tables, now_ms, self._drop_filter, target)

    def _in_worker(self, job: table_worker.Job, purpose: str) -> list[FileMeta] | None:
        """Run ``job`` in the table worker and open its outputs; None when the job must
        run here instead (it does not pickle, no worker can be had, or the worker died:
        its outputs removed).

        Raises:
            JobCancelled: the engine began to close (the job's outputs removed).
            ShaleDBError: what the job raised in the worker, as it would here.
        """
        try:
            built = table_worker.serving(job).run(job, self._closing)
        except (table_worker.NotSendable, table_worker.WorkerUnavailable):
            return None
        except (table_worker.WorkerLost, table_worker.JobCancelled):
            for number in job.numbers:
                self._fs.remove(filenames.path(self.directory, filenames.table_name(number)))
            if self._closing():
                raise table_worker.JobCancelled from None
            return None
        self._worker_jobs += 1
        return [self._tables.adopt(table, purpose) for table in built]

    def _closing(self) -> bool:
        return self._writes.closing

    # -- catalog, stats, lifecycle -------------------------------------------------------

    def set_drop_filter(self, predicate: Callable[[bytes], bool]) -> None:
        self._drop_filter = predicate

    def load_catalog(self) -> dict[str, Any] | None:
        catalog = self._versions.catalog
        return None if catalog is None else dict(catalog)

    def save_catalog(self, catalog: dict[str, Any]) -> None:
        self._writes.check_usable()
        self._versions.log_and_apply(VersionEdit(catalog=dict(catalog)))

    def stats(self) -> dict[str, Any]:
        writes = self._writes
        if writes.closed:
            raise ClosedError("the database is closed")
        mem, imms, version = writes.state
        levels = [
            {
                "level": n,
                "files": len(files),
                "bytes": sum(f.size for f in files),
                "entries": sum(f.entries for f in files),
            }
            for n, files in enumerate(version.levels)
        ]
        user = writes.wal.logged_bytes
        written = self._tables.bytes_written
        return {
            "engine": "lsm",
            "directory": self.directory,
            "fsync": self.options.fsync,
            "sequence": self._versions.last_seq,
            "memtable_entries": len(mem),
            "memtable_bytes": mem.approximate_bytes,
            "immutable_memtables": len(imms),
            "wal_bytes": writes.wal.size,
            "levels": levels,
            "table_bytes": sum(level["bytes"] for level in levels),
            "block_cache_bytes": self._cache.used,
            "block_cache_hits": self._cache.hits,
            "block_cache_misses": self._cache.misses,
            "open_tables": len(self._table_cache),
            "table_loads": self._table_cache.loads,
            "wal_bytes_written": user,
            "write_amplification": round(sum(written.values()) / user, 3) if user else 0.0,
            "flush_bytes_written": written["flush"],
            "compaction_bytes_written": written["compaction"],
            "compaction_bytes_read": self._compaction_bytes_read,
            "flushes": writes.flushes,
            "compactions": self._compactions,
            "worker_jobs": self._worker_jobs,
            "write_stalls": writes.write_stalls,
            "write_slowdowns": writes.write_slowdowns,
        }

    def close(self) -> None:
        """Stop background work, make the log durable and release the directory."""
        if self._finalizer.detach() is not None:
            _shut_down(self._parts, warn=False)


class _Parts(NamedTuple):
    """What shutting an engine down needs, without the engine itself: the finalizer
    and the background thread hold this, so that a dropped engine can be collected."""

    directory: str
    writes: WritePath
    versions: VersionSet
    dir_lock: DirectoryLock
    threads: tuple[threading.Thread, ...]
    #: Held by a compaction; a close takes it so that no manual compaction is still
    #: writing files or the manifest once the directory is released.
    compaction_lock: threading.Lock


def _shut_down(parts: _Parts, warn: bool) -> None:
    writes = parts.writes
    if warn:
        warnings.warn(
            f"shaledb database {parts.directory} was not closed; closing it now",
            ResourceWarning,
            stacklevel=2,
        )
    with writes.cond:
        if writes.closed:
            return
        writes.closing = True
        writes.cond.notify_all()
    for thread in parts.threads:
        if threading.current_thread() is not thread:
            thread.join()
    try:
        # A manual compaction in another thread ends first: one in the worker is
        # cancelled (it sees ``closing``), one in this process runs to its edit.
        with parts.compaction_lock:
            with writes.lock:
                writes.close_writes()
                writes.wal.close()
            # Outside the write lock: log_and_apply takes the manifest lock, then this one.
            parts.versions.close()
    finally:
        parts.dir_lock.release()


#: Seconds the background thread sleeps when idle before it checks the LOCK file.
_IDLE_WAKE = 1.0
#: The lanes of background work: one thread for every job, or one for flushes (and the
#: LOCK check) and one for compactions.
_EVERY_JOB, _FLUSHES, _COMPACTIONS = "every job", "flushes", "compactions"
_THREAD_NAMES = {
    _EVERY_JOB: "shaledb-background",
    _FLUSHES: "shaledb-background",
    _COMPACTIONS: "shaledb-compaction",
}


def _background(engine_ref: weakref.ref[LSMEngine], writes: WritePath, lane: str) -> None:
    """Run ``lane``'s jobs while the engine lives. Holds the engine only while working."""
    while True:
        with writes.cond:
            engine = engine_ref()
            if writes.closing or engine is None:
                return
            if lane == _COMPACTIONS and writes.error is not None:
                return  # writes stopped: as with one thread, no more background work
            job = engine._next_job(lane)
            if job is None:
                engine = None
                writes.cond.wait(_IDLE_WAKE)
        if job is None:
            engine = engine_ref()
            if engine is not None and lane != _COMPACTIONS:
                engine._check_lock()  # outside the lock: stopping takes it
            engine = None
            continue
        assert engine is not None  # held since the job was picked
        try:
            engine._run_job(job)
        except table_worker.JobCancelled:
            return  # closing: the job's writes are still in the WAL, its inputs live
        except ShaleDBError as exc:
            writes.stop(exc)
            return
        except Exception as exc:  # a bug: stop writes loudly instead of stalling them
            writes.stop(StorageError(f"background flush or compaction failed: {exc!r}"))
            raise
        finally:
            # Drop the references now: they keep the engine and the job's input tables
            # (whose files are deleted when unused) alive.
            engine = job = None


def _no_key_dropped(key: bytes) -> bool:
    """The drop filter until one is set: no key belongs to a dropped table."""
    return False
