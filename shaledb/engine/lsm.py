"""The durable engine: a log-structured merge tree over one data directory.

Paths (docs/architecture.md walks through each):

- write: under the write lock, number the batch, append it to the WAL (in the OS
  before returning), apply it to the memtable; a full memtable becomes immutable and
  a new WAL starts. With ``fsync="always"`` the writer then waits for a group fsync.
- read: memtable, immutable memtables (newest first), level 0 tables (newest
  first), then one table per deeper level. No lock is taken: the view
  ``(memtable, immutables, version)`` is replaced whole, never changed.
- flush and compaction run on one background thread; each ends with an edit that is
  fsynced to the manifest before the new version is installed and old files deleted.
- recovery (the file-level steps in :mod:`shaledb.engine.recovery`): replay the
  manifest, replay the WALs it does not cover into a memtable, write that to a level 0
  table, start a new manifest, delete what is not live.

Implements :class:`shaledb.engine.base.Engine`; its durability rule holds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from shaledb.engine import compaction as compactions
from shaledb.engine import filenames, recovery
from shaledb.engine.base import Entry, Found, Op
from shaledb.engine.block_cache import BlockCache
from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.filenames import FileKind
from shaledb.engine.fs import FileSystem
from shaledb.engine.iterators import Columns, ColumnSource, live, merge, merge_windows
from shaledb.engine.manifest import (
    ManifestLog,
    ManifestState,
    TableRecord,
    encode_edit,
    read_current,
)
from shaledb.engine.memtable import MemTable
from shaledb.engine.sstable import Table, TableBuilder, TableCache
from shaledb.engine.version import NUM_LEVELS, FileMeta, Version, VersionEdit
from shaledb.engine.wal import WriteAheadLog
from shaledb.errors import ClosedError, ShaleDBError, StorageError
from shaledb.options import Options

#: Immutable memtables waiting for the flusher before writers wait too.
MAX_IMMUTABLES = 2
#: Scans wanting at most this many entries merge entry by entry; longer ones by windows.
_HEAP_MERGE_LIMIT = 1000
#: Entries per window of a long scan, and a typical block's entry count to sample by.
_WINDOW_ENTRIES = 4096
_ENTRIES_PER_BLOCK = 32
#: A manifest larger than this is rewritten as a snapshot.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_DEAD = TOMBSTONE | HAS_TTL


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
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._manifest_lock = threading.Lock()
        self._compaction_lock = threading.Lock()
        self.closed = False
        self._closing = False
        self._bg_error: ShaleDBError | None = None
        self._drop_filter: Callable[[bytes], bool] = lambda key: False
        self._cache = BlockCache(self.options.block_cache_bytes)
        self._tables = TableCache(self.options.max_open_tables)
        opts = self.options
        # Settings read on every put, as plain attributes.
        self._sync_always = opts.fsync == "always"
        self._deferred = threading.local()
        self._slowdown_at = opts.l0_slowdown_trigger if opts.background_compaction else 1 << 30
        self._flush_entries = opts.memtable_entries or 1 << 62
        self._flush_bytes = opts.memtable_bytes if opts.memtable_entries is None else 1 << 62
        self._counters = {
            "flush_bytes_written": 0,
            "compaction_bytes_written": 0,
            "compaction_bytes_read": 0,
            "flushes": 0,
            "compactions": 0,
            "write_stalls": 0,
            "write_slowdowns": 0,
        }
        try:
            self._recover()
        except BaseException:
            self._dir_lock.release()
            raise
        self._bg_thread = threading.Thread(
            target=self._background, name="shaledb-background", daemon=True
        )
        self._bg_thread.start()

    # -- recovery --------------------------------------------------------------------

    def _recover(self) -> None:
        fs, directory = self._fs, self.directory
        state = read_current(fs, directory)
        if state is None:
            recovery.start_without_current(fs, directory, fs.list_dir(directory))
            state = ManifestState(name="")
        numbered = [p for p in map(filenames.parse, fs.list_dir(directory)) if p is not None]
        self._next_file = max([state.next_file] + [n + 1 for _, n in numbered])
        self._catalog = state.catalog
        self._version = Version(
            recovery.open_levels(fs, directory, state, self._cache, self._tables)
        )
        wal_numbers = [n for k, n in numbered if k is FileKind.WAL]
        mem, self._seq = recovery.replay_wals(
            fs, directory, state.log_number, wal_numbers, state.last_seq
        )
        # Replayed writes go to a table now, so they are never replayed twice.
        meta = self._write_table(mem, "flush")
        if meta is not None:
            self._version = self._version.apply(VersionEdit(added=[(0, meta)]))
        wal_number = self._alloc_file()
        self._wal = WriteAheadLog(fs, self._path_of(FileKind.WAL, wal_number), self.options.fsync)
        self._mem = MemTable(wal_number)
        self._imms: list[MemTable] = []  # newest first
        self._manifest = self._new_manifest(wal_number)
        self._publish()
        live_tables = {f.number for _, f in self._version.files()}
        recovery.remove_obsolete(fs, directory, wal_number, live_tables, self._manifest.name)

    def _snapshot_edit(self, log_number: int) -> bytes:
        tables = [
            TableRecord(level, f.number, f.size, f.entries, f.smallest, f.largest)
            for level, f in self._version.files()
        ]
        return encode_edit(
            added=tables,
            log_number=log_number,
            next_file=self._next_file + 1,
            last_seq=self._seq,
            catalog=self._catalog,
        )

    def _new_manifest(self, log_number: int) -> ManifestLog:
        number = self._alloc_file()
        return ManifestLog(self._fs, self.directory, number, self._snapshot_edit(log_number))

    # -- helpers ---------------------------------------------------------------------

    def _path_of(self, kind: FileKind, number: int) -> str:
        name = filenames.wal_name(number) if kind is FileKind.WAL else filenames.table_name(number)
        return filenames.path(self.directory, name)

    def _alloc_file(self) -> int:
        number = self._next_file
        self._next_file += 1
        return number

    def _publish(self) -> None:
        # Readers take this one tuple; it is replaced whole, never changed.
        self._view = (self._mem, tuple(self._imms), self._version)

    def _check_usable(self) -> None:
        if self.closed:
            raise ClosedError("the database is closed")
        if self._bg_error is not None:
            raise StorageError(
                f"the database stopped accepting writes after a background error: {self._bg_error}"
            )

    def now_ms(self) -> int:
        return int(self.options.clock() * 1000)

    # -- writes ----------------------------------------------------------------------

    def write(self, ops: Sequence[Op], condition: Callable[[], bool] | None = None) -> bool:
        with self._lock:
            if self.closed or self._bg_error is not None:
                self._check_usable()
            if self._imms or len(self._version.levels[0]) >= self._slowdown_at:
                self._make_room()
            if condition is not None and not condition():
                return False
            if not ops:
                return True
            seq = self._seq + 1
            self._seq += len(ops)
            try:
                position = self._wal.append(seq, ops)
            except StorageError as exc:
                self._stop_writes(exc)
                raise
            mem = self._mem
            for flags, key, expire_ms, value in ops:
                mem.put(key, flags, expire_ms, value)
            mem.last_seq = self._seq
            if self._memtable_full(mem):
                self._rotate()
        if self._sync_always:
            self._sync_or_defer(position)
        return True

    def put(self, flags: int, key: bytes, value: bytes) -> None:
        """``write([(flags, key, 0, value)])`` in fewer steps: the hot path of single puts."""
        with self._lock:
            if (
                self._imms
                or self.closed
                or self._bg_error is not None
                or (len(self._version.levels[0]) >= self._slowdown_at)
            ):
                self._check_usable()
                self._make_room()
            self._seq = seq = self._seq + 1
            try:
                position = self._wal.append_put(seq, flags, key, value)
            except StorageError as exc:
                self._stop_writes(exc)
                raise
            mem = self._mem
            mem.put(key, flags, 0, value)
            mem.last_seq = seq
            if self._memtable_full(mem):
                self._rotate()
        if self._sync_always:
            self._sync_or_defer(position)

    def _sync_or_defer(self, position: int) -> None:
        deferred = self._deferred
        if getattr(deferred, "depth", 0):
            deferred.position = max(deferred.position, position)
        else:
            self._wal.sync_to(position)

    @contextlib.contextmanager
    def deferred_sync(self) -> Iterator[None]:
        """Within the block, ``always``-mode writes of this thread skip their own fsync;
        leaving the block fsyncs once for all of them (group commit across one caller's
        writes). Only for callers that acknowledge those writes after the block ends."""
        deferred = self._deferred
        deferred.depth = getattr(deferred, "depth", 0) + 1
        if deferred.depth == 1:
            deferred.position = 0
        try:
            yield
        finally:
            deferred.depth -= 1
            if deferred.depth == 0 and deferred.position:
                position, deferred.position = deferred.position, 0
                self._wal.sync_to(position)

    def _stop_writes(self, exc: StorageError) -> None:
        """Refuse every later write: a failed append may have left part of a record in the
        WAL, and a record after it would turn that torn tail into mid-log damage."""
        self._bg_error = exc

    def _memtable_full(self, mem: MemTable) -> bool:
        # Entries when the seed's memtable_size is set, else bytes (see __init__).
        return mem.approximate_bytes >= self._flush_bytes or len(mem) >= self._flush_entries

    def _make_room(self) -> None:
        """Slow down, then wait, while flushes or level 0 fall behind. Holds the lock."""
        while True:
            l0 = len(self._version.levels[0]) if self.options.background_compaction else 0
            if len(self._imms) < MAX_IMMUTABLES and l0 < self.options.l0_stop_trigger:
                break
            self._counters["write_stalls"] += 1
            self._cond.wait(0.1)
            self._check_usable()
        if self.options.background_compaction and (
            len(self._version.levels[0]) >= self.options.l0_slowdown_trigger
        ):
            # Spread the delay over many writes instead of stopping some of them outright.
            self._counters["write_slowdowns"] += 1
            self._lock.release()
            try:
                time.sleep(0.001)
            finally:
                self._lock.acquire()
            self._check_usable()

    def _rotate(self) -> None:
        """Freeze the memtable and start a new one on a new WAL. Holds the lock."""
        number = self._alloc_file()
        self._wal.rotate(self._path_of(FileKind.WAL, number))
        self._imms.insert(0, self._mem)
        self._mem = MemTable(number)
        self._mem.last_seq = self._seq
        self._publish()
        self._cond.notify_all()

    # -- reads -----------------------------------------------------------------------

    def get(self, key: bytes) -> Found | None:
        if self.closed:
            raise ClosedError("the database is closed")
        mem, imms, version = self._view
        found = mem.entries.get(key)
        if found is None:
            for imm in imms:
                found = imm.entries.get(key)
                if found is not None:
                    break
            else:
                found = version.get(key)
                if found is None:
                    return None
        flags = found[0]
        if flags & _DEAD and (flags & TOMBSTONE or found[1] <= self.now_ms()):
            return None
        return found

    def scan(
        self, lo: bytes, hi: bytes | None, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        now = self.now_ms()
        if limit is None or limit > _HEAP_MERGE_LIMIT:
            return self._scan_windows(lo, hi, reverse, now)
        with self._lock:
            if self.closed:
                raise ClosedError("the database is closed")
            mem, imms, version = self._view
            copied, bound = mem.range_items(lo, hi, reverse, limit, now)
        # With a limit, the memtable copy ends where enough results are certain; no
        # source needs to be read past that point.
        if bound is not None:
            if reverse:
                lo = bound
            else:
                hi = bound
        sources: list[Iterator[Entry]] = [iter(copied)]
        sources.extend(imm.iter_range(lo, hi, reverse) for imm in imms)
        for f in version.levels[0]:
            if f.overlaps(lo, hi):
                sources.append(f.table.iter_range(lo, hi, reverse))
        for level in range(1, NUM_LEVELS):
            files = version.overlapping(level, lo, hi)
            if files:
                sources.append(_chain(files[::-1] if reverse else files, lo, hi, reverse))
        return live(merge(sources, reverse), now)

    def _scan_windows(
        self, lo: bytes, hi: bytes | None, reverse: bool, now: int
    ) -> Iterator[Entry]:
        """A long scan: sources read as columns and merged window by window."""
        with self._lock:
            if self.closed:
                raise ClosedError("the database is closed")
            mem, imms, version = self._view
            copied = mem.columns_between(lo, hi)
        sources: list[ColumnSource] = [_columns_of(copied)]
        sources.extend(imm.columns_between for imm in imms)
        tables: list[Table] = []
        for f in version.levels[0]:
            if f.overlaps(lo, hi):
                sources.append(f.table.columns_in)
                tables.append(f.table)
        for level in range(1, NUM_LEVELS):
            files = version.overlapping(level, lo, hi)
            if files:
                sources.append(_level_columns(files))
                tables.extend(f.table for f in files)
        step = max(1, _WINDOW_ENTRIES // max(1, _ENTRIES_PER_BLOCK))
        bounds = sorted(key for t in tables for key in t.block_last_keys[step - 1 :: step])
        return merge_windows(sources, bounds, lo, hi, now, reverse)

    # -- flush and compaction ------------------------------------------------------------

    def flush(self) -> None:
        with self._lock:
            self._check_usable()
            if len(self._mem):
                self._rotate()
            waiting = list(self._imms)
            while any(m in self._imms for m in waiting):
                self._check_usable()
                self._cond.wait(0.1)
        self._wal.sync()

    def compact(self, lo: bytes | None = None, hi: bytes | None = None) -> None:
        self._check_usable()
        with self._compaction_lock:
            chosen = compactions.for_range(self._version, lo, hi)
            if chosen is not None:
                self._run_compaction(chosen, allow_move=False)

    def _background(self) -> None:
        while True:
            with self._cond:
                while not self._closing and not self._imms and not self._compaction_due():
                    self._cond.wait()
                if self._closing:
                    return
                imm = self._imms[-1] if self._imms else None
            try:
                if imm is not None:
                    self._flush_immutable(imm)
                else:
                    with self._compaction_lock:
                        chosen = compactions.pick(self._version, self.options)
                        if chosen is not None:
                            self._run_compaction(chosen, allow_move=True)
            except ShaleDBError as exc:
                with self._cond:
                    self._bg_error = exc
                    self._cond.notify_all()
                return

    def _compaction_due(self) -> bool:
        return (
            self.options.background_compaction
            and compactions.pick(self._version, self.options) is not None
        )

    def _write_table(self, mem: MemTable, purpose: str) -> FileMeta | None:
        """Write a memtable to one new table; None when it is empty."""
        if not len(mem):
            return None
        number, builder = self._new_builder()
        try:
            builder.add_columns(*mem.columns())
        except BaseException:
            builder.abandon()
            self._fs.remove(builder.path)
            raise
        return self._finish_table(number, builder, purpose)

    def _new_builder(self) -> tuple[int, TableBuilder]:
        number = self._alloc_file_locked()
        path = self._path_of(FileKind.TABLE, number)
        opts = self.options
        builder = TableBuilder(
            self._fs, path, opts.block_size, opts.bloom_bits_per_key, opts.compression
        )
        return number, builder

    def _finish_table(self, number: int, builder: TableBuilder, purpose: str) -> FileMeta:
        """Finish ``builder`` (fsync included) and open the table it wrote."""
        try:
            info = builder.finish()
        except BaseException:
            builder.abandon()
            self._fs.remove(builder.path)
            raise
        self._counters[f"{purpose}_bytes_written"] += info.size
        table = Table(self._fs, builder.path, number, self._cache, self._tables)
        return FileMeta(number, info.size, info.entries, info.smallest, info.largest, table)

    def _alloc_file_locked(self) -> int:
        with self._lock:
            return self._alloc_file()

    def _flush_immutable(self, imm: MemTable) -> None:
        meta = self._write_table(imm, "flush")
        with self._manifest_lock:
            with self._lock:
                older_pending = [m for m in self._imms if m is not imm]
                log_number = older_pending[-1].wal_number if older_pending else self._mem.wal_number
                edit = VersionEdit(
                    added=[(0, meta)] if meta else [],
                    log_number=log_number,
                    next_file=self._next_file,
                    last_seq=self._seq,
                )
            self._log_edit(edit)
            with self._lock:
                self._version = self._version.apply(edit)
                self._imms.remove(imm)
                self._counters["flushes"] += 1
                self._publish()
                self._cond.notify_all()
        self._fs.remove(self._path_of(FileKind.WAL, imm.wal_number))

    def _log_edit(self, edit: VersionEdit) -> None:
        """Append ``edit`` to the manifest durably. Holds the manifest lock."""
        self._manifest.append(
            encode_edit(
                added=[
                    TableRecord(level, f.number, f.size, f.entries, f.smallest, f.largest)
                    for level, f in edit.added
                ],
                removed=edit.removed,
                log_number=edit.log_number,
                next_file=edit.next_file,
                last_seq=edit.last_seq,
            )
        )
        if self._manifest.size > MAX_MANIFEST_BYTES:
            self._rewrite_manifest(edit)

    def _rewrite_manifest(self, pending: VersionEdit) -> None:
        with self._lock:
            log_number = pending.log_number
            if log_number is None:
                log_number = self._imms[-1].wal_number if self._imms else self._mem.wal_number
            saved = self._version
            self._version = self._version.apply(pending)
            try:
                old = self._manifest
                self._manifest = self._new_manifest(log_number)
            finally:
                self._version = saved
        old.close()
        self._fs.remove(old.path)

    def _run_compaction(self, chosen: compactions.Compaction, allow_move: bool) -> None:
        files = chosen.input_files()
        if allow_move and len(files) == 1 and files[0][0] != chosen.output_level:
            # A lone table that overlaps nothing below moves down without a rewrite.
            level, meta = files[0]
            edit = VersionEdit(added=[(chosen.output_level, meta)], removed=[(level, meta.number)])
            self._install(edit)
            return
        now = self.now_ms()
        target = self.options.target_file_bytes
        outputs: list[FileMeta] = []
        builder: tuple[int, TableBuilder] | None = None
        try:
            for window in compactions.merged_windows(chosen):
                keys, flags, values = compactions.surviving(window, chosen, now, self._drop_filter)
                if not keys:
                    continue
                if builder is None:
                    builder = self._new_builder()
                builder[1].add_columns(keys, flags, values)
                if builder[1].file_size >= target:
                    outputs.append(self._finish_table(*builder, "compaction"))
                    builder = None
            if builder is not None:
                outputs.append(self._finish_table(*builder, "compaction"))
                builder = None
        except BaseException:
            if builder is not None:
                builder[1].abandon()
                self._fs.remove(builder[1].path)
            for meta in outputs:
                self._fs.remove(meta.table.path)
            raise
        edit = VersionEdit(
            added=[(chosen.output_level, m) for m in outputs],
            removed=[(level, f.number) for level, f in files],
        )
        self._install(edit)
        self._counters["compactions"] += 1
        self._counters["compaction_bytes_read"] += chosen.input_bytes()
        for _, f in files:
            self._cache.forget_table(f.number)
            self._tables.forget(f.number)
            self._fs.remove(f.table.path)

    def _install(self, edit: VersionEdit) -> None:
        with self._manifest_lock:
            self._log_edit(edit)
            with self._lock:
                self._version = self._version.apply(edit)
                self._publish()
                self._cond.notify_all()

    # -- catalog, stats, lifecycle -------------------------------------------------------

    def set_drop_filter(self, predicate: Callable[[bytes], bool]) -> None:
        self._drop_filter = predicate

    def load_catalog(self) -> dict[str, Any] | None:
        return None if self._catalog is None else dict(self._catalog)

    def save_catalog(self, catalog: dict[str, Any]) -> None:
        self._check_usable()
        with self._manifest_lock:
            self._manifest.append(encode_edit(catalog=catalog))
            self._catalog = dict(catalog)

    def stats(self) -> dict[str, Any]:
        if self.closed:
            raise ClosedError("the database is closed")
        mem, imms, version = self._view
        levels = [
            {
                "level": n,
                "files": len(files),
                "bytes": sum(f.size for f in files),
                "entries": sum(f.entries for f in files),
            }
            for n, files in enumerate(version.levels)
        ]
        disk = sum(level["bytes"] for level in levels)
        user = self._wal.logged_bytes
        written = self._counters["flush_bytes_written"] + self._counters["compaction_bytes_written"]
        return {
            "engine": "lsm",
            "directory": self.directory,
            "fsync": self.options.fsync,
            "sequence": self._seq,
            "memtable_entries": len(mem),
            "memtable_bytes": mem.approximate_bytes,
            "immutable_memtables": len(imms),
            "wal_bytes": self._wal.size,
            "levels": levels,
            "table_bytes": disk,
            "block_cache_bytes": self._cache.used,
            "block_cache_hits": self._cache.hits,
            "block_cache_misses": self._cache.misses,
            "open_tables": len(self._tables),
            "table_loads": self._tables.loads,
            "wal_bytes_written": user,
            "write_amplification": round(written / user, 3) if user else 0.0,
            **self._counters,
        }

    def close(self) -> None:
        with self._cond:
            if self.closed:
                return
            self._closing = True
            self._cond.notify_all()
        self._bg_thread.join()
        with self._lock:
            self.closed = True
            try:
                self._wal.close()
                self._manifest.close()
            finally:
                self._dir_lock.release()


def _chain(files: list[FileMeta], lo: bytes, hi: bytes | None, reverse: bool) -> Iterator[Entry]:
    for f in files:
        yield from f.table.iter_range(lo, hi, reverse)


def _columns_of(columns: Columns) -> ColumnSource:
    """A column source over sorted columns already in memory."""
    keys, flags, values = columns

    def window(lo: bytes | None, hi: bytes | None) -> Columns:
        start = 0 if lo is None else bisect_left(keys, lo)
        end = len(keys) if hi is None else bisect_left(keys, hi, start)
        return keys[start:end], flags[start:end], values[start:end]

    return window


def _level_columns(files: list[FileMeta]) -> ColumnSource:
    """A column source over one level's tables (disjoint, in key order)."""

    def window(lo: bytes | None, hi: bytes | None) -> Columns:
        keys: list[bytes] = []
        flags = bytearray()
        values: list[bytes] = []
        for f in files:
            if f.overlaps(lo, hi):
                k, fl, v = f.table.columns_in(lo, hi)
                keys += k
                flags += fl
                values += v
        return keys, bytes(flags), values

    return window
