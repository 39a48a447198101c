"""Checking and converting what users pass in: the str/bytes edge of the API.

The engine works in bytes. Here a key or value given as ``str`` becomes UTF-8 and a
flag bit records it, so that reads give back the type that was written. Every bad
argument raises an :class:`~shaledb.errors.InvalidArgumentError` (a ``ValueError``)
or :class:`~shaledb.errors.InvalidTypeError` (also a ``TypeError``) whose message
says what is accepted.
"""

from __future__ import annotations

import math

from shaledb.engine.entry import KEY_STR, VALUE_STR
from shaledb.errors import InvalidArgumentError, InvalidTypeError
from shaledb.options import MAX_KEY_BYTES, MAX_VALUE_BYTES

#: What users may pass as a key or a value.
Data = str | bytes


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
    """A TTL as positive finite seconds; raises on anything else (bool included)."""
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise InvalidTypeError(
            f"ttl must be a positive number of seconds; got {type(ttl).__name__}"
        )
    if not math.isfinite(ttl) or ttl <= 0:
        raise InvalidArgumentError(f"ttl must be a positive number of seconds; got {ttl!r}")
    return float(ttl)


def decode_key(raw: bytes, flags: int) -> Data:
    """A stored key back in the type it was written with."""
    return raw.decode("utf-8") if flags & KEY_STR else raw


def decode_value(raw: bytes, flags: int) -> Data:
    """A stored value back in the type it was written with."""
    return raw.decode("utf-8") if flags & VALUE_STR else raw
