"""The version set: the one owner of the manifest and of the engine's counters.

It holds the current :class:`~shaledb.engine.version.Version`, the next file number,
the last sequence number, the log number (the oldest WAL still needed) and the
catalog, and it alone writes the manifest: every change goes through
:meth:`VersionSet.log_and_apply`, which makes the edit durable before the new version
is installed.

Invariant: after a manifest write fails the set logs nothing more. The state of the
file is then unknown (part of an edit may be on disk), and an edit logged on top of it
could be read back against the wrong base; the engine turns read-only until reopened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from shaledb.engine import filenames
from shaledb.engine.block_cache import BlockCache
from shaledb.engine.fs import FileSystem
from shaledb.engine.manifest import ManifestState, ManifestWriter
from shaledb.engine.sstable.reader import SSTable
from shaledb.engine.table_cache import TableCache
from shaledb.engine.version import NUM_LEVELS, FileMeta, Version
from shaledb.engine.version_edit import VersionEdit
from shaledb.errors import CorruptionError, ShaleDBError, StorageError

#: A manifest larger than this is rewritten as a snapshot.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


class VersionSet:
    """The current version, the counters and the manifest. Thread-safe.

    ``last_seq`` is written only by the write path, under its write lock.
    """

    def __init__(
        self, fs: FileSystem, directory: str, block_cache: BlockCache, table_cache: TableCache
    ) -> None:
        self._fs = fs
        self.directory = directory
        self._block_cache = block_cache
        self._table_cache = table_cache
        self.current = Version()
        self.log_number = 0
        self.last_seq = 0
        self.flushed_seq = 0
        self.catalog: dict[str, Any] | None = None
        self.error: ShaleDBError | None = None
        self._next_file = 1
        self._numbers_lock = threading.Lock()
        # Serializes manifest writes and installs, so versions are installed in log order.
        self._manifest_lock = threading.Lock()
        self._manifest: ManifestWriter | None = None
        #: Makes every write so far durable and returns the last sequence number it
        #: covers; called before each edit, so an edit never gets ahead of the log
        #: (after a power cut the state is a prefix of history). Set by the engine
        #: once its write path runs.
        self.sync_log: Callable[[], int] = lambda: self.last_seq
        #: Told of the first failed manifest write, so that writes stop at once.
        self.on_failure: Callable[[ShaleDBError], None] = lambda exc: None

    # -- recovery ----------------------------------------------------------------------

    def recover(self, state: ManifestState, numbers_on_disk: list[int]) -> None:
        """Take the replayed manifest ``state``: open its tables, set the counters.

        ``numbers_on_disk`` are the numbers of every numbered file in the directory, so
        that no new file reuses one.

        Raises:
            CorruptionError: a listed table is missing, of another size, or damaged.
        """
        self.current = Version(self._open_levels(state))
        self.log_number = state.log_number
        self.last_seq = state.last_seq
        self.flushed_seq = state.flushed_seq or 0
        self.catalog = state.catalog
        self._next_file = max([state.next_file] + [n + 1 for n in numbers_on_disk])

    def _open_levels(self, state: ManifestState) -> list[list[FileMeta]]:
        levels: list[list[FileMeta]] = [[] for _ in range(NUM_LEVELS)]
        for level, rec in state.tables.values():
            if not 0 <= level < NUM_LEVELS:
                raise CorruptionError(
                    f"manifest {state.name} puts table {rec.number} at level {level}"
                )
            path = filenames.path(self.directory, filenames.table_name(rec.number))
            if not self._fs.exists(path):
                manifest = filenames.path(self.directory, state.name)
                where = (
                    f"it ends in damage at offset {state.torn_at}"
                    if state.torn_at is not None
                    else "it may be truncated"
                )
                raise CorruptionError(
                    f"{manifest}: lists table {rec.number}, but {path} is missing: the "
                    f"manifest lost the edits that removed it ({where}) or the table file "
                    "was deleted; run 'shaledb repair'",
                    manifest,
                    state.torn_at or 0,
                )
            size = self._fs.size(path)
            if size != rec.size:
                raise CorruptionError(
                    f"{path}: table is {size} bytes, the manifest recorded {rec.size}",
                    path,
                    min(size, rec.size),
                )
            levels[level].append(
                self.open_table(rec.number, rec.size, rec.entries, rec.smallest, rec.largest)
            )
        levels[0].sort(key=lambda f: -f.number)
        for files in levels[1:]:
            files.sort(key=lambda f: f.smallest)
        return levels

    def start(self, replayed: FileMeta | None, log_number: int) -> None:
        """End recovery: add the table of replayed WAL writes, if any, move the log
        number to the new (empty) WAL, and write a new manifest holding it all."""
        if replayed is not None:
            self.current = self.current.apply(VersionEdit(added=[(0, replayed)]))
        self.log_number = log_number
        self.flushed_seq = self.last_seq
        self.create_manifest()

    def open_table(
        self, number: int, size: int, entries: int, smallest: bytes, largest: bytes
    ) -> FileMeta:
        """Open table ``number`` (its footer, index and filter are checked now)."""
        path = filenames.path(self.directory, filenames.table_name(number))
        table = SSTable(self._fs, path, number, self._block_cache, self._table_cache)
        return FileMeta(number, size, entries, smallest, largest, table=table)

    # -- counters ----------------------------------------------------------------------

    def new_file_number(self) -> int:
        """A file number never used in this directory."""
        with self._numbers_lock:
            number = self._next_file
            self._next_file += 1
            return number

    # -- the manifest ------------------------------------------------------------------

    def _snapshot(self, version: Version, last_seq: int) -> VersionEdit:
        return VersionEdit(
            added=list(version.files()),
            log_number=self.log_number,
            # One beyond: the new manifest takes the next number (a gap at worst).
            next_file=self._next_file + 1,
            last_seq=last_seq,
            flushed_seq=self.flushed_seq,
            catalog=self.catalog,
        )

    def create_manifest(self) -> None:
        """Write a new manifest holding the current state and point CURRENT at it."""
        with self._manifest_lock:
            self._check_writable()
            self._switch_manifest(self.current, self.last_seq)

    def _switch_manifest(self, version: Version, last_seq: int) -> None:
        """Start a new manifest holding ``version``; ``last_seq`` must be durable."""
        old = self._manifest
        try:
            self._manifest = ManifestWriter(
                self._fs, self.directory, self.new_file_number(), self._snapshot(version, last_seq)
            )
        except ShaleDBError as exc:
            self._fail(exc)
            raise
        if old is not None:
            old.close()
            self._fs.remove(old.path)

    @property
    def manifest_name(self) -> str:
        return "" if self._manifest is None else self._manifest.name

    def _fail(self, exc: ShaleDBError) -> None:
        self.error = exc
        self.on_failure(exc)

    def _check_writable(self) -> None:
        if self.error is not None:
            raise StorageError(
                f"{self.directory}: a manifest write failed ({self.error}); the database "
                "is read-only until it is reopened"
            )

    def log_and_apply(
        self, edit: VersionEdit, install: Callable[[Version], None] | None = None
    ) -> Version:
        """Log ``edit`` durably, then make the version it produces current.

        ``install`` is called with the new version while the manifest is still held,
        so concurrent edits are installed in the order they were logged.

        Raises:
            StorageError: this write or an earlier one failed (the set is read-only
                from the first failure on).
        """
        with self._manifest_lock:
            self._check_writable()
            assert self._manifest is not None, "create_manifest runs first"
            edit.last_seq = self.sync_log()
            edit.next_file = self._next_file
            version = self.current.apply(edit)
            try:
                self._manifest.append(edit)
            except ShaleDBError as exc:
                self._fail(exc)
                raise
            if edit.log_number is not None:
                self.log_number = edit.log_number
            if edit.flushed_seq is not None:
                self.flushed_seq = edit.flushed_seq
            if edit.catalog is not None:
                self.catalog = dict(edit.catalog)
            self.current = version
            if install is not None:
                install(version)
            if self._manifest.size > MAX_MANIFEST_BYTES:
                self._switch_manifest(version, edit.last_seq)
            return version

    def close(self) -> None:
        with self._manifest_lock:
            if self._manifest is not None:
                self._manifest.close()
