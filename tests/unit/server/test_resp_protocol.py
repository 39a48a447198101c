"""The RESP codec without a socket: request framing, inline commands, reply encoding."""

from __future__ import annotations

import pytest

from shaledb.server.glob_pattern import compile_glob
from shaledb.server.resp_protocol import (
    NULL_ARRAY,
    OK,
    RESP2,
    RESP3,
    ErrorReply,
    FramingError,
    Push,
    RequestParser,
    SimpleString,
    encode,
    encode_command,
    format_double,
    split_inline,
)
from shaledb.server.resp_reply_parser import ReplyParser


def parse(data: bytes, max_frame: int = 1 << 20) -> tuple[list[list[bytes]], FramingError | None]:
    return RequestParser(max_frame).feed(data)


# -- requests ----------------------------------------------------------------------------


def test_array_of_bulk_strings() -> None:
    assert parse(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nxy\r\n") == (
        [[b"SET", b"k", b"v\r\nxy"]],
        None,
    )


def test_pipelined_frames_come_out_in_order() -> None:
    data = b"".join(encode_command("INCR", f"k{i}") for i in range(1000))
    commands, error = parse(data)
    assert error is None
    assert commands == [[b"INCR", f"k{i}".encode()] for i in range(1000)]


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 7, 11, 13])
def test_frames_split_across_reads(cut: int) -> None:
    data = encode_command("SET", "key", b"\x00\r\n" * 50) + encode_command("GET", "key")
    parser = RequestParser()
    out: list[list[bytes]] = []
    for i in range(0, len(data), cut):
        commands, error = parser.feed(data[i : i + cut])
        assert error is None
        out += commands
    assert out == [[b"SET", b"key", b"\x00\r\n" * 50], [b"GET", b"key"]]
    assert parser.buffered == 0


def test_a_large_value_in_many_reads_is_not_reparsed_quadratically() -> None:
    value = b"x" * (4 << 20)
    data = encode_command("SET", "k", value)
    parser = RequestParser(8 << 20)
    got: list[list[bytes]] = []
    for i in range(0, len(data), 4096):
        commands, error = parser.feed(data[i : i + 4096])
        assert error is None
        got += commands
    assert got == [[b"SET", b"k", value]]


def test_empty_and_null_arrays_are_skipped() -> None:
    assert parse(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n") == ([[b"PING"]], None)


def test_inline_commands_and_blank_lines() -> None:
    assert parse(b"PING\r\n\r\nSET a b\nGET   a\r\n") == (
        [[b"PING"], [b"SET", b"a", b"b"], [b"GET", b"a"]],
        None,
    )


def test_inline_quotes_as_redis_splits_them() -> None:
    assert split_inline(b'SET k "a b\\n\\x41"') == [b"SET", b"k", b"a b\nA"]
    assert split_inline(b"SET k 'it\\'s'") == [b"SET", b"k", b"it's"]
    assert split_inline(b'SET k ""') == [b"SET", b"k", b""]
    with pytest.raises(FramingError, match="unbalanced quotes"):
        split_inline(b'SET k "open')
    with pytest.raises(FramingError, match="unbalanced quotes"):
        split_inline(b'SET k "a"b')


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"*x\r\n", "invalid multibulk length"),
        (b"*1\r\n:5\r\n", "expected '$', got ':'"),
        (b"*1\r\n$-3\r\n", "invalid bulk length"),
        (b"*1\r\n$1x\r\n", "invalid bulk length"),
        (b"*99999999999\r\n", "invalid multibulk length"),
    ],
)
def test_framing_errors_use_redis_words(data: bytes, message: str) -> None:
    commands, error = parse(encode_command("PING") + data)
    assert commands == [[b"PING"]]  # what came before the bad frame is still run
    assert error is not None and str(error).startswith("Protocol error: ")
    assert message in str(error)


def test_frame_over_the_limit_is_refused_as_soon_as_announced() -> None:
    commands, error = parse(b"*2\r\n$3\r\nSET\r\n$5000\r\n", max_frame=1024)
    assert commands == [] and error is not None and "longer than 1024" in str(error)


def test_unterminated_frame_over_the_limit_is_refused() -> None:
    parser = RequestParser(1024)
    _, error = parser.feed(b"GET " + b"k" * 2000)
    assert error is not None and "too big inline request" in str(error)
    _, error = RequestParser(1024).feed(b"*2\r\n" + b"$3\r\nGET\r\n" + b"$" + b"9" * 70000)
    assert error is not None


def test_limit_can_be_raised_between_feeds() -> None:
    parser = RequestParser(16)
    parser.max_frame = 1 << 20
    assert parser.feed(encode_command("SET", "k", "v" * 1000))[0][0][2] == b"v" * 1000


# -- replies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "resp2", "resp3"),
    [
        (OK, b"+OK\r\n", b"+OK\r\n"),
        (SimpleString("PONG"), b"+PONG\r\n", b"+PONG\r\n"),
        (ErrorReply("ERR bad\r\nthing"), b"-ERR bad  thing\r\n", b"-ERR bad  thing\r\n"),
        (42, b":42\r\n", b":42\r\n"),
        (True, b":1\r\n", b"#t\r\n"),
        (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
        (b"v", b"$1\r\nv\r\n", b"$1\r\nv\r\n"),
        ("é", b"$2\r\n\xc3\xa9\r\n", b"$2\r\n\xc3\xa9\r\n"),
        (None, b"$-1\r\n", b"_\r\n"),
        (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
        ([b"a", 1, None], b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n", b"*3\r\n$1\r\na\r\n:1\r\n_\r\n"),
        ({b"k": 1}, b"*2\r\n$1\r\nk\r\n:1\r\n", b"%1\r\n$1\r\nk\r\n:1\r\n"),
        ({b"m"}, b"*1\r\n$1\r\nm\r\n", b"~1\r\n$1\r\nm\r\n"),
        (Push([b"message", b"c", b"x"]), b"*3\r\n", b">3\r\n"),
    ],
)
def test_encoding_in_both_versions(value: object, resp2: bytes, resp3: bytes) -> None:
    assert encode(value, RESP2).startswith(resp2)
    assert encode(value, RESP3).startswith(resp3)


def test_doubles_print_as_redis_prints_them() -> None:
    assert format_double(3.0) == "3"
    assert format_double(0.1) == "0.1"
    assert format_double(float("inf")) == "inf"
    assert format_double(float("-inf")) == "-inf"


def test_unknown_reply_type_is_a_bug() -> None:
    with pytest.raises(TypeError):
        encode(object())


@pytest.mark.parametrize("proto", [RESP2, RESP3])
def test_reply_parser_reads_back_what_encode_writes(proto: int) -> None:
    values = [OK, 7, b"bulk", None, [b"a", [b"b", 2]], ErrorReply("ERR x"), 2.5]
    data = b"".join(encode(v, proto) for v in values)
    parser = ReplyParser()
    got = []
    for i in range(0, len(data), 3):
        got += parser.feed(data[i : i + 3])
    expected = [OK, 7, b"bulk", None, [b"a", [b"b", 2]], ErrorReply("ERR x")]
    assert got[:6] == expected
    assert got[6] == (2.5 if proto == RESP3 else b"2.5")


def test_reply_parser_maps_sets_and_pushes() -> None:
    parser = ReplyParser()
    data = encode({b"a": 1}, RESP3) + encode({b"x"}, RESP3) + encode(Push([b"m"]), RESP3)
    assert parser.feed(data) == [{b"a": 1}, {b"x"}, Push([b"m"])]


# -- glob patterns -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        (b"user:*", [b"user:", b"user:1"], [b"users", b"xuser:1"]),
        (b"h?llo", [b"hello", b"hallo"], [b"hllo", b"heello"]),
        (b"h[ae]llo", [b"hello", b"hallo"], [b"hillo"]),
        (b"h[^e]llo", [b"hallo"], [b"hello"]),
        (b"h[a-b]llo", [b"hallo", b"hbllo"], [b"hcllo"]),
        (b"a\\*b", [b"a*b"], [b"axb"]),
        (b"*", [b"", b"anything"], []),
    ],
)
def test_glob_patterns_match_as_redis(pattern: bytes, yes: list[bytes], no: list[bytes]) -> None:
    match = compile_glob(pattern)
    assert all(match(s) for s in yes)
    assert not any(match(s) for s in no)
