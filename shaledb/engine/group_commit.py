"""Durability of an append-only file: fsync modes, group commit and sticky failures.

Shared by the write-ahead log (:mod:`shaledb.engine.wal`) and the hash-log engine's
active segment (:mod:`shaledb.engine.hashlog.segments`). :meth:`GroupCommit.append`
hands bytes to the OS before it returns. ``always`` mode then calls :meth:`sync_to`,
where concurrent writers share one fsync (the first waiter syncs everything written so
far, the others wait for it). ``everysec`` mode runs a thread that syncs once a second;
``never`` leaves it to the OS.

A failed append or fsync is sticky: everything after it is refused, because a record
written after a partial one would turn a torn tail into mid-file damage, and after a
failed fsync the kernel may have dropped the dirty pages it could not write. In
``always`` mode a failed fsync also cuts the file back to what the last good fsync
covered: no write past it was acknowledged, so none of them may be replayed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from shaledb.engine.fs import AppendFile
from shaledb.errors import StorageError


class GroupCommit:
    """The file being appended to and how much of it is durable. Thread-safe as documented.

    ``append`` and ``switch`` must be serialized by the caller (its write lock);
    ``sync_to``, ``sync`` and ``close`` may be called from any thread.
    """

    def __init__(self, file: AppendFile, fsync: str) -> None:
        self.file = file
        self._fsync = fsync
        self.written = 0  # bytes appended since open, across switches
        self._synced = 0  # bytes known durable
        self._synced_file_size = file.size  # the same point, in the current file
        self._cond = threading.Condition()
        self._syncing = False
        self.error: StorageError | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start_sync_thread(self, target: Callable[[], None], name: str) -> None:
        """In ``everysec`` mode, run ``target`` (which calls :meth:`sync_every_second`)
        on a thread of its own; nothing in the other modes. The owner passes its own
        method, so tests can replace it there."""
        if self._fsync == "everysec":
            self._thread = threading.Thread(target=target, name=name, daemon=True)
            self._thread.start()

    def append(self, data: bytes) -> int:
        """Append ``data``; returns the position for :meth:`sync_to`.

        Raises:
            StorageError: the write failed (then every later append fails too).
        """
        if self.error is not None:
            raise self.error
        try:
            self.file.write(data)
        except StorageError as exc:
            self.error = exc
            raise
        self.written += len(data)
        return self.written

    def sync_to(self, position: int) -> None:
        """Return once everything up to ``position`` is durable (group commit).

        Raises:
            StorageError: the fsync failed, now or for an earlier caller.
        """
        with self._cond:
            while self._synced < position:
                if self.error is not None:
                    raise self.error
                if self._syncing:
                    self._cond.wait()
                    continue
                self._syncing = True
                target = self.written
                file = self.file
                file_size = file.size
                self._cond.release()
                try:
                    file.sync()
                except StorageError as exc:
                    self.error = exc
                    if self._fsync == "always":
                        self._drop_unsynced(file)
                finally:
                    self._cond.acquire()
                    self._syncing = False
                    self._cond.notify_all()
                if self.error is None:
                    self._synced = max(self._synced, target)
                    self._synced_file_size = file_size

    def _drop_unsynced(self, file: AppendFile) -> None:
        # The fsync error is the one reported; if the cut fails too, recovery may replay
        # writes that raised, which is all a failing disk leaves us.
        with contextlib.suppress(StorageError):
            file.truncate(self._synced_file_size)

    def sync(self) -> None:
        """Make everything appended so far durable."""
        self.sync_to(self.written)

    def switch(self, new_file: AppendFile) -> AppendFile:
        """Continue in ``new_file``; returns the old file (the caller closes it).

        The caller has made the current file durable (it fsynced it after its last
        append, under the lock that serializes appends).
        """
        with self._cond:
            while self._syncing:
                self._cond.wait()
            old, self.file = self.file, new_file
            self._synced = self.written
            self._synced_file_size = new_file.size
            self._cond.notify_all()
        return old

    def fail(self, exc: StorageError) -> None:
        """Refuse everything from now on, for ``exc``."""
        self.error = exc

    def sync_every_second(self) -> None:
        """Sync once a second until :meth:`close` (the ``everysec`` thread's loop)."""
        while not self._stop.wait(1.0):
            if self._synced < self.written:
                try:
                    self.sync()
                except StorageError:
                    return  # remembered in self.error; the next sync_to raises it

    def close(self) -> None:
        """Stop the sync thread, make the file durable and close it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._cond:
            while self._syncing:
                self._cond.wait()
        if self.file.fd >= 0:
            try:
                # Even in "never" mode a clean close leaves the file durable.
                if self.error is None:
                    self.sync()
            finally:
                self.file.close()


class DeferredSync:
    """``Engine.deferred_sync`` for one engine: within the block, this thread's
    ``always``-mode writes skip their own fsync; leaving it fsyncs once for all of them
    (group commit across one caller's writes). ``sync_to`` is the engine's own (it
    decides what a failed fsync stops)."""

    def __init__(self, sync_to: Callable[[int], None]) -> None:
        self._sync_to = sync_to
        self._local = threading.local()

    def sync_or_defer(self, position: int) -> None:
        """Sync to ``position`` now, or at the end of this thread's block."""
        local = self._local
        if getattr(local, "depth", 0):
            local.position = max(local.position, position)
        else:
            self._sync_to(position)

    @contextlib.contextmanager
    def block(self) -> Iterator[None]:
        local = self._local
        local.depth = getattr(local, "depth", 0) + 1
        if local.depth == 1:
            local.position = 0
        try:
            yield
        finally:
            local.depth -= 1
            if local.depth == 0 and local.position:
                position, local.position = local.position, 0
                self._sync_to(position)
