"""The hash-log engine: an append-only data log with every key in an in-memory index
(docs/architecture.md, "Hash-log engine"; the files in docs/format.md).

This module is the facade and the lifecycle: :class:`HashLogEngine` opens a store
(:mod:`~shaledb.engine.hashlog.segments`), serves point reads itself (one dict lookup
and one ``pread``), hands writes and scans to :class:`~shaledb.engine.hashlog.store.
HashLogStore`, and runs merges (:mod:`~shaledb.engine.hashlog.merge`) on one
background thread once enough of the data is dead.

Implements :class:`shaledb.engine.base.Engine`; its durability rule holds.
"""

from __future__ import annotations

import copy
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from shaledb.engine.base import RawEntry, RawFound, RawOp
from shaledb.engine.entry import MAYBE_DEAD, TOMBSTONE
from shaledb.engine.fs import FileSystem
from shaledb.engine.hashlog import merge
from shaledb.engine.hashlog.identity import check_pair
from shaledb.engine.hashlog.layout import Layout
from shaledb.engine.hashlog.records import read_entry
from shaledb.engine.hashlog.segments import open_segments, prepare_directory
from shaledb.engine.hashlog.store import HashLogStore
from shaledb.errors import ClosedError, LockedError, ShaleDBError, StorageError
from shaledb.options import Options

#: Seconds between the background thread's looks at whether a merge is due.
_MERGE_POLL = 0.25


class HashLogEngine:
    """A durable key-value engine over an append-only log and an in-memory hash index.

    Thread-safe. Every key lives in memory (its location, flags and expiry); a point
    read is one hash lookup and one read; scans walk a sorted list of the keys.
    """

    def __init__(
        self, directory: str, options: Options | None = None, fs: FileSystem | None = None
    ) -> None:
        fs = fs or FileSystem()
        fs.make_dirs(directory)
        self._open(Layout(directory), options, fs)

    @classmethod
    def two_files(
        cls,
        data_path: str,
        index_path: str,
        options: Options | None = None,
        fs: FileSystem | None = None,
    ) -> HashLogEngine:
        """The store in exactly ``data_path`` and ``index_path`` (plus the sidecars
        ``DATA.lock`` and ``DATA.catalog``, and temp files during a compaction).

        Raises:
            InvalidArgumentError: the files are not such a pair (:func:`~shaledb.engine.
                hashlog.identity.check_pair`); nothing is changed.
        """
        fs = fs or FileSystem()
        check_pair(data_path, index_path, fs)
        engine = cls.__new__(cls)
        engine._open(Layout.of_two_files(data_path, index_path), options, fs)
        return engine

    def _open(self, layout: Layout, options: Options | None, fs: FileSystem) -> None:
        self.options = options or Options()
        self.directory = layout.directory
        self._layout = layout
        self._fs = fs
        dir_lock = fs.lock(layout.lock_path)
        try:
            if layout.pair is None:
                prepare_directory(fs, layout)
            opened = open_segments(fs, layout)
            store = HashLogStore(fs, layout, self.options, dir_lock, opened)
        except BaseException:
            dir_lock.release()
            raise
        self._store = store
        self._entries = store.keydir.entries  # the same dict, for the point-read path
        self._clock = self.options.clock
        thread = threading.Thread(
            target=_background,
            args=(weakref.ref(self), store),
            name="shaledb-hashlog-merge",
            daemon=True,
        )
        self._thread = thread
        # A handle dropped without close() still releases its files, with a
        # ResourceWarning, as an unclosed file does.
        self._finalizer = weakref.finalize(self, _shut_down, store, thread, True)
        thread.start()

    @property
    def closed(self) -> bool:
        return self._store.closed

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- writes and reads ------------------------------------------------------------

    def write(self, ops: Sequence[RawOp], condition: Callable[[], bool] | None = None) -> bool:
        return self._store.write(ops, condition)

    def put(self, flags: int, key: bytes, value: bytes) -> None:
        self._store.put(flags, key, 0, value)

    def delete(self, flags: int, key: bytes) -> bool:
        """Whether the key held a live entry is in the index: no data is read, and a key
        that is not live returns False without taking the write lock."""
        entries, now_ms = self._entries, self.now_ms

        def live() -> bool:
            loc = entries.get(key)
            if loc is None:
                return False
            return not (loc[3] & MAYBE_DEAD and (loc[3] & TOMBSTONE or loc[4] <= now_ms()))

        if not live():
            self._store.check_readable()
            return False
        return self._store.write(((flags, key, 0, b""),), live)

    def deferred_sync(self) -> AbstractContextManager[None]:
        return self._store.deferred_sync()

    def get(self, key: bytes) -> RawFound | None:
        store = self._store
        if store.closed or store.read_error is not None:
            store.check_readable()
        loc = self._entries.get(key)
        if loc is None:
            return None
        segment, offset, length, flags, expire_ms = loc
        if flags & MAYBE_DEAD and (flags & TOMBSTONE or expire_ms <= self.now_ms()):
            return None
        return read_entry(segment.file.read(offset, length), key, segment.path, offset)

    def scan(
        self, lo: bytes, hi: bytes | None, reverse: bool = False, limit: int | None = None
    ) -> Iterator[RawEntry]:
        return self._store.scan(lo, hi, reverse, limit, self.now_ms())

    # -- flush and merge -------------------------------------------------------------------

    def flush(self) -> None:
        """Make every acknowledged write durable (there is no memtable to move)."""
        self._store.sync()

    def compact(self, lo: bytes | None = None, hi: bytes | None = None) -> None:
        """Merge now. The hash log has no key order on disk, so a range merges everything."""
        store = self._store
        store.check_usable()
        with store.merge_lock:
            store.check_usable()  # again: a close waits for this lock, then shuts the store
            self._merge()

    def _merge(self) -> None:
        if self._layout.pair is None:
            merge.merge_sealed(self._store, self.now_ms())
        else:
            merge.compact_two_files(self._store, self.now_ms())

    def _merge_if_due(self) -> None:
        store = self._store
        with store.merge_lock:
            if store.merge_due():
                self._merge()
        if not store.dir_lock.still_held():
            store.stop(
                LockedError(
                    f"{store.dir_lock.path} was deleted or replaced while the database was "
                    "open, so another process may have opened it too; writes stopped to "
                    "protect the data (close this handle and reopen)"
                )
            )

    # -- catalog, stats, lifecycle -------------------------------------------------------

    def set_drop_filter(self, predicate: Callable[[bytes], bool]) -> None:
        self._store.drop_filter = predicate

    def load_catalog(self) -> dict[str, Any] | None:
        catalog = self._store.catalog
        return None if catalog is None else copy.deepcopy(catalog)

    def save_catalog(self, catalog: dict[str, Any]) -> None:
        self._store.save_catalog(copy.deepcopy(catalog))

    def stats(self) -> dict[str, Any]:
        store = self._store
        if store.closed:
            raise ClosedError("the database is closed")
        with store.lock:
            data = store.data_bytes()
            live = store.keydir.live_bytes
            stats: dict[str, Any] = {
                "engine": "hashlog",
                "directory": self.directory,
                "form": "directory" if self._layout.pair is None else "two files",
                "fsync": self.options.fsync,
                "sequence": store.last_seq,
                "keys": len(store.keydir),
                "segments": len(store.segments),
                "data_bytes": data,
                "live_bytes": live,
                "dead_bytes": data - live,
                "bytes_written": store.bytes_written,
                "merges": store.merges,
                "merge_bytes_written": store.merge_bytes_written,
            }
        if self._layout.pair is not None:
            stats["data_path"], stats["index_path"] = self._layout.pair
        return stats

    def close(self) -> None:
        """Stop the merge thread, write the index file, make the data durable, unlock."""
        if self._finalizer.detach() is not None:
            _shut_down(self._store, self._thread, warn=False)


def _shut_down(store: HashLogStore, thread: threading.Thread, warn: bool) -> None:
    if warn:
        warnings.warn(
            f"shaledb database {store.layout.directory} was not closed; closing it now",
            ResourceWarning,
            stacklevel=2,
        )
    with store.cond:
        store.closing = True
        store.cond.notify_all()
    if threading.current_thread() is not thread:
        thread.join()
    # A manual merge in another thread ends first, so none writes once the lock is gone.
    with store.merge_lock:
        store.close()


def _background(engine_ref: weakref.ref[HashLogEngine], store: HashLogStore) -> None:
    """Merge while the engine lives, when enough data is dead. Holds the engine only
    while working."""
    while True:
        with store.cond:
            if store.closing:
                return
            store.cond.wait(_MERGE_POLL)
            if store.closing:
                return
        engine = engine_ref()
        if engine is None:
            return
        try:
            if store.error is None:
                engine._merge_if_due()
        except ShaleDBError as exc:
            store.stop(exc)
            return
        except Exception as exc:  # a bug: stop writes loudly instead of going on
            store.stop(StorageError(f"background merge failed: {exc!r}"))
            raise
        finally:
            engine = None
