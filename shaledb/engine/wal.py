"""The write-ahead log writer: every write is appended here before it is acknowledged.

Records are framed by :mod:`shaledb.engine.record_log` and hold one write batch each
(:mod:`shaledb.engine.batch`); the format is in docs/format.md ("Write-ahead log").

Durability (the rule of :mod:`shaledb.engine.base`): :meth:`WriteAheadLog.append`
hands the record to the OS before it returns. ``always`` mode then calls
:meth:`sync_to`, where concurrent writers share one fsync (group commit: the first
waiter syncs everything written so far, the others wait for it). ``everysec`` mode
runs a thread that syncs once a second; ``never`` leaves it to the OS.

A failed append or fsync is sticky: the log refuses everything after it, because a
record written after a partial one would turn a torn tail into mid-log damage, and
after a failed fsync the kernel may have dropped the dirty pages it could not write.
In ``always`` mode a failed fsync also cuts the file back to what the last good fsync
covered: no write past it was acknowledged, so none of them may be replayed.
"""

from __future__ import annotations

import contextlib
import os
import threading

from shaledb.engine.fs import AppendFile, FileSystem
from shaledb.engine.record_log import WAL_BATCH, LogWriter
from shaledb.errors import StorageError


class WriteAheadLog:
    """The active log file, its rotation and its durability. Thread-safe as documented.

    ``append`` and ``rotate`` must be serialized by the caller (the engine's write
    lock); ``sync_to`` and ``sync`` may be called from any thread.
    """

    def __init__(self, fs: FileSystem, path: str, fsync: str) -> None:
        self._fs = fs
        self._file: AppendFile = fs.open_append(path)
        self._framer = LogWriter(WAL_BATCH, self._file.size)
        self._fsync = fsync
        self._written = 0  # bytes appended since open, across rotations
        self._synced = 0  # bytes known durable
        self._synced_file_size = self._file.size  # the same point, in the current file
        self._cond = threading.Condition()
        self._syncing = False
        self._error: StorageError | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if fsync == "everysec":
            self._thread = threading.Thread(
                target=self._sync_every_second, name="shaledb-wal-sync", daemon=True
            )
            self._thread.start()

    @property
    def path(self) -> str:
        return self._file.path

    @property
    def size(self) -> int:
        return self._file.size

    @property
    def logged_bytes(self) -> int:
        """Bytes appended since the log was opened, across rotations."""
        return self._written

    @property
    def error(self) -> StorageError | None:
        """The failure that stopped the log, if one did."""
        return self._error

    def append(self, payload: bytes) -> int:
        """Append one record holding ``payload``; returns the position for :meth:`sync_to`.

        Raises:
            StorageError: the write failed (then every later append fails too).
        """
        if self._error is not None:
            raise self._error
        record = self._framer.frame(payload)
        try:
            self._file.write(record)
        except StorageError as exc:
            self._error = exc
            raise
        self._written += len(record)
        return self._written

    def sync_to(self, position: int) -> None:
        """Return once everything up to ``position`` is durable (group commit).

        Raises:
            StorageError: the fsync failed, now or for an earlier caller.
        """
        with self._cond:
            while self._synced < position:
                if self._error is not None:
                    raise self._error
                if self._syncing:
                    self._cond.wait()
                    continue
                self._syncing = True
                target = self._written
                file = self._file
                file_size = file.size
                self._cond.release()
                try:
                    file.sync()
                except StorageError as exc:
                    self._error = exc
                    if self._fsync == "always":
                        self._drop_unsynced(file)
                finally:
                    self._cond.acquire()
                    self._syncing = False
                    self._cond.notify_all()
                if self._error is None:
                    self._synced = max(self._synced, target)
                    self._synced_file_size = file_size

    def _drop_unsynced(self, file: AppendFile) -> None:
        # The fsync error is the one reported; if the cut fails too, recovery may replay
        # writes that raised, which is all a failing disk leaves us.
        with contextlib.suppress(StorageError):
            file.truncate(self._synced_file_size)

    def sync(self) -> None:
        """Make everything appended so far durable."""
        self.sync_to(self._written)

    def rotate(self, path: str) -> None:
        """Make the current file durable, close it and continue in a new file at ``path``.

        The new file's directory entry is fsynced before this returns.
        """
        if self._error is not None:
            raise self._error
        with self._cond:
            while self._syncing:
                self._cond.wait()
            # The old log is durable before the new one exists: recovery lets only the
            # last log holding records end in a torn write.
            try:
                self._file.sync()
                new_file = self._fs.open_append(path)
            except StorageError as exc:
                self._error = exc
                raise
            try:
                self._fs.sync_dir(os.path.dirname(path) or ".")
            except StorageError as exc:
                self._error = exc
                new_file.close()
                raise
            self._file.close()
            self._file = new_file
            self._framer = LogWriter(WAL_BATCH, new_file.size)
            self._synced = self._written
            self._synced_file_size = new_file.size
            self._cond.notify_all()

    def _sync_every_second(self) -> None:
        while not self._stop.wait(1.0):
            if self._synced < self._written:
                try:
                    self.sync()
                except StorageError:
                    return  # remembered in self._error; the next sync_to raises it

    def close(self) -> None:
        """Stop the sync thread, make the log durable and close it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._cond:
            while self._syncing:
                self._cond.wait()
        if self._file.fd >= 0:
            try:
                # Even in "never" mode a clean close leaves the log durable.
                if self._error is None:
                    self.sync()
            finally:
                self._file.close()
