"""The keyspace as RESP commands see it: bytes values with absolute expiry times.

RESP commands read and write through a store, never through the database directly,
so that one handler serves both cases:

- :class:`DirectStore`: every write applies at once (the caller holds the keyspace
  write lock, see :mod:`shaledb.server.resp_session`);
- :class:`BatchStore`: writes go into one :class:`shaledb.WriteBatch` applied by
  :meth:`BatchStore.commit`; reads see the batch's own writes first. MULTI/EXEC and
  multi-key commands (MSET, RENAME, DEL k1 k2 ...) use it, so they are atomic.

Both tell the WATCH registry about every key written and the expiry tracker about
every deadline set. Values are stored as ``bytes`` (a value written as ``str`` through
another way in is read back as its UTF-8 bytes). An expiry is milliseconds since the
epoch; the database takes a TTL, so it is converted at the edge (the clocks agree to
well under a millisecond).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from shaledb import DB, NotFoundError, Table

if TYPE_CHECKING:
    from shaledb.server.resp_session import RespState

#: ``(value, expire_at_ms or None)``.
Entry = tuple[bytes, int | None]
#: What names a key across tables: ``((namespace, table), key)``.
KeyRef = tuple[tuple[str, str], bytes]


def now_ms() -> int:
    return int(time.time() * 1000)


def table_ref(table: Table) -> tuple[str, str]:
    return (table.namespace_name, table.name)


def _raw(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


class DirectStore:
    """Reads and writes that apply at once. Callers hold the write lock to write."""

    def __init__(self, state: RespState) -> None:
        self.state = state

    def get(self, table: Table, key: bytes) -> bytes | None:
        value = table.get(key)
        return None if value is None else _raw(value)

    def entry(self, table: Table, key: bytes) -> Entry | None:
        value = table.get(key)
        if value is None:
            return None
        try:
            ttl = table.ttl(key)
        except NotFoundError:  # expired between the two reads
            return None
        return _raw(value), None if ttl is None else now_ms() + round(ttl * 1000)

    def exists(self, table: Table, key: bytes) -> bool:
        return table.exists(key)

    def put(self, table: Table, key: bytes, value: bytes, expire_ms: int | None = None) -> None:
        """Store ``value``; an ``expire_ms`` already past deletes the key instead."""
        if expire_ms is None:
            table.put(key, value)
        else:
            left = expire_ms - now_ms()
            if left <= 0:
                table.delete(key)
            else:
                table.put(key, value, ttl=left / 1000)
                self.state.expiry.note(table, key, expire_ms)
        self.state.watches.touch((table_ref(table), key))

    def delete(self, table: Table, key: bytes) -> bool:
        """Delete ``key``; whether it existed."""
        existed = table.delete(key)
        if existed:
            self.state.watches.touch((table_ref(table), key))
        return existed


class BatchStore:
    """Writes gathered into one atomic batch; reads see them first. Not thread-safe."""

    def __init__(self, state: RespState, db: DB) -> None:
        self.state = state
        self.db = db
        self.direct = DirectStore(state)
        self.batch = db.write_batch()
        # The batch's effect per key: an Entry, or None for a delete.
        self._overlay: dict[KeyRef, Entry | None] = {}
        self._tables: dict[tuple[str, str], Table] = {}

    def entry(self, table: Table, key: bytes) -> Entry | None:
        ref = (table_ref(table), key)
        if ref in self._overlay:
            found = self._overlay[ref]
            if found is not None and found[1] is not None and found[1] <= now_ms():
                return None
            return found
        return self.direct.entry(table, key)

    def get(self, table: Table, key: bytes) -> bytes | None:
        ref = (table_ref(table), key)
        if ref in self._overlay:
            found = self.entry(table, key)
            return None if found is None else found[0]
        return self.direct.get(table, key)

    def exists(self, table: Table, key: bytes) -> bool:
        return self.get(table, key) is not None

    def put(self, table: Table, key: bytes, value: bytes, expire_ms: int | None = None) -> None:
        ref = (table_ref(table), key)
        if expire_ms is None:
            self.batch.put(key, value, table=table)
        else:
            left = expire_ms - now_ms()
            if left <= 0:
                self.batch.delete(key, table=table)
                self._overlay[ref] = None
                return
            self.batch.put(key, value, ttl=left / 1000, table=table)
        self._overlay[ref] = (value, expire_ms)

    def delete(self, table: Table, key: bytes) -> bool:
        existed = self.exists(table, key)
        if existed:
            self.batch.delete(key, table=table)
            self._overlay[(table_ref(table), key)] = None
        return existed

    def commit(self) -> None:
        """Apply every write at once (all or nothing), then tell WATCH and expiry."""
        if len(self.batch):
            self.db.write(self.batch)
        for ref, found in self._overlay.items():
            self.state.watches.touch(ref)
            if found is not None and found[1] is not None:
                self.state.expiry.note_ref(ref, found[1])
        self.batch.clear()
        self._overlay.clear()
