"""Key commands: DEL, EXISTS, TYPE, KEYS, SCAN, RENAME, COPY, expiry, FLUSHDB, ...

Every key holds a string (ShaleDB has no other value types), so TYPE answers
``string`` or ``none``. SCAN cursors are small integers naming a server-side
position (the next key), kept for the :data:`MAX_CURSORS` most recent scans; a
cursor older than that, or from before a restart, is an error, and the scan can be
started again from 0. Keys come back in key order, so a scan returns every key
present from its start to its end exactly once.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from shaledb import Table
from shaledb.server.glob_pattern import compile_glob
from shaledb.server.resp_commands import SYNTAX, RespError, command, to_int, upper
from shaledb.server.resp_protocol import OK, SimpleString
from shaledb.server.resp_store import now_ms, table_ref

if TYPE_CHECKING:
    from shaledb.server.resp_session import RespSession

#: SCAN positions remembered; older cursors are refused.
MAX_CURSORS = 100_000
#: Keys deleted per write batch by FLUSHDB/FLUSHALL.
FLUSH_BATCH = 10_000
_MAX_INT64 = 2**63 - 1


def _raw(key: str | bytes) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else key


class Cursors:
    """SCAN positions by cursor number. Thread-safe; bounded (oldest dropped first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._where: OrderedDict[int, tuple[tuple[str, str], bytes]] = OrderedDict()

    def save(self, tref: tuple[str, str], next_key: bytes) -> int:
        with self._lock:
            cursor = next(self._ids)
            self._where[cursor] = (tref, next_key)
            if len(self._where) > MAX_CURSORS:
                self._where.popitem(last=False)
            return cursor

    def take(self, cursor: int, tref: tuple[str, str]) -> bytes:
        with self._lock:
            where = self._where.pop(cursor, None)
        if where is None or where[0] != tref:
            raise RespError(
                "ERR invalid cursor (expired, or from another database); start again at 0"
            )
        return where[1]


CURSORS = Cursors()


@command("del", -2, "write", (1, -1, 1), "keyspace", "Delete keys")
def _del(s: RespSession, args: list[bytes]) -> Any:
    if len(args) == 1:
        return int(s.store.delete(s.table, args[0]))
    with s.atomic() as store:
        return sum(store.delete(s.table, key) for key in args)


@command("unlink", -2, "write fast", (1, -1, 1), "keyspace", "Delete keys", "4.0.0")
def _unlink(s: RespSession, args: list[bytes]) -> Any:
    return _del(s, args)


@command("exists", -2, "readonly fast", (1, -1, 1), "keyspace", "How many of the keys exist")
def _exists(s: RespSession, args: list[bytes]) -> Any:
    return sum(s.store.exists(s.table, key) for key in args)


@command(
    "touch", -2, "readonly fast", (1, -1, 1), "keyspace", "How many of the keys exist", "3.2.1"
)
def _touch(s: RespSession, args: list[bytes]) -> Any:
    return _exists(s, args)


@command("type", 2, "readonly fast", (1, 1, 1), "keyspace", "The type of a key's value")
def _type(s: RespSession, args: list[bytes]) -> Any:
    return SimpleString("string" if s.store.exists(s.table, args[0]) else "none")


@command("keys", 2, "readonly", group="keyspace", summary="Every key matching a pattern")
def _keys(s: RespSession, args: list[bytes]) -> Any:
    match = compile_glob(args[0])
    prefix = _literal_prefix(args[0])
    keys = (_raw(k) for k in s.table.keys(prefix=prefix or None))
    return [k for k in keys if match(k)]


def _literal_prefix(pattern: bytes) -> bytes:
    """The part of a glob before its first special byte (to narrow the scan)."""
    for i, c in enumerate(pattern):
        if c in b"*?[\\":
            return pattern[:i]
    return pattern


@command("scan", -2, "readonly", group="keyspace", summary="Iterate over keys", since="2.8.0")
def _scan(s: RespSession, args: list[bytes]) -> Any:
    cursor = to_int(args[0], "ERR invalid cursor")
    if cursor < 0:
        raise RespError("ERR invalid cursor")
    count, match, type_name = 10, None, None
    i = 1
    while i < len(args):
        opt = upper(args[i])
        if i + 1 >= len(args):
            raise RespError(SYNTAX)
        if opt == b"COUNT":
            count = to_int(args[i + 1])
            if count < 1:
                raise RespError(SYNTAX)
        elif opt == b"MATCH":
            match = args[i + 1]
        elif opt == b"TYPE":
            type_name = args[i + 1].lower()
        else:
            raise RespError(SYNTAX)
        i += 2
    tref = table_ref(s.table)
    start = None if cursor == 0 else CURSORS.take(cursor, tref)
    if type_name is not None and type_name != b"string":
        return [b"0", []]
    prefix = _literal_prefix(match) if match is not None else b""
    if prefix and start is not None and start < prefix:
        start = prefix
    keys = [_raw(k) for k in s.table.keys(start=start, prefix=prefix or None, limit=count)]
    next_cursor = 0
    if len(keys) == count:
        next_cursor = CURSORS.save(tref, keys[-1] + b"\x00")
    if match is not None:
        test = compile_glob(match)
        keys = [k for k in keys if test(k)]
    return [b"%d" % next_cursor, keys]


@command("randomkey", 1, "readonly", group="keyspace", summary="A random key")
def _randomkey(s: RespSession, args: list[bytes]) -> Any:
    for start in (os.urandom(8), None):
        for key in s.table.keys(start=start, limit=1):
            return _raw(key)
    return None


def _move(s: RespSession, src: bytes, dst: bytes, nx: bool) -> Any:
    with s.atomic() as store:
        found = store.entry(s.table, src)
        if found is None:
            raise RespError("ERR no such key")
        if src == dst:
            return 0 if nx else OK
        if nx and store.exists(s.table, dst):
            return 0
        store.delete(s.table, src)
        store.put(s.table, dst, found[0], found[1])
    return 1 if nx else OK


@command("rename", 3, "write", (1, 2, 1), "keyspace", "Rename a key")
def _rename(s: RespSession, args: list[bytes]) -> Any:
    return _move(s, args[0], args[1], False)


@command("renamenx", 3, "write fast", (1, 2, 1), "keyspace", "Rename a key if the new name is free")
def _renamenx(s: RespSession, args: list[bytes]) -> Any:
    return _move(s, args[0], args[1], True)


@command("copy", -3, "write denyoom", (1, 2, 1), "keyspace", "Copy a key", "6.2.0")
def _copy(s: RespSession, args: list[bytes]) -> Any:
    src, dst = args[0], args[1]
    target: Table = s.table
    replace = False
    i = 2
    while i < len(args):
        opt = upper(args[i])
        if opt == b"REPLACE":
            replace = True
        elif opt == b"DB" and i + 1 < len(args):
            target = s.state.numbered_table(_db_index(args[i + 1]))
            i += 1
        else:
            raise RespError(SYNTAX)
        i += 1
    with s.atomic() as store:
        found = store.entry(s.table, src)
        if found is None:
            return 0
        if target is s.table and src == dst:
            raise RespError("ERR source and destination objects are the same")
        if not replace and store.exists(target, dst):
            return 0
        store.put(target, dst, found[0], found[1])
    return 1


def _db_index(raw: bytes) -> int:
    from shaledb.server.resp_session import DATABASES

    index = to_int(raw)
    if not 0 <= index < DATABASES:
        raise RespError("ERR DB index is out of range")
    return index


# -- expiry ----------------------------------------------------------------------------


def _expire(s: RespSession, args: list[bytes], unit: bytes, name: str) -> Any:
    key = args[0]
    amount = to_int(args[1])
    nx = xx = gt = lt = False
    for raw in args[2:]:
        opt = upper(raw)
        if opt == b"NX":
            nx = True
        elif opt == b"XX":
            xx = True
        elif opt == b"GT":
            gt = True
        elif opt == b"LT":
            lt = True
        else:
            raise RespError(f"ERR Unsupported option {raw.decode('utf-8', 'replace')}")
    if nx and (xx or gt or lt):
        raise RespError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if gt and lt:
        raise RespError("ERR GT and LT options at the same time are not compatible")
    scale = 1000 if unit in (b"EX", b"EXAT") else 1
    if abs(amount) > _MAX_INT64 // 1000:
        raise RespError(f"ERR invalid expire time in '{name}' command")
    deadline = amount * scale + (now_ms() if unit in (b"EX", b"PX") else 0)
    found = s.store.entry(s.table, key)
    if found is None:
        return 0
    current = found[1]
    if nx and current is not None:
        return 0
    if xx and current is None:
        return 0
    # No expiry counts as an infinite one for GT and LT.
    if gt and (current is None or deadline <= current):
        return 0
    if lt and current is not None and deadline >= current:
        return 0
    if deadline <= now_ms():
        s.store.delete(s.table, key)
    else:
        s.store.put(s.table, key, found[0], deadline)
    return 1


def _register_expire(name: str, unit: bytes, summary: str, since: str) -> None:
    def handler(s: RespSession, args: list[bytes]) -> Any:
        return _expire(s, args, unit, name)

    command(name, -3, "write fast", (1, 1, 1), "keyspace", summary, since)(handler)


_register_expire("expire", b"EX", "Set a key's time to live in seconds", "1.0.0")
_register_expire("pexpire", b"PX", "Set a key's time to live in milliseconds", "2.6.0")
_register_expire("expireat", b"EXAT", "Set a key's expiry as a Unix time in seconds", "1.2.0")
_register_expire("pexpireat", b"PXAT", "Set a key's expiry as a Unix time in ms", "2.6.0")


def _deadline(s: RespSession, key: bytes) -> int | None:
    """-2 missing, -1 no expiry, else the deadline in ms (returned as is)."""
    found = s.store.entry(s.table, key)
    if found is None:
        return -2
    return -1 if found[1] is None else found[1]


@command("ttl", 2, "readonly fast", (1, 1, 1), "keyspace", "Seconds a key has left")
def _ttl(s: RespSession, args: list[bytes]) -> Any:
    at = _deadline(s, args[0])
    assert at is not None
    return at if at < 0 else max(0, (at - now_ms() + 500) // 1000)


@command("pttl", 2, "readonly fast", (1, 1, 1), "keyspace", "Milliseconds a key has left", "2.6.0")
def _pttl(s: RespSession, args: list[bytes]) -> Any:
    at = _deadline(s, args[0])
    assert at is not None
    return at if at < 0 else max(0, at - now_ms())


@command(
    "expiretime",
    2,
    "readonly fast",
    (1, 1, 1),
    "keyspace",
    "A key's expiry as a Unix time in seconds",
    "7.0.0",
)
def _expiretime(s: RespSession, args: list[bytes]) -> Any:
    at = _deadline(s, args[0])
    assert at is not None
    return at if at < 0 else at // 1000


@command(
    "pexpiretime",
    2,
    "readonly fast",
    (1, 1, 1),
    "keyspace",
    "A key's expiry as a Unix time in ms",
    "7.0.0",
)
def _pexpiretime(s: RespSession, args: list[bytes]) -> Any:
    return _deadline(s, args[0])


@command("persist", 2, "write fast", (1, 1, 1), "keyspace", "Remove a key's expiry", "2.2.0")
def _persist(s: RespSession, args: list[bytes]) -> Any:
    found = s.store.entry(s.table, args[0])
    if found is None or found[1] is None:
        return 0
    s.store.put(s.table, args[0], found[0])
    return 1


@command(
    "object", -2, "readonly", (2, 2, 1), "keyspace", "ENCODING | REFCOUNT | IDLETIME key", "2.2.3"
)
def _object(s: RespSession, args: list[bytes]) -> Any:
    sub = upper(args[0])
    if sub == b"HELP":
        return ["OBJECT ENCODING <key>", "OBJECT REFCOUNT <key>", "OBJECT IDLETIME <key>"]
    if sub in (b"ENCODING", b"REFCOUNT", b"IDLETIME", b"FREQ") and len(args) == 2:
        value = s.store.get(s.table, args[1])
        if value is None:
            return None
        if sub == b"REFCOUNT":
            return 1
        if sub == b"IDLETIME":
            return 0
        if sub == b"FREQ":
            raise RespError(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked."
            )
        return _encoding(value)
    raise RespError(
        f"ERR unknown subcommand '{args[0].decode('utf-8', 'replace')}'. Try OBJECT HELP."
    )


def _encoding(value: bytes) -> bytes:
    """What Redis would call the value's encoding (ShaleDB stores every value as bytes)."""
    if 0 < len(value) <= 20:
        try:
            to_int(value)
            return b"int"
        except RespError:
            pass
    return b"embstr" if len(value) <= 44 else b"raw"


# -- whole tables ----------------------------------------------------------------------


@command("dbsize", 1, "readonly fast", group="server", summary="The number of keys")
def _dbsize(s: RespSession, args: list[bytes]) -> Any:
    return s.table.count()


def flush_table(s: RespSession, table: Table) -> None:
    """Delete every key of ``table`` (in batches; inside EXEC in the transaction's)."""
    from shaledb.server.resp_store import BatchStore

    if isinstance(s.store, BatchStore):
        for key in list(table.keys()):
            s.store.delete(table, _raw(key))
        return
    db = s.state.db
    while True:
        keys = list(table.keys(limit=FLUSH_BATCH))
        if not keys:
            break
        batch = db.write_batch()
        for key in keys:
            batch.delete(key, table=table)
        db.write(batch)
    s.state.watches.touch_table(table_ref(table))


def _flush_mode(args: list[bytes]) -> None:
    if len(args) > 1 or (args and upper(args[0]) not in (b"ASYNC", b"SYNC")):
        raise RespError(SYNTAX)


@command("flushdb", -1, "write", group="server", summary="Delete every key of the selected table")
def _flushdb(s: RespSession, args: list[bytes]) -> Any:
    _flush_mode(args)
    flush_table(s, s.table)
    return OK


@command("flushall", -1, "write", group="server", summary="Delete every key of every table")
def _flushall(s: RespSession, args: list[bytes]) -> Any:
    _flush_mode(args)
    for table in s.state.tables():
        flush_table(s, table)
    return OK
