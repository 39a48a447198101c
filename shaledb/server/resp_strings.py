"""String commands: GET, SET and its variants, MGET/MSET, counters, ranges.

Every value is a byte string of at most 64 MiB (the database's limit). Counters
are stored as decimal text, as Redis stores them. Commands that change a value
without setting it anew (INCR, APPEND, SETRANGE) keep its time to live; SET and its
relatives drop it unless told otherwise (KEEPTTL).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from shaledb.options import MAX_VALUE_BYTES
from shaledb.server.resp_commands import (
    NOT_FLOAT,
    NOT_INTEGER,
    SYNTAX,
    RespError,
    command,
    to_float,
    to_int,
    upper,
)
from shaledb.server.resp_protocol import OK
from shaledb.server.resp_store import now_ms, table_ref

if TYPE_CHECKING:
    from shaledb.server.resp_session import RespSession

_MAX_INT64 = 2**63 - 1
_TOO_BIG = f"ERR string exceeds maximum allowed size ({MAX_VALUE_BYTES} bytes)"


def expire_at(unit: bytes, raw: bytes, name: str) -> int:
    """The absolute deadline (ms) of an EX/PX/EXAT/PXAT argument; raises on <= 0."""
    amount = to_int(raw)
    if amount <= 0 or amount > _MAX_INT64 // 1000:
        raise RespError(f"ERR invalid expire time in '{name}' command")
    if unit == b"EX":
        return now_ms() + amount * 1000
    if unit == b"PX":
        return now_ms() + amount
    if unit == b"EXAT":
        return amount * 1000
    return amount  # PXAT


@command("get", 2, "readonly fast", (1, 1, 1), "string", "Get the value of a key")
def _get(s: RespSession, args: list[bytes]) -> Any:
    value = s.store.get(s.table, args[0])
    if value is None:
        s.state.keyspace_misses += 1
    else:
        s.state.keyspace_hits += 1
    return value


@command("set", -3, "write denyoom", (1, 1, 1), "string", "Set the string value of a key")
def _set(s: RespSession, args: list[bytes]) -> Any:
    key, value = args[0], args[1]
    if len(args) == 2:
        s.store.put(s.table, key, value)
        return OK
    condition = b""
    get = keepttl = False
    expire: int | None = None
    i = 2
    while i < len(args):
        opt = upper(args[i])
        if opt in (b"NX", b"XX") and not condition:
            condition = opt
        elif opt == b"GET" and not get:
            get = True
        elif opt == b"KEEPTTL" and expire is None and not keepttl:
            keepttl = True
        elif opt in (b"EX", b"PX", b"EXAT", b"PXAT") and expire is None and not keepttl:
            if i + 1 >= len(args):
                raise RespError(SYNTAX)
            expire = expire_at(opt, args[i + 1], "set")
            i += 1
        else:
            raise RespError(SYNTAX)
        i += 1
    old = s.store.entry(s.table, key) if (condition or get or keepttl) else None
    if (condition == b"NX" and old is not None) or (condition == b"XX" and old is None):
        return old[0] if get and old is not None else None
    if keepttl and old is not None:
        expire = old[1]
    s.store.put(s.table, key, value, expire)
    if get:
        return None if old is None else old[0]
    return OK


@command("setnx", 3, "write denyoom fast", (1, 1, 1), "string", "Set a key if it does not exist")
def _setnx(s: RespSession, args: list[bytes]) -> Any:
    if s.store.exists(s.table, args[0]):
        return 0
    s.store.put(s.table, args[0], args[1])
    return 1


def _setex(s: RespSession, args: list[bytes], unit: bytes, name: str) -> Any:
    s.store.put(s.table, args[0], args[2], expire_at(unit, args[1], name))
    return OK


@command(
    "setex", 4, "write denyoom", (1, 1, 1), "string", "Set a key with a TTL in seconds", "2.0.0"
)
def _setex_cmd(s: RespSession, args: list[bytes]) -> Any:
    return _setex(s, args, b"EX", "setex")


@command(
    "psetex",
    4,
    "write denyoom",
    (1, 1, 1),
    "string",
    "Set a key with a TTL in milliseconds",
    "2.6.0",
)
def _psetex_cmd(s: RespSession, args: list[bytes]) -> Any:
    return _setex(s, args, b"PX", "psetex")


@command(
    "getset", 3, "write denyoom fast", (1, 1, 1), "string", "Set a key and return its old value"
)
def _getset(s: RespSession, args: list[bytes]) -> Any:
    old = s.store.get(s.table, args[0])
    s.store.put(s.table, args[0], args[1])
    return old


@command("getdel", 2, "write fast", (1, 1, 1), "string", "Get a key and delete it", "6.2.0")
def _getdel(s: RespSession, args: list[bytes]) -> Any:
    old = s.store.get(s.table, args[0])
    if old is not None:
        s.store.delete(s.table, args[0])
    return old


@command(
    "getex",
    -2,
    "write fast",
    (1, 1, 1),
    "string",
    "Get a key and set or remove its expiry",
    "6.2.0",
)
def _getex(s: RespSession, args: list[bytes]) -> Any:
    key = args[0]
    expire: int | None = None
    persist = False
    opts = args[1:]
    if opts:
        opt = upper(opts[0])
        if opt == b"PERSIST" and len(opts) == 1:
            persist = True
        elif opt in (b"EX", b"PX", b"EXAT", b"PXAT") and len(opts) == 2:
            expire = expire_at(opt, opts[1], "getex")
        else:
            raise RespError(SYNTAX)
    found = s.store.entry(s.table, key)
    if found is None:
        return None
    if expire is not None or (persist and found[1] is not None):
        s.store.put(s.table, key, found[0], expire)
    return found[0]


@command("mget", -2, "readonly fast", (1, -1, 1), "string", "Get the values of keys")
def _mget(s: RespSession, args: list[bytes]) -> Any:
    return [s.store.get(s.table, key) for key in args]


def _pairs(args: list[bytes], name: str) -> list[tuple[bytes, bytes]]:
    if len(args) % 2:
        raise RespError(f"ERR wrong number of arguments for '{name}' command")
    return list(zip(args[::2], args[1::2]))


@command("mset", -3, "write denyoom", (1, -1, 2), "string", "Set several keys atomically")
def _mset(s: RespSession, args: list[bytes]) -> Any:
    pairs = _pairs(args, "mset")
    if s.store is s.state.direct:
        # One atomic engine write without the batch overlay: the common, hot case.
        s.table.batch_put(args[::2], args[1::2])
        watches = s.state.watches
        if watches.active:
            tref = table_ref(s.table)
            for key, _ in pairs:
                watches.touch((tref, key))
        return OK
    for key, value in pairs:
        s.store.put(s.table, key, value)
    return OK


@command(
    "msetnx",
    -3,
    "write denyoom",
    (1, -1, 2),
    "string",
    "Set several keys atomically if none exists",
)
def _msetnx(s: RespSession, args: list[bytes]) -> Any:
    pairs = _pairs(args, "msetnx")
    with s.atomic() as store:
        if any(store.exists(s.table, key) for key, _ in pairs):
            return 0
        for key, value in pairs:
            store.put(s.table, key, value)
    return 1


@command(
    "append", 3, "write denyoom fast", (1, 1, 1), "string", "Append to the value of a key", "2.0.0"
)
def _append(s: RespSession, args: list[bytes]) -> Any:
    found = s.store.entry(s.table, args[0])
    value = args[1] if found is None else found[0] + args[1]
    if len(value) > MAX_VALUE_BYTES:
        raise RespError(_TOO_BIG)
    s.store.put(s.table, args[0], value, None if found is None else found[1])
    return len(value)


@command("strlen", 2, "readonly fast", (1, 1, 1), "string", "The length of a value", "2.2.0")
def _strlen(s: RespSession, args: list[bytes]) -> Any:
    value = s.store.get(s.table, args[0])
    return 0 if value is None else len(value)


@command("getrange", 4, "readonly", (1, 1, 1), "string", "A substring of a value", "2.4.0")
def _getrange(s: RespSession, args: list[bytes]) -> Any:
    start, end = to_int(args[1]), to_int(args[2])
    value = s.store.get(s.table, args[0]) or b""
    n = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    start = max(0, start + n if start < 0 else start)
    end = max(0, end + n if end < 0 else end)
    end = min(end, n - 1)
    if start > end or n == 0:
        return b""
    return value[start : end + 1]


@command("substr", 4, "readonly", (1, 1, 1), "string", "GETRANGE's old name")
def _substr(s: RespSession, args: list[bytes]) -> Any:
    return _getrange(s, args)


@command("setrange", 4, "write denyoom", (1, 1, 1), "string", "Overwrite part of a value", "2.2.0")
def _setrange(s: RespSession, args: list[bytes]) -> Any:
    offset = to_int(args[1])
    if offset < 0:
        raise RespError("ERR offset is out of range")
    patch = args[2]
    found = s.store.entry(s.table, args[0])
    value = b"" if found is None else found[0]
    if not patch:
        return len(value)
    if offset + len(patch) > MAX_VALUE_BYTES:
        raise RespError(_TOO_BIG)
    if len(value) < offset:
        value += b"\x00" * (offset - len(value))
    value = value[:offset] + patch + value[offset + len(patch) :]
    s.store.put(s.table, args[0], value, None if found is None else found[1])
    return len(value)


def _incr(s: RespSession, key: bytes, delta: int) -> int:
    found = s.store.entry(s.table, key)
    current = 0 if found is None else to_int(found[0])
    result = current + delta
    if not -(2**63) <= result <= _MAX_INT64:
        raise RespError("ERR increment or decrement would overflow")
    s.store.put(s.table, key, b"%d" % result, None if found is None else found[1])
    return result


@command("incr", 2, "write denyoom fast", (1, 1, 1), "string", "Add one to a counter")
def _incr_cmd(s: RespSession, args: list[bytes]) -> Any:
    return _incr(s, args[0], 1)


@command("decr", 2, "write denyoom fast", (1, 1, 1), "string", "Subtract one from a counter")
def _decr_cmd(s: RespSession, args: list[bytes]) -> Any:
    return _incr(s, args[0], -1)


@command("incrby", 3, "write denyoom fast", (1, 1, 1), "string", "Add to a counter")
def _incrby(s: RespSession, args: list[bytes]) -> Any:
    return _incr(s, args[0], to_int(args[1]))


@command("decrby", 3, "write denyoom fast", (1, 1, 1), "string", "Subtract from a counter")
def _decrby(s: RespSession, args: list[bytes]) -> Any:
    delta = to_int(args[1])
    if delta == -(2**63):
        raise RespError("ERR decrement would overflow")
    return _incr(s, args[0], -delta)


@command(
    "incrbyfloat", 3, "write denyoom fast", (1, 1, 1), "string", "Add a float to a counter", "2.6.0"
)
def _incrbyfloat(s: RespSession, args: list[bytes]) -> Any:
    to_float(args[1])  # Redis's check of the increment, and its error
    found = s.store.entry(s.table, args[0])
    try:
        current = Decimal(0) if found is None else _decimal(found[0])
        # Decimal arithmetic: 0.1 + 0.2 is 0.3, as Redis's long double prints it.
        result = current + _decimal(args[1])
    except (InvalidOperation, ArithmeticError, ValueError):
        raise RespError(NOT_FLOAT) from None
    if not result.is_finite() or abs(result) > _LONG_DOUBLE_MAX:
        raise RespError("ERR increment would produce NaN or Infinity")
    text = format(result.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    raw = text.encode("ascii")
    s.store.put(s.table, args[0], raw, None if found is None else found[1])
    return raw


#: The largest and the smallest positive long double (x86's 80-bit format), Redis's
#: INCRBYFLOAT type: a number beyond them is "not a valid float" there, as its strtold
#: overflows or underflows.
_LONG_DOUBLE_MAX = Decimal("1.18973149535723176502e4932")
_LONG_DOUBLE_MIN = Decimal("3.64519953188247460253e-4951")


def _decimal(raw: bytes) -> Decimal:
    text = raw.decode("ascii")
    if text != text.strip() or not text or "_" in text:
        raise ValueError(text)
    value = Decimal(text)
    if value.is_nan():
        raise ValueError(text)
    if value.is_finite() and value and not _LONG_DOUBLE_MIN <= abs(value) <= _LONG_DOUBLE_MAX:
        raise ValueError(text)  # out of a long double's range
    return value


# NOT_INTEGER is re-exported for the modules that raise it by name.
__all__ = ["NOT_INTEGER", "expire_at"]
