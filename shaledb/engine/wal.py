"""The write-ahead log: every write is appended here before it is acknowledged.

Format in docs/format.md ("Write-ahead log"). One record holds one atomic batch:
``seq u64 | count u32`` then per operation ``flags u8 | key_len u32 | value_len u32 |
[expire_ms u64 when HAS_TTL] | key | value``.

Durability (the rule of :mod:`shaledb.engine.base`): :meth:`WriteAheadLog.append`
hands the record to the OS before it returns. ``always`` mode then calls
:meth:`sync_to`, where concurrent writers share one fsync (group commit: the first
waiter syncs everything written so far, the others wait for it). ``everysec`` mode
runs a thread that syncs once a second; ``never`` leaves it to the OS.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Sequence

from shaledb.engine.base import Op
from shaledb.engine.checksum import crc32c
from shaledb.engine.entry import HAS_TTL
from shaledb.engine.fs import AppendFile, FileSystem
from shaledb.engine.record_log import WAL_BATCH, frame
from shaledb.errors import CorruptionError, StorageError

_BATCH_HEADER = struct.Struct("<QI")
_OP_HEADER = struct.Struct("<BII")
_EXPIRE = struct.Struct("<Q")


_SINGLE_HEADER = struct.Struct("<QIBII")
#: Record length and type, then the batch header and one operation header (21 bytes of payload).
_PUT_BODY = struct.Struct("<IBQIBII")
_CRC = struct.Struct("<I")


def encode_batch(seq: int, ops: Sequence[Op]) -> bytes:
    """The payload of one WAL record for ``ops``, the first numbered ``seq``."""
    if len(ops) == 1 and not ops[0][0] & HAS_TTL:
        # The common single put: one pack call (same bytes as the general path).
        flags, key, _, value = ops[0]
        return _SINGLE_HEADER.pack(seq, 1, flags, len(key), len(value)) + key + value
    parts = [_BATCH_HEADER.pack(seq, len(ops))]
    for flags, key, expire_ms, value in ops:
        parts.append(_OP_HEADER.pack(flags, len(key), len(value)))
        if flags & HAS_TTL:
            parts.append(_EXPIRE.pack(expire_ms))
        parts.append(key)
        parts.append(value)
    return b"".join(parts)


def decode_batch(payload: bytes, path: str = "", offset: int = 0) -> tuple[int, list[Op]]:
    """``(seq, ops)`` from a WAL record payload; CorruptionError if it does not parse."""
    try:
        seq, count = _BATCH_HEADER.unpack_from(payload, 0)
        pos = _BATCH_HEADER.size
        ops: list[Op] = []
        for _ in range(count):
            flags, klen, vlen = _OP_HEADER.unpack_from(payload, pos)
            pos += _OP_HEADER.size
            expire_ms = 0
            if flags & HAS_TTL:
                (expire_ms,) = _EXPIRE.unpack_from(payload, pos)
                pos += 8
            key = payload[pos : pos + klen]
            value = payload[pos + klen : pos + klen + vlen]
            pos += klen + vlen
            if len(key) != klen or len(value) != vlen:
                raise struct.error("operation runs past the end of the record")
            ops.append((flags, key, expire_ms, value))
        if pos != len(payload):
            raise struct.error(f"{len(payload) - pos} stray bytes after the last operation")
    except struct.error as exc:
        raise CorruptionError(
            f"{path}: write batch at offset {offset} does not parse: {exc}", path, offset
        ) from None
    return seq, ops


class WriteAheadLog:
    """The active log file, its rotation and its durability. Thread-safe as documented.

    ``append`` and ``rotate`` must be serialized by the caller (the engine's write
    lock); ``sync_to`` and ``sync`` may be called from any thread.
    """

    def __init__(self, fs: FileSystem, path: str, fsync: str) -> None:
        self._fs = fs
        self._file: AppendFile = fs.open_append(path)
        self._fsync = fsync
        self._written = 0  # bytes appended since open, across rotations
        self._synced = 0  # bytes known durable
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

    def append(self, seq: int, ops: Sequence[Op]) -> int:
        """Append one batch; returns the log position to pass to :meth:`sync_to`."""
        record = frame(WAL_BATCH, encode_batch(seq, ops))
        self._file.write(record)
        self._written += len(record)
        return self._written

    def append_put(self, seq: int, flags: int, key: bytes, value: bytes) -> int:
        """:meth:`append` for a batch of one put without TTL, in fewer steps (same bytes)."""
        body = _PUT_BODY.pack(
            21 + len(key) + len(value), WAL_BATCH, seq, 1, flags, len(key), len(value)
        )
        body += key
        body += value
        record = _CRC.pack(crc32c(body)) + body
        self._file.write(record)
        self._written += len(record)
        return self._written

    def sync_to(self, position: int) -> None:
        """Return once everything up to ``position`` is durable (group commit)."""
        with self._cond:
            while self._synced < position:
                if self._error is not None:
                    raise self._error
                if self._syncing:
                    self._cond.wait()
                    continue
                self._syncing = True
                target = self._written
                fd = os.dup(self._file.fd)
                self._cond.release()
                try:
                    os.fdatasync(fd)
                except OSError as exc:
                    self._error = StorageError(f"cannot fsync {self.path}: {exc.strerror}")
                finally:
                    os.close(fd)
                    self._cond.acquire()
                    self._syncing = False
                    self._cond.notify_all()
                if self._error is None:
                    self._synced = max(self._synced, target)

    def sync(self) -> None:
        """Make everything appended so far durable."""
        self.sync_to(self._written)

    def rotate(self, path: str) -> None:
        """Make the current file durable, close it and continue in a new file at ``path``."""
        new_file = self._fs.open_append(path)
        with self._cond:
            while self._syncing:
                self._cond.wait()
            self._file.sync()
            self._file.close()
            self._file = new_file
            self._synced = self._written
            self._cond.notify_all()
        self._fs.sync_dir(os.path.dirname(path) or ".")

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
        if self._file.fd >= 0:
            # Even in "never" mode a clean close leaves the log durable.
            self.sync()
            self._file.close()
