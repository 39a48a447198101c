"""The str/bytes edge of the API: key, value, bound and TTL checking."""

from __future__ import annotations

import math
from typing import Any

import pytest

from shaledb.arguments import (
    bound_bytes,
    decode_value,
    key_bytes,
    ttl_seconds,
    value_bytes,
)
from shaledb.db import DB
from shaledb.engine.entry import KEY_STR, VALUE_STR
from shaledb.engine.memory import MemoryEngine
from shaledb.errors import InvalidArgumentError, InvalidTypeError, ShaleDBError
from shaledb.options import MAX_KEY_BYTES, MAX_VALUE_BYTES


def test_str_keys_become_utf8_with_a_flag() -> None:
    assert key_bytes("é") == ("é".encode(), KEY_STR)
    assert key_bytes(b"\xff") == (b"\xff", 0)
    assert key_bytes(bytearray(b"ab")) == (b"ab", 0)
    assert key_bytes(memoryview(b"ab")) == (b"ab", 0)
    assert type(key_bytes(bytearray(b"ab"))[0]) is bytes


def test_values_likewise() -> None:
    assert value_bytes("ü") == ("ü".encode(), VALUE_STR)
    assert value_bytes(b"") == (b"", 0)
    assert value_bytes("") == (b"", VALUE_STR)


def test_decoding_gives_back_the_type() -> None:
    # Keys are decoded inline by Table.scan (arguments.decode_key was dead code).
    db = DB.over(MemoryEngine())
    db.put("é", "v")
    db.put(b"\xff", "v")
    assert [k for k, _ in db.scan()] == ["é", b"\xff"]
    assert decode_value(b"x", VALUE_STR | KEY_STR) == "x"
    assert decode_value(b"x", KEY_STR) == b"x"


def test_size_limits_are_inclusive() -> None:
    assert len(key_bytes("k" * MAX_KEY_BYTES)[0]) == MAX_KEY_BYTES
    with pytest.raises(InvalidArgumentError, match=f"{MAX_KEY_BYTES + 1} bytes"):
        key_bytes(b"k" * (MAX_KEY_BYTES + 1))
    # The limit counts UTF-8 bytes, not characters.
    with pytest.raises(InvalidArgumentError):
        key_bytes("€" * (MAX_KEY_BYTES // 3 + 1))
    assert len(value_bytes(b"v" * MAX_VALUE_BYTES)[0]) == MAX_VALUE_BYTES
    with pytest.raises(InvalidArgumentError, match=f"at most {MAX_VALUE_BYTES}"):
        value_bytes(b"v" * (MAX_VALUE_BYTES + 1))


@pytest.mark.parametrize("bad", [1, None, 1.0, ["k"], ("k",), {"k"}, object(), True])
def test_wrong_types(bad: Any) -> None:
    for check in (key_bytes, value_bytes, lambda b: bound_bytes(b, "start")):
        with pytest.raises(InvalidTypeError) as info:
            check(bad)
        assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
        assert isinstance(info.value, ShaleDBError)
        assert "str or bytes" in str(info.value) and type(bad).__name__ in str(info.value)


def test_empty_key_but_empty_bound() -> None:
    with pytest.raises(InvalidArgumentError, match="empty"):
        key_bytes("")
    assert bound_bytes("", "prefix") == b""


def test_lone_surrogates_are_not_utf8() -> None:
    for check in (key_bytes, value_bytes):
        with pytest.raises(InvalidArgumentError, match="UTF-8"):
            check("a\udc80")
    with pytest.raises(InvalidArgumentError, match="end"):
        bound_bytes("\ud800", "end")


@pytest.mark.parametrize("ttl", [1, 0.001, 3600, 1e9, 2**40])
def test_good_ttls(ttl: Any) -> None:
    assert ttl_seconds(ttl) == float(ttl)


@pytest.mark.parametrize("ttl", [0, -1, 0.0, -0.0, math.nan, math.inf, -math.inf])
def test_ttl_values_refused(ttl: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="positive number of seconds") as info:
        ttl_seconds(ttl)
    assert not isinstance(info.value, TypeError)


@pytest.mark.parametrize("ttl", [True, False, "5", None, [5], b"5"])
def test_ttl_types_refused(ttl: Any) -> None:
    with pytest.raises(InvalidTypeError, match="positive number of seconds"):
        ttl_seconds(ttl)
