"""The write path: sequence numbers, the WAL and the memtable, rotation and stalls.

Under the write lock a batch is numbered, appended to the WAL (in the OS before the
lock is released) and applied to the memtable; a full memtable becomes immutable and
a new WAL starts. With ``fsync="always"`` the writer then waits, outside the lock, for
a group fsync. Writers slow down, then wait, while flushes or level 0 fall behind.

The write lock also guards every change of the published
:class:`~shaledb.engine.state.EngineState`: rotations here, and the installs of
flushes and compactions (:meth:`WritePath.install`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from shaledb.engine import filenames, read_path
from shaledb.engine.base import RawFound, RawOp
from shaledb.engine.batch import encode_batch, encode_put
from shaledb.engine.entry import HAS_TTL, MAYBE_DEAD, TOMBSTONE
from shaledb.engine.group_commit import DeferredSync
from shaledb.engine.memtable import MemTable
from shaledb.engine.state import EngineState
from shaledb.engine.version import Version
from shaledb.engine.version_set import VersionSet
from shaledb.engine.wal import WriteAheadLog
from shaledb.errors import ClosedError, ShaleDBError, StorageError
from shaledb.options import Options

#: Immutable memtables waiting for the flusher before writers wait too.
MAX_IMMUTABLES = 2


class WritePath:
    """Applies writes and publishes the engine state. Thread-safe."""

    def __init__(
        self,
        directory: str,
        options: Options,
        versions: VersionSet,
        wal: WriteAheadLog,
        mem: MemTable,
    ) -> None:
        self._directory = directory
        self._options = options
        self._versions = versions
        self.wal = wal
        self.lock = threading.Lock()
        #: Notified whenever the state changes or the engine stops.
        self.cond = threading.Condition(self.lock)
        self.state = EngineState(mem, (), versions.current)
        #: Whether a write must look closer before it goes: immutable memtables wait,
        #: level 0 is long, an error stopped writes, or the engine closed. One flag
        #: read per write instead of four tests; kept by _publish and the setters.
        self._held_up = False
        self.closed = False
        #: Set when shutdown begins: the background thread stops.
        self.closing = False
        #: Set when background work failed or a log write failed: writes stop.
        self.error: ShaleDBError | None = None
        #: Set when an ``always``-mode fsync failed: the memtable may hold writes that
        #: raised, so reads stop too until the database is reopened.
        self.read_error: ShaleDBError | None = None
        self._sync_always = options.fsync == "always"
        self._deferred = DeferredSync(self._sync_to)
        bg = options.background_compaction
        self._slowdown_at = options.l0_slowdown_trigger if bg else 1 << 30
        self._stop_at = options.l0_stop_trigger if bg else 1 << 30
        # Entries when the seed's memtable_size is set, else bytes.
        self._flush_entries = options.memtable_entries or 1 << 62
        self._flush_bytes = options.memtable_bytes if options.memtable_entries is None else 1 << 62
        self.write_stalls = 0
        self.flushes = 0
        self.write_slowdowns = 0

    def check_usable(self) -> None:
        """Raise unless writes are accepted."""
        if self.closed:
            raise ClosedError("the database is closed")
        error = self.error or self._versions.error
        if error is not None:
            raise StorageError(
                f"the database stopped accepting writes after an error: {error}; "
                "reopen it to recover"
            )

    # -- writes --------------------------------------------------------------------------

    def write(self, ops: Sequence[RawOp], condition: Callable[[], bool] | None = None) -> bool:
        """Apply ``ops`` atomically (see :meth:`shaledb.engine.base.Engine.write`)."""
        with self.lock:
            if self._held_up:
                self._make_room()
            if condition is not None and not condition():
                return False
            if not ops:
                return True
            position = self._apply(ops)
        if self._sync_always:
            self._deferred.sync_or_defer(position)
        return True

    def put(self, flags: int, key: bytes, value: bytes) -> None:
        """``write(((flags, key, 0, value),))``, the commonest write (a put without
        expiry), in fewer calls: the same steps as :meth:`write` and :meth:`_apply`."""
        if flags & HAS_TTL:  # not a put without expiry: the general path encodes it
            self.write(((flags, key, 0, value),))
            return
        with self.lock:
            if self._held_up:
                self._make_room()
            position = self._apply_put(flags, key, value)
        if self._sync_always:
            self._deferred.sync_or_defer(position)

    def delete(self, op: RawOp, now_ms: Callable[[], int]) -> bool:
        """Apply the tombstone ``op`` if its key holds a live entry; whether it did.

        The same as ``write((op,), condition=<the key is live>)`` at the cost of one
        read taken before the write lock. That read stays true under the lock unless
        the key was written since, and every write lands in the active memtable: so
        while the memtable is the one the read saw, its entry for the key (if any)
        is all that can have changed the answer; after a rotation the read is redone
        under the lock. Flushes and compactions move entries without changing what a
        read finds.
        """
        key = op[1]
        seen = self.state
        found = read_path.get(seen, key, now_ms)
        with self.lock:
            if self._held_up:
                self._make_room()
            state = self.state
            if state.mem is not seen.mem:
                found = read_path.get(state, key, now_ms)
            elif key in state.mem.entries:
                found = _live(state.mem.entries[key], now_ms)
            elif found is not None:
                found = _live(found, now_ms)  # expired meanwhile
            if found is None:
                return False
            position = self._apply_put(op[0], key, op[3])
        if self._sync_always:
            self._deferred.sync_or_defer(position)
        return True

    def _apply(self, ops: Sequence[RawOp]) -> int:
        """Number, log and apply ``ops``; the WAL position to sync to. Holds the lock."""
        versions = self._versions
        position = self._log(encode_batch(versions.last_seq + 1, ops))
        versions.last_seq += len(ops)
        # Read now, not before _make_room: it may release the lock, and a rotation
        # meanwhile would leave the old memtable frozen.
        mem = self.state.mem
        mem.put_many(ops)
        self._applied(mem)
        return position

    def _apply_put(self, flags: int, key: bytes, value: bytes) -> int:
        """:meth:`_apply` of one op without expiry (a put or a tombstone), in fewer steps."""
        versions = self._versions
        seq = versions.last_seq + 1
        position = self._log(encode_put(seq, flags, key, value))
        versions.last_seq = seq
        mem = self.state.mem
        mem.put(key, flags, 0, value)
        self._applied(mem)
        return position

    def _log(self, payload: bytes) -> int:
        """Append one batch to the WAL; the position to sync to. Holds the lock."""
        try:
            return self.wal.append(payload)
        except StorageError as exc:
            # A partial record may be in the log: nothing may follow it.
            self.error = exc
            self._held_up = True
            raise

    def _applied(self, mem: MemTable) -> None:
        """After a batch went into ``mem``: note its last write; rotate it when full."""
        mem.last_seq = self._versions.last_seq
        if mem.approximate_bytes >= self._flush_bytes or len(mem.entries) >= self._flush_entries:
            self._rotate()

    def _sync_to(self, position: int) -> None:
        try:
            self.wal.sync_to(position)
        except StorageError as exc:
            if self._sync_always:
                self._held_up = True
                self.read_error = self.error = StorageError(
                    f"the write-ahead log could not be made durable ({exc}); writes that "
                    "raised may be in memory but were never acknowledged, so the database "
                    "refuses reads and writes until it is reopened"
                )
            raise

    def deferred_sync(self) -> AbstractContextManager[None]:
        """Within the block, ``always``-mode writes of this thread skip their own fsync;
        leaving the block fsyncs once for all of them (:class:`~shaledb.engine.group_commit.
        DeferredSync`). Only for callers that acknowledge those writes after the block ends."""
        return self._deferred.block()

    def _make_room(self) -> None:
        """Slow down, then wait, while flushes or level 0 fall behind. Holds the lock."""
        self.check_usable()
        while True:
            state = self.state
            if len(state.imms) < MAX_IMMUTABLES and len(state.version.levels[0]) < self._stop_at:
                break
            self.write_stalls += 1
            self.cond.wait(0.1)
            self.check_usable()
        if len(self.state.version.levels[0]) >= self._slowdown_at:
            # Spread the delay over many writes instead of stopping some of them outright.
            self.write_slowdowns += 1
            self.lock.release()
            try:
                time.sleep(0.001)
            finally:
                self.lock.acquire()
            self.check_usable()

    def _rotate(self) -> None:
        """Freeze the memtable and start a new one on a new WAL. Holds the lock."""
        number = self._versions.new_file_number()
        self.wal.rotate(filenames.path(self._directory, filenames.wal_name(number)))
        state = self.state
        mem = MemTable(number)
        mem.last_seq = self._versions.last_seq
        self._publish(EngineState(mem, (state.mem, *state.imms), state.version))

    def sync_log(self) -> int:
        """Make every write so far durable; the last sequence number they hold."""
        with self.lock:
            seq = self._versions.last_seq
            position = self.wal.logged_bytes
        self.wal.sync_to(position)
        return seq

    # -- flush and install -------------------------------------------------------------

    def freeze(self) -> tuple[MemTable, ...]:
        """Make the memtable immutable (if it holds anything); the memtables to flush."""
        with self.lock:
            self.check_usable()
            if len(self.state.mem):
                self._rotate()
            return self.state.imms

    def wait_flushed(self, imms: tuple[MemTable, ...]) -> None:
        """Wait until every memtable of ``imms`` is flushed."""
        with self.lock:
            while any(m in self.state.imms for m in imms):
                self.check_usable()
                self.cond.wait(0.1)

    def log_number_after(self, imm: MemTable) -> int:
        """The oldest WAL still needed once ``imm`` is flushed."""
        with self.lock:
            older = [m for m in self.state.imms if m is not imm]
            return older[-1].wal_number if older else self.state.mem.wal_number

    def install(self, version: Version, flushed: MemTable | None = None) -> None:
        """Publish ``version``, dropping ``flushed`` from the immutable memtables."""
        with self.lock:
            state = self.state
            imms = tuple(m for m in state.imms if m is not flushed)
            if flushed is not None:
                self.flushes += 1
            self._publish(EngineState(state.mem, imms, version))

    def _publish(self, state: EngineState) -> None:
        """Install ``state`` and wake whoever waits on it. Holds the lock."""
        self.state = state
        self._held_up = (
            bool(state.imms)
            or len(state.version.levels[0]) >= self._slowdown_at
            or self.error is not None
            or self.closed
        )
        self.cond.notify_all()

    def close_writes(self) -> None:
        """Refuse every later write and read: the engine is closing. Holds the lock."""
        self.closed = self._held_up = True

    def stop(self, error: ShaleDBError) -> None:
        """Refuse every later write (background work failed)."""
        with self.lock:
            self.error = error
            self._held_up = True
            self.cond.notify_all()


def _live(raw: RawFound, now_ms: Callable[[], int]) -> RawFound | None:
    """``raw`` if it is live now (read_path.get's test, for one memtable entry)."""
    flags = raw[0]
    if flags & MAYBE_DEAD and (flags & TOMBSTONE or raw[1] <= now_ms()):
        return None
    return raw
