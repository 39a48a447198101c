"""The hash-log engine's state and its write path: the active segment, the index,
rotation, and the installs of merges (docs/architecture.md, "Hash-log engine").

Under the write lock a write is numbered, appended to the active segment (in the OS
before the lock is released) and applied to the index; a full segment is sealed (its
index file written) and a new one started. With ``fsync="always"`` the writer then
waits, outside the lock, for a group fsync (:mod:`shaledb.engine.group_commit`).
Point reads take no lock; scans take it only to copy the locations of their range.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from shaledb.engine.base import RawEntry, RawOp
from shaledb.engine.checksum import CRC, crc32c
from shaledb.engine.entry import TOMBSTONE, is_live
from shaledb.engine.fs import DirectoryLock, FileSystem
from shaledb.engine.group_commit import DeferredSync, GroupCommit
from shaledb.engine.hashlog import layout as files
from shaledb.engine.hashlog.index_file import ITEM, IndexItems
from shaledb.engine.hashlog.keydir import KeyDir, Location
from shaledb.engine.hashlog.layout import Layout
from shaledb.engine.hashlog.records import (
    ENTRY_BODY,
    ENTRY_SIZE,
    HEADER_SIZE,
    KIND_APPEND,
    TYPE_ENTRY,
    encode_batch,
)
from shaledb.engine.hashlog.records import read_entry as decode_entry
from shaledb.engine.hashlog.segments import Opened, Segment, new_segment, write_index
from shaledb.errors import ClosedError, ShaleDBError, StorageError
from shaledb.options import Options

_pack_entry_body = ENTRY_BODY.pack
_pack_crc = CRC.pack
_pack_item = ITEM.pack

#: Dead bytes below which no background merge starts, whatever the ratio (at most).
MIN_MERGE_BYTES = 1 << 20
#: Index entries moved per hold of the write lock when a merge installs its output.
INSTALL_CHUNK = 10_000


class HashLogStore:
    """Everything an open hash-log store holds. Thread-safe as documented per method."""

    def __init__(
        self,
        fs: FileSystem,
        layout: Layout,
        options: Options,
        dir_lock: DirectoryLock,
        opened: Opened,
    ) -> None:
        self.fs = fs
        self.layout = layout
        self.options = options
        self.dir_lock = dir_lock
        self.keydir: KeyDir = opened.keydir
        self.segments: list[Segment] = opened.segments
        self.active: Segment = opened.active
        self.active_items: IndexItems = opened.active_items
        self.last_seq = opened.last_seq
        self.next_number = opened.next_number
        self.notes = opened.notes
        # Read before anything is started that would need stopping if it raises.
        self.catalog = files.read_catalog(fs, layout)
        out = fs.open_append(opened.active.path, truncate_to=opened.active_end)
        self.active.size = out.size
        self.commit = GroupCommit(out, options.fsync)
        self.commit.start_sync_thread(self.commit.sync_every_second, "shaledb-hashlog-sync")
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.merge_lock = threading.Lock()
        self.drop_filter: Callable[[bytes], bool] = lambda key: False
        self.closed = False
        self.closing = False
        #: Set when a write or background work failed: writes stop.
        self.error: ShaleDBError | None = None
        #: Set when an ``always``-mode fsync failed: reads stop too (see :meth:`_sync_to`).
        self.read_error: ShaleDBError | None = None
        self._sync_always = options.fsync == "always"
        self._deferred = DeferredSync(self._sync_to)
        self._two_files = layout.pair is not None
        self._segment_bytes = options.hashlog_segment_bytes
        self.merges = 0
        self.merge_bytes_written = 0
        self.bytes_written = 0

    # -- checks ------------------------------------------------------------------------

    def check_usable(self) -> None:
        """Raise unless writes are accepted."""
        if self.closed:
            raise ClosedError("the database is closed")
        if self.error is not None:
            raise StorageError(
                f"the database stopped accepting writes after an error: {self.error}; "
                "reopen it to recover"
            )

    def check_readable(self) -> None:
        if self.closed:
            raise ClosedError("the database is closed")
        if self.read_error is not None:
            raise self.read_error

    # -- writes ------------------------------------------------------------------------

    def write(self, ops: Sequence[RawOp], condition: Callable[[], bool] | None) -> bool:
        """Apply ``ops`` atomically (see :meth:`shaledb.engine.base.Engine.write`)."""
        if condition is None and len(ops) == 1:
            flags, key, expire_ms, value = ops[0]
            self.put(flags, key, expire_ms, value)
            return True
        with self.lock:
            if self.closed or self.error is not None:
                self.check_usable()
            if condition is not None and not condition():
                return False
            if not ops:
                return True
            seq = self.last_seq + 1
            data, offsets = encode_batch(seq, ops)
            if (
                not self._two_files
                and self.active.size + len(data) > self._segment_bytes
                and self.active.size > HEADER_SIZE
            ):
                self._rotate()
            active = self.active
            base = active.size
            try:
                position = self.commit.append(data)
            except StorageError as exc:
                # A partial record may be in the segment: nothing may follow it.
                self.error = exc
                raise
            active.size += len(data)
            self.bytes_written += len(data)
            self.last_seq += len(ops)
            keydir, add_item = self.keydir, self.active_items.add
            for i, (flags, key, expire_ms, value) in enumerate(ops):
                offset = base + offsets[i]
                length = ENTRY_SIZE + len(key) + len(value)
                add_item(seq + i, flags, key, expire_ms, offset, length)
                if flags & TOMBSTONE:
                    keydir.remove(key)
                else:
                    keydir.set(key, (active, offset, length, flags, expire_ms))
            active.note_seqs(seq, self.last_seq)
        if self._sync_always:
            self._deferred.sync_or_defer(position)
        return True

    def put(self, flags: int, key: bytes, expire_ms: int, value: bytes) -> None:
        """``write([(flags, key, expire_ms, value)], None)``, inlined: the hot path of
        single puts and deletes (a unit test checks that both give the same bytes)."""
        with self.lock:
            if self.closed or self.error is not None:
                self.check_usable()
            seq = self.last_seq + 1
            klen = len(key)
            body = _pack_entry_body(TYPE_ENTRY, flags, klen, len(value), expire_ms, seq) + key
            body += value
            data = _pack_crc(crc32c(body)) + body
            length = len(data)
            active = self.active
            if (
                active.size + length > self._segment_bytes
                and not self._two_files
                and active.size > HEADER_SIZE
            ):
                self._rotate()
                active = self.active
            offset = active.size
            try:
                position = self.commit.append(data)
            except StorageError as exc:
                self.error = exc  # a partial record may be in the segment
                raise
            active.size = offset + length
            self.bytes_written += length
            self.last_seq = seq
            items = self.active_items
            items.parts.append(_pack_item(seq, offset, length, flags, klen, expire_ms) + key)
            items.count += 1
            items.max_seq = active.max_seq = seq
            if not items.min_seq:
                items.min_seq = seq
            if not active.min_seq:
                active.min_seq = seq
            if flags & TOMBSTONE:
                self.keydir.remove(key)
            else:
                self.keydir.set(key, (active, offset, length, flags, expire_ms))
        if self._sync_always:
            self._deferred.sync_or_defer(position)

    def _sync_to(self, position: int) -> None:
        try:
            self.commit.sync_to(position)
        except StorageError as exc:
            if self._sync_always:
                self.read_error = self.error = StorageError(
                    f"the data log could not be made durable ({exc}); writes that raised "
                    "may be in the index but were never acknowledged, so the database "
                    "refuses reads and writes until it is reopened"
                )
            raise

    def deferred_sync(self) -> AbstractContextManager[None]:
        """Within the block, ``always``-mode writes of this thread skip their own fsync;
        leaving the block fsyncs once for all of them (:class:`~shaledb.engine.group_commit.
        DeferredSync`). Only for callers that acknowledge those writes after the block ends."""
        return self._deferred.block()

    def _rotate(self) -> None:
        """Seal the active segment (durable, its index file written) and start the next.
        Holds the lock."""
        try:
            self.commit.file.sync()
            write_index(self.fs, self.layout, self.active, self.active_items)
            segment, _ = new_segment(self.fs, self.layout, self.next_number, KIND_APPEND)
            self.fs.sync_dir(self.layout.directory)
            out = self.fs.open_append(segment.path)
        except StorageError as exc:
            self.error = exc
            raise
        self.next_number += 1
        self.commit.switch(out).close()
        self.active = segment
        self.active_items = IndexItems()
        self.segments.append(segment)

    def seal_for_merge(self) -> list[Segment]:
        """Seal the active segment if it holds records; the sealed segments (the merge's
        inputs), oldest first. Holds no lock; takes the write lock."""
        with self.lock:
            self.check_usable()
            if self.active.size > HEADER_SIZE:
                self._rotate()
            return [s for s in self.segments if s is not self.active]

    def sync(self) -> None:
        """Make every acknowledged write durable."""
        with self.lock:
            self.check_usable()
            position = self.commit.written
        self._sync_to(position)

    # -- reads -------------------------------------------------------------------------

    def scan(
        self, lo: bytes, hi: bytes | None, reverse: bool, limit: int | None, now: int
    ) -> Iterator[RawEntry]:
        """The live entries of ``[lo, hi)`` as of now; the values are read lazily."""
        with self.lock:
            self.check_readable()
            keys = self.keydir.sorted_keys()
            entries = self.keydir.entries
            picked: list[tuple[bytes, Location]] = []
            for key in keys.irange(lo, hi, inclusive=(True, False), reverse=reverse):
                loc = entries[key]
                if is_live(loc[3], loc[4], now):
                    picked.append((key, loc))
                    if limit is not None and len(picked) >= limit:
                        break
        return _read_values(picked)

    # -- merge installs ----------------------------------------------------------------

    def install(
        self,
        moves: list[tuple[bytes, Location, Location | None]],
        inputs: list[Segment],
        outputs: list[Segment],
    ) -> None:
        """Point the index at the merge's output (keys overwritten meanwhile keep their
        newer entry) and replace ``inputs`` by ``outputs`` in the segment list."""
        for start in range(0, len(moves), INSTALL_CHUNK):
            with self.lock:  # released between chunks: writers wait for one chunk at most
                replace_if = self.keydir.replace_if
                for key, old, new in moves[start : start + INSTALL_CHUNK]:
                    replace_if(key, old, new)
        with self.lock:
            gone = set(map(id, inputs))
            rest = [s for s in self.segments if id(s) not in gone]
            self.segments = [*outputs, *rest]

    # -- stats and lifecycle -----------------------------------------------------------

    def data_bytes(self) -> int:
        """Bytes of records in every segment (headers excluded)."""
        return sum(s.size - HEADER_SIZE for s in self.segments)

    def merge_due(self) -> bool:
        total = self.data_bytes()
        dead = total - self.keydir.live_bytes
        floor = min(self._segment_bytes, MIN_MERGE_BYTES)
        return dead >= floor and dead >= self.options.hashlog_merge_ratio * total

    def save_catalog(self, catalog: dict[str, Any]) -> None:
        with self.lock:
            self.check_usable()
            files.write_catalog(self.fs, self.layout, catalog)
            self.catalog = catalog

    def stop(self, error: ShaleDBError) -> None:
        """Refuse every later write (background work failed)."""
        with self.lock:
            self.error = error
            self.cond.notify_all()

    def close(self) -> None:
        """Write the active segment's index file, make the data durable, release the
        lock. The caller has stopped background work."""
        try:
            with self.lock:
                if self.closed:
                    return
                self.closed = True
                healthy = self.error is None and self.commit.error is None
                try:
                    self.commit.close()
                    if healthy:
                        # After the fsync: an index file never covers bytes not durable.
                        write_index(self.fs, self.layout, self.active, self.active_items)
                finally:
                    # A scan still iterating after close gets a StorageError, not an fd leak.
                    for segment in self.segments:
                        segment.file.close()
        finally:
            self.dir_lock.release()


def _read_values(picked: list[tuple[bytes, Location]]) -> Iterator[RawEntry]:
    for key, (segment, offset, length, _, _) in picked:
        flags, expire_ms, value = decode_entry(
            segment.file.read(offset, length), key, segment.path, offset
        )
        yield key, flags, expire_ms, value
