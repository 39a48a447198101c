"""The write-ahead log writer: every write is appended here before it is acknowledged.

Records are framed by :mod:`shaledb.engine.record_log` and hold one write batch each
(:mod:`shaledb.engine.batch`); the format is in docs/format.md ("Write-ahead log").

Durability (the rule of :mod:`shaledb.engine.base`): :meth:`WriteAheadLog.append`
hands the record to the OS before it returns; the fsync modes, group commit and the
stickiness of a failed append or fsync are :mod:`shaledb.engine.group_commit`'s,
shared with the hash-log engine.
"""

from __future__ import annotations

import os

from shaledb.engine.fs import FileSystem
from shaledb.engine.group_commit import GroupCommit
from shaledb.engine.record_log import WAL_BATCH, LogWriter
from shaledb.errors import StorageError


class WriteAheadLog:
    """The active log file, its rotation and its durability. Thread-safe as documented.

    ``append`` and ``rotate`` must be serialized by the caller (the engine's write
    lock); ``sync_to`` and ``sync`` may be called from any thread.
    """

    def __init__(self, fs: FileSystem, path: str, fsync: str) -> None:
        self._fs = fs
        file = fs.open_append(path)
        self._framer = LogWriter(WAL_BATCH, file.size)
        self._commit = GroupCommit(file, fsync)
        self._commit.start_sync_thread(self._sync_every_second, "shaledb-wal-sync")

    @property
    def path(self) -> str:
        return self._commit.file.path

    @property
    def size(self) -> int:
        return self._commit.file.size

    @property
    def logged_bytes(self) -> int:
        """Bytes appended since the log was opened, across rotations."""
        return self._commit.written

    @property
    def error(self) -> StorageError | None:
        """The failure that stopped the log, if one did."""
        return self._commit.error

    def append(self, payload: bytes) -> int:
        """Append one record holding ``payload``; returns the position for :meth:`sync_to`.

        Raises:
            StorageError: the write failed (then every later append fails too).
        """
        if self._commit.error is not None:
            raise self._commit.error
        return self._commit.append(self._framer.frame(payload))

    def sync_to(self, position: int) -> None:
        """Return once everything up to ``position`` is durable (group commit).

        Raises:
            StorageError: the fsync failed, now or for an earlier caller.
        """
        self._commit.sync_to(position)

    def sync(self) -> None:
        """Make everything appended so far durable."""
        self._commit.sync()

    def rotate(self, path: str) -> None:
        """Make the current file durable, close it and continue in a new file at ``path``.

        The new file's directory entry is fsynced before this returns.
        """
        commit = self._commit
        if commit.error is not None:
            raise commit.error
        # The old log is durable before the new one exists: recovery lets only the
        # last log holding records end in a torn write.
        try:
            commit.file.sync()
            new_file = self._fs.open_append(path)
        except StorageError as exc:
            commit.fail(exc)
            raise
        try:
            self._fs.sync_dir(os.path.dirname(path) or ".")
        except StorageError as exc:
            commit.fail(exc)
            new_file.close()
            raise
        commit.switch(new_file).close()
        self._framer = LogWriter(WAL_BATCH, new_file.size)

    def _sync_every_second(self) -> None:
        self._commit.sync_every_second()

    def close(self) -> None:
        """Stop the sync thread, make the log durable and close it."""
        self._commit.close()
