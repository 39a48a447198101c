"""Checking and converting what users pass in: the str/bytes edge of the API.

The engine works in bytes. Here a key or value given as ``str`` becomes UTF-8 and a
flag bit records it, so that reads give back the type that was written. Every bad
argument raises an :class:`~shaledb.errors.InvalidArgumentError` (a ``ValueError``)
or :class:`~shaledb.errors.InvalidTypeError` (also a ``TypeError``) whose message
says what is accepted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from shaledb.engine.entry import KEY_STR, MAX_EXPIRE_MS, VALUE_STR
from shaledb.errors import InvalidArgumentError, InvalidTypeError
from shaledb.options import MAX_KEY_BYTES, MAX_VALUE_BYTES

#: What users may pass as a key or a value.
Data = str | bytes

#: The longest TTL accepted, in seconds (about 292 million years). It leaves room
#: for any clock reading below 2**63 ms, so that "now + ttl" always fits in the 64-bit
#: expiry field of the formats (entry.MAX_EXPIRE_MS).
MAX_TTL_SECONDS = (1 << 63) // 1000


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(
            f"{what} is not encodable as UTF-8 ({exc.reason} at index {exc.start})"
        ) from None


def key_bytes(key: object) -> tuple[bytes, int]:
    """``(key as bytes, KEY_STR or 0)``; raises on an empty, oversized or non-str/bytes key."""
    if type(key) is str:
        raw, flag = _utf8(key, "key"), KEY_STR
    elif isinstance(key, (bytes, bytearray, memoryview)):
        raw, flag = bytes(key), 0
    else:
        raise InvalidTypeError(f"key must be str or bytes; got {type(key).__name__}")
    if not raw:
        raise InvalidArgumentError("key must not be empty (1 to 65536 bytes are accepted)")
    if len(raw) > MAX_KEY_BYTES:
        raise InvalidArgumentError(
            f"key is {len(raw)} bytes; at most {MAX_KEY_BYTES} bytes are accepted"
        )
    return raw, flag


def bound_bytes(key: object, what: str) -> bytes:
    """A range bound or prefix as bytes (may be empty); raises on a non-str/bytes type."""
    if type(key) is str:
        return _utf8(key, what)
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise InvalidTypeError(f"{what} must be str or bytes; got {type(key).__name__}")


def value_bytes(value: object) -> tuple[bytes, int]:
    """``(value as bytes, VALUE_STR or 0)``; raises on an oversized or non-str/bytes value."""
    if type(value) is str:
        raw, flag = _utf8(value, "value"), VALUE_STR
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw, flag = bytes(value), 0
    else:
        raise InvalidTypeError(f"value must be str or bytes; got {type(value).__name__}")
    if len(raw) > MAX_VALUE_BYTES:
        raise InvalidArgumentError(
            f"value is {len(raw)} bytes; at most {MAX_VALUE_BYTES} bytes are accepted"
        )
    return raw, flag


def ttl_seconds(ttl: object) -> float:
    """A TTL as positive finite seconds up to :data:`MAX_TTL_SECONDS`.

    Raises InvalidTypeError for a non-number (bool included), InvalidArgumentError for
    a number outside the range (NaN, infinities and huge ints included).
    """
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise InvalidTypeError(
            f"ttl must be a positive number of seconds; got {type(ttl).__name__}"
        )
    # Compare before converting: float() of a huge int raises OverflowError.
    if ttl != ttl or ttl <= 0:  # ttl != ttl: NaN
        raise InvalidArgumentError(f"ttl must be a positive number of seconds; got {ttl!r}")
    if ttl > MAX_TTL_SECONDS:
        raise InvalidArgumentError(
            f"ttl must be a positive number of seconds, at most {MAX_TTL_SECONDS} "
            f"(the expiry time must fit in 64 bits); got {_show_number(ttl)}"
        )
    return float(ttl)


def expire_ms(now_ms: int, ttl: object) -> int:
    """The expiry time (ms since the epoch) of a TTL starting at ``now_ms``; at least 1 ms.

    Raises like :func:`ttl_seconds`, and InvalidArgumentError when the clock is so far
    ahead that the expiry would not fit in 64 bits.
    """
    expire = now_ms + max(1, int(ttl_seconds(ttl) * 1000))
    if expire > MAX_EXPIRE_MS:
        raise InvalidArgumentError(
            f"ttl {_show_number(ttl)} s from now ({now_ms} ms since the epoch) ends after "
            f"the largest expiry time, {MAX_EXPIRE_MS} ms"
        )
    return expire


def _show_number(number: object) -> str:
    text = repr(number)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} digits)"


def scan_limit(limit: object) -> int | None:
    """A scan's ``limit`` (None or a non-negative int), capped at ``sys.maxsize``.

    No scan can yield more than ``sys.maxsize`` pairs, so a larger limit means "all"
    (the cap keeps it usable by ``itertools.islice``).
    """
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidArgumentError(f"limit must be a non-negative integer; got {limit!r}")
    return min(limit, sys.maxsize)


def data_list(items: object, what: str) -> list[object]:
    """``items`` (a list, tuple or other iterable of keys or values) as a list.

    Raises InvalidTypeError for a single str or bytes (a common slip for a list of
    one) and for anything that is not iterable.
    """
    if isinstance(items, (str, bytes, bytearray, memoryview)):
        raise InvalidTypeError(
            f"{what} must be a list of str or bytes, not a single {type(items).__name__}"
        )
    if not isinstance(items, Iterable):
        raise InvalidTypeError(f"{what} must be a list of str or bytes; got {type(items).__name__}")
    return list(items)


def decode_value(raw: bytes, flags: int) -> Data:
    """A stored value back in the type it was written with."""
    return raw.decode("utf-8") if flags & VALUE_STR else raw
