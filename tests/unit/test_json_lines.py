"""The JSON-lines codec (shaledb.json_lines): both directions, no server, no socket."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from shaledb.errors import InvalidArgumentError, InvalidTypeError, NotFoundError, ProtocolError
from shaledb.json_lines import (
    decode_fields,
    decode_reply,
    encode_error,
    encode_reply,
    encode_request,
    parse_object,
    pop_request_id,
    reply_pairs,
    reply_value,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def server_side(line: bytes) -> tuple[Any, str, dict[str, Any]]:
    """What the server decodes from a request line: (id, command, args)."""
    obj = parse_object(line)
    request_id = pop_request_id(obj)
    command, args = decode_fields(obj)
    return request_id, command, args


def test_a_str_request_travels_as_plain_json() -> None:
    line = encode_request("put", {"key": "k", "value": "v", "ttl": 5})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert orjson.loads(line) == {"command": "put", "key": "k", "value": "v", "ttl": 5}
    assert server_side(line) == (None, "put", {"key": "k", "value": "v", "ttl": 5})


def test_bytes_travel_as_base64_and_come_back_as_bytes() -> None:
    line = encode_request("batch_put", {"keys": [b"\xff", "a"], "values": ["x", "y"]})
    obj = orjson.loads(line)
    assert obj["key_encoding"] == "base64" and "encoding" not in obj
    assert obj["keys"] == [b64(b"\xff"), b64(b"a")]
    _, command, args = server_side(line)
    assert command == "batch_put"
    assert args == {"keys": [b"\xff", b"a"], "values": ["x", "y"]}


def test_request_ids_are_echoed_and_checked() -> None:
    line = b'{"command": "ping", "id": 7}'
    assert server_side(line)[0] == 7
    assert encode_reply({"message": "PONG"}, 7) == b'{"status":"ok","message":"PONG","id":7}\n'
    with pytest.raises(ProtocolError, match="'id'"):
        server_side(b'{"command": "ping", "id": [1]}')


@pytest.mark.parametrize(
    ("line", "error", "words"),
    [
        (b"not json", ProtocolError, "not valid JSON"),
        (b"\xff\xfe", ProtocolError, "not valid UTF-8"),
        (b"[1, 2]", ProtocolError, "JSON object"),
        (b'{"key": "k"}', ProtocolError, "'command'"),
        (b'{"command": 5}', ProtocolError, "'command' must be a string"),
        (
            b'{"command": "get", "key": "!!", "key_encoding": "base64"}',
            InvalidArgumentError,
            "base64",
        ),
        (b'{"command": "get", "key": 5, "key_encoding": "base64"}', InvalidTypeError, "string"),
        (b'{"command": "get", "key": "k", "key_encoding": "rot13"}', InvalidArgumentError, "rot13"),
        (
            b'{"command": "batch_put", "keys": "k", "key_encoding": "base64"}',
            InvalidTypeError,
            "list",
        ),
    ],
)
def test_bad_requests_raise_shaledb_errors(line: bytes, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        server_side(line)


def test_replies_make_stored_bytes_json_safe() -> None:
    assert orjson.loads(encode_reply({"value": b"\xff"})) == {
        "status": "ok",
        "value": b64(b"\xff"),
        "encoding": "base64",
    }
    assert orjson.loads(encode_reply({"value": b"text"})) == {"status": "ok", "value": "text"}
    pairs = orjson.loads(encode_reply({"data": [("a", b"\x00\xff"), (b"b", "y")]}))
    assert pairs == {
        "status": "ok",
        "data": [["a", b64(b"\x00\xff")], ["b", b64(b"y")]],
        "encoding": "base64",
    }


def test_the_client_decodes_what_the_server_encodes() -> None:
    reply = decode_reply(encode_reply({"value": b"\xff"}))
    assert reply_value(reply) == b"\xff"
    assert reply_value(decode_reply(encode_reply({"value": None}))) is None
    data = [(b"\xfe", "v"), (b"k", "\u00e9")]
    assert reply_pairs(decode_reply(encode_reply({"data": data}))) == [(b"\xfe", "v"), (b"k", "é")]


def test_error_replies_carry_the_code_of_the_error_table() -> None:
    reply = orjson.loads(encode_error(NotFoundError("table x:y does not exist"), "r1"))
    assert reply == {
        "status": "error",
        "message": "table x:y does not exist",
        "code": "not_found",
        "id": "r1",
    }
    assert orjson.loads(encode_error(RuntimeError(), code="internal"))["message"] == "RuntimeError"


@pytest.mark.parametrize(
    "line",
    [b"nope\n", b"[]\n", b'{"status": "maybe"}\n', b'{"value": 1}\n'],
)
def test_the_client_refuses_what_is_not_a_reply(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_reply(line)


def test_reply_parts_that_are_not_data_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        reply_value({"status": "ok", "value": 5})
    with pytest.raises(ProtocolError):
        reply_value({"status": "ok", "value": "!!", "encoding": "base64"})
    with pytest.raises(ProtocolError):
        reply_pairs({"status": "ok"})
    with pytest.raises(ProtocolError):
        reply_pairs({"status": "ok", "data": [["only one"]]})


def test_a_request_that_json_cannot_hold_is_an_invalid_type() -> None:
    with pytest.raises(InvalidTypeError, match="cannot send put"):
        encode_request("put", {"key": "k", "value": object()})
