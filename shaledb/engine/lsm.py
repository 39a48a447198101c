"""The durable engine: a log-structured merge tree over one data directory.

This module is the facade and the lifecycle; each path lives in its own module
(docs/architecture.md walks through each):

- write: :mod:`~shaledb.engine.write_path` (WAL, memtable, rotation, stalls);
- read: :mod:`~shaledb.engine.read_path`, lock-free over one published
  :class:`~shaledb.engine.state.EngineState`;
- flush and compaction run on one background thread here:
  :mod:`~shaledb.engine.flush`, :mod:`~shaledb.engine.compaction`; each ends with an
  edit that the :class:`~shaledb.engine.version_set.VersionSet` makes durable before
  the new version is installed and old files are deleted;
- recovery: :mod:`~shaledb.engine.recovery`.

Implements :class:`shaledb.engine.base.Engine`; its durability rule holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from shaledb.engine import compaction as compactions
from shaledb.engine import filenames, read_path, recovery
from shaledb.engine.base import Entry, Found, Op
from shaledb.engine.block_cache import BlockCache
from shaledb.engine.flush import flush_immutable
from shaledb.engine.fs import FileSystem
from shaledb.engine.state import EngineState
from shaledb.engine.table_cache import TableCache
from shaledb.engine.table_writer import TableWriter
from shaledb.engine.version_edit import VersionEdit
from shaledb.engine.version_set import VersionSet
from shaledb.engine.write_path import WritePath
from shaledb.errors import ClosedError, ShaleDBError
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
        self._closing = False
        self._compaction_lock = threading.Lock()
        self._drop_filter: Callable[[bytes], bool] = lambda key: False
        self._cache = BlockCache(self.options.block_cache_bytes)
        self._table_cache = TableCache(self.options.max_open_tables)
        self._versions = VersionSet(self._fs, directory, self._cache, self._table_cache)
        self._tables = TableWriter(self._fs, directory, self.options, self._versions)
        self._compactions = 0
        self._compaction_bytes_read = 0
        try:
            wal, mem = recovery.recover(
                self._fs, directory, self.options, self._versions, self._tables
            )
        except BaseException:
            self._versions.close()
            self._dir_lock.release()
            raise
        self._writes = WritePath(directory, self.options, self._versions, wal, mem)
        self._versions.sync_log = self._writes.sync_log
        self._bg_thread = threading.Thread(
            target=self._background, name="shaledb-background", daemon=True
        )
        self._bg_thread.start()

    @property
    def closed(self) -> bool:
        return self._writes.closed

    def now_ms(self) -> int:
        return int(self.options.clock() * 1000)

    # -- writes and reads ------------------------------------------------------------

    def write(self, ops: Sequence[Op], condition: Callable[[], bool] | None = None) -> bool:
        return self._writes.write(ops, condition)

    def put(self, flags: int, key: bytes, value: bytes) -> None:
        """``write([Op(flags, key, 0, value)])``: one path for every write."""
        self._writes.write((Op(flags, key, 0, value),))

    def deferred_sync(self) -> AbstractContextManager[None]:
        return self._writes.deferred_sync()

    def get(self, key: bytes) -> Found | None:
        writes = self._writes
        if writes.closed or writes.read_error is not None:
            self._check_readable()
        return read_path.get(writes.state, key, self.now_ms())

    def _check_readable(self) -> None:
        if self._writes.closed:
            raise ClosedError("the database is closed")
        if self._writes.read_error is not None:
            raise self._writes.read_error

    def scan(
        self, lo: bytes, hi: bytes | None, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        self._check_readable()
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
            chosen = compactions.for_range(self._versions.current, lo, hi)
            if chosen is not None:
                self._run_compaction(chosen, allow_move=False)

    def _compaction_due(self) -> bool:
        return (
            self.options.background_compaction
            and compactions.pick(self._versions.current, self.options) is not None
        )

    def _background(self) -> None:
        writes = self._writes
        while True:
            with writes.cond:
                while not self._closing and not writes.state.imms and not self._compaction_due():
                    writes.cond.wait()
                if self._closing:
                    return
                imms = writes.state.imms
                imm = imms[-1] if imms else None
            try:
                if imm is not None:
                    flush_immutable(
                        imm, self._fs, self.directory, self._tables, self._versions, writes
                    )
                else:
                    with self._compaction_lock:
                        chosen = compactions.pick(self._versions.current, self.options)
                        if chosen is not None:
                            self._run_compaction(chosen, allow_move=True)
            except ShaleDBError as exc:
                writes.stop(exc)
                return

    def _run_compaction(self, chosen: compactions.Compaction, allow_move: bool) -> None:
        move = compactions.trivial_move(chosen) if allow_move else None
        if move is not None:
            self._versions.log_and_apply(move, self._writes.install)
            return
        edit = compactions.run(
            chosen, self._tables, self.now_ms(), self._drop_filter, self.options.target_file_bytes
        )
        self._versions.log_and_apply(edit, self._writes.install)
        self._compactions += 1
        self._compaction_bytes_read += chosen.input_bytes()
        for _, f in chosen.input_files():
            self._cache.forget_table(f.number)
            self._table_cache.forget(f.number)
            self._fs.remove(f.table.path)

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
            "write_stalls": writes.write_stalls,
            "write_slowdowns": writes.write_slowdowns,
        }

    def close(self) -> None:
        writes = self._writes
        with writes.cond:
            if writes.closed:
                return
            self._closing = True
            writes.cond.notify_all()
        self._bg_thread.join()
        with writes.lock:
            writes.closed = True
            try:
                writes.wal.close()
                self._versions.close()
            finally:
                self._dir_lock.release()
