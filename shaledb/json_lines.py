"""JSON lines: the codec of requests and replies, shared by the server and the client.

Spec: docs/protocol.md. One request per line, one reply per line, in order; a line
is a JSON object terminated by ``\\n``. Keys and values travel as JSON strings; bytes
that are not UTF-8 travel as base64, flagged by ``"encoding": "base64"`` (values) or
``"key_encoding": "base64"`` (keys) in the same object.

Pure: encoding and decoding only, no I/O and no command execution. The server side
(:mod:`shaledb.server.json_protocol`: framing, answering a line) decodes with
:func:`parse_object` and :func:`decode_fields` and encodes with :func:`encode_reply`
and :func:`encode_error`; the client (:mod:`shaledb.client`) encodes with
:func:`encode_request` and decodes with :func:`decode_reply`, :func:`reply_value` and
:func:`reply_pairs`. This module lives outside :mod:`shaledb.server` so that the
client loads nothing of the server.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import orjson

from shaledb.errors import InvalidArgumentError, InvalidTypeError, ProtocolError, error_code

#: The encoding flag's one non-default value.
BASE64 = "base64"
#: Encoding names that mean "the JSON string itself", accepted for symmetry.
_PLAIN = frozenset({"utf-8", "utf8"})

#: Request fields holding one key / a list of keys (``key_encoding`` applies).
KEY_FIELDS = ("key", "start_key", "end_key", "prefix")
KEY_LIST_FIELDS = ("keys",)
#: Request fields holding one value / a list of values (``encoding`` applies).
VALUE_FIELDS = ("value",)
VALUE_LIST_FIELDS = ("values",)

_DUMP_OPTIONS = orjson.OPT_APPEND_NEWLINE


# -- decoding requests (the server) ----------------------------------------------------


def parse_object(line: bytes) -> dict[str, Any]:
    """The JSON object on ``line``. Raises ProtocolError when it is anything else."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise ProtocolError(
                f"request is not valid UTF-8 (byte {bad.start}); send JSON text"
            ) from None
        raise ProtocolError(f"request is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(
            f'request must be a JSON object like {{"command": "ping"}}; '
            f"got a JSON {type(obj).__name__}"
        )
    return obj


def pop_request_id(obj: dict[str, Any]) -> str | int | None:
    """Pop the optional ``"id"`` field (echoed in the reply). Raises ProtocolError if bad."""
    request_id = obj.pop("id", None)
    if request_id is not None and not isinstance(request_id, (str, int)):
        raise ProtocolError("field 'id' must be a string or an integer")
    return request_id


def _b64(text: object, field: str) -> bytes:
    if not isinstance(text, str):
        raise InvalidTypeError(f"field '{field}' must be a string; got {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgumentError(f"field '{field}' is not valid base64") from None


def _encoding_flag(obj: dict[str, Any], flag: str) -> bool:
    """Pop ``flag`` from ``obj``; True when it says base64."""
    if flag not in obj:
        return False
    encoding = obj.pop(flag)
    if encoding == BASE64:
        return True
    if isinstance(encoding, str) and encoding.lower() in _PLAIN:
        return False
    raise InvalidArgumentError(f'field \'{flag}\' must be "base64" or "utf-8"; got {encoding!r}')


def decode_fields(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The command name and its arguments, with base64 keys and values decoded to bytes.

    ``obj`` is consumed (fields are popped from it).
    """
    if "command" not in obj:
        raise ProtocolError('request needs a \'command\' field, as in {"command": "ping"}')
    command = obj.pop("command")
    if not isinstance(command, str):
        raise ProtocolError(f"field 'command' must be a string; got {type(command).__name__}")
    if _encoding_flag(obj, "key_encoding"):
        _decode_base64(obj, KEY_FIELDS, KEY_LIST_FIELDS)
    if _encoding_flag(obj, "encoding"):
        _decode_base64(obj, VALUE_FIELDS, VALUE_LIST_FIELDS)
    return command, obj


def _decode_base64(obj: dict[str, Any], single: Sequence[str], lists: Sequence[str]) -> None:
    for field in single:
        if field in obj and obj[field] is not None:
            obj[field] = _b64(obj[field], field)
    for field in lists:
        if field in obj:
            items = obj[field]
            if not isinstance(items, list):
                raise InvalidTypeError(f"field '{field}' must be a list of strings")
            obj[field] = [_b64(item, field) for item in items]


# -- encoding replies (the server) -----------------------------------------------------


def encode_error(exc: BaseException, request_id: Any = None, code: str | None = None) -> bytes:
    """``{"status": "error", "message": ..., "code": ...}`` as a line."""
    reply: dict[str, Any] = {
        "status": "error",
        "message": str(exc) or type(exc).__name__,
        "code": code or error_code(exc),
    }
    if request_id is not None:
        reply["id"] = request_id
    return orjson.dumps(reply, option=_DUMP_OPTIONS)


def _text(data: str | bytes) -> str | None:
    """``data`` as a str, or None when it is bytes that are not UTF-8."""
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _texts(items: list[str | bytes]) -> tuple[list[str], bool]:
    """The items as JSON strings, and whether they had to be base64 (then all are)."""
    texts = [_text(item) for item in items]
    if all(t is not None for t in texts):
        return texts, False  # type: ignore[return-value]
    return [base64.b64encode(_raw(item)).decode("ascii") for item in items], True


def _raw(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def encode_reply(reply: dict[str, Any], request_id: Any = None) -> bytes:
    """``{"status": "ok", ...reply}`` as a line, stored data made JSON-safe.

    ``"value"`` that is not UTF-8 becomes base64 with ``"encoding": "base64"``;
    in ``"data"`` pairs, keys and values are judged as two groups, each all plain or
    all base64 (flagged ``"key_encoding"`` / ``"encoding"``).
    """
    out: dict[str, Any] = {"status": "ok"}
    for field, item in reply.items():
        if field == "value" and isinstance(item, bytes):
            text = _text(item)
            if text is None:
                out["value"] = base64.b64encode(item).decode("ascii")
                out["encoding"] = BASE64
            else:
                out["value"] = text
        elif field == "data":
            keys, key_b64 = _texts([k for k, _ in item])
            values, value_b64 = _texts([v for _, v in item])
            out["data"] = [[k, v] for k, v in zip(keys, values, strict=True)]
            if key_b64:
                out["key_encoding"] = BASE64
            if value_b64:
                out["encoding"] = BASE64
        else:
            out[field] = item
    if request_id is not None:
        out["id"] = request_id
    return orjson.dumps(out, option=_DUMP_OPTIONS)


# -- encoding requests, decoding replies (the client) ----------------------------------


def encode_request(command: str, fields: dict[str, Any]) -> bytes:
    """A request line. str keys and values go as they are; bytes go as base64.

    If any key field holds bytes, every key field is sent as base64 (one flag covers
    them all); the same for values.
    """
    obj: dict[str, Any] = {"command": command}
    obj.update(fields)
    if _any_bytes(obj, KEY_FIELDS, KEY_LIST_FIELDS):
        _encode_base64(obj, KEY_FIELDS, KEY_LIST_FIELDS)
        obj["key_encoding"] = BASE64
    if _any_bytes(obj, VALUE_FIELDS, VALUE_LIST_FIELDS):
        _encode_base64(obj, VALUE_FIELDS, VALUE_LIST_FIELDS)
        obj["encoding"] = BASE64
    try:
        return orjson.dumps(obj, option=_DUMP_OPTIONS)
    except TypeError as exc:
        raise InvalidTypeError(f"cannot send {command}: {exc}") from None


def _any_bytes(obj: dict[str, Any], single: Sequence[str], lists: Sequence[str]) -> bool:
    if any(isinstance(obj.get(f), (bytes, bytearray, memoryview)) for f in single):
        return True
    return any(
        isinstance(obj.get(f), list)
        and any(isinstance(x, (bytes, bytearray, memoryview)) for x in obj[f])
        for f in lists
    )


def _b64_text(data: object) -> object:
    if isinstance(data, str):
        return base64.b64encode(data.encode("utf-8")).decode("ascii")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(data)).decode("ascii")
    return data  # a wrong type: let the server name it


def _encode_base64(obj: dict[str, Any], single: Sequence[str], lists: Sequence[str]) -> None:
    for field in single:
        if obj.get(field) is not None:
            obj[field] = _b64_text(obj[field])
    for field in lists:
        if isinstance(obj.get(field), list):
            obj[field] = [_b64_text(x) for x in obj[field]]


def decode_reply(line: bytes) -> dict[str, Any]:
    """The reply object on ``line``. Raises ProtocolError when it is not one."""
    try:
        reply = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"server sent a line that is not JSON: {exc}") from None
    if not isinstance(reply, dict) or reply.get("status") not in ("ok", "error"):
        raise ProtocolError(f"server sent something that is not a reply: {line[:200]!r}")
    return reply


def _from_wire(text: Any, base64_flag: bool) -> str | bytes:
    if not isinstance(text, str):
        raise ProtocolError(f"server sent a non-string key or value: {text!r}")
    if not base64_flag:
        return text
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("server sent invalid base64") from None


def reply_value(reply: dict[str, Any]) -> str | bytes | None:
    """The ``"value"`` of a reply: str, bytes (it came as base64) or None."""
    value = reply.get("value")
    if value is None:
        return None
    return _from_wire(value, reply.get("encoding") == BASE64)


def reply_pairs(reply: dict[str, Any]) -> list[tuple[str | bytes, str | bytes]]:
    """The ``"data"`` pairs of a reply, base64 decoded where flagged."""
    key_b64 = reply.get("key_encoding") == BASE64
    value_b64 = reply.get("encoding") == BASE64
    data = reply.get("data")
    if not isinstance(data, list):
        raise ProtocolError("server reply has no 'data' list")
    try:
        return [(_from_wire(k, key_b64), _from_wire(v, value_b64)) for k, v in data]
    except (TypeError, ValueError):
        raise ProtocolError("server sent a 'data' item that is not a [key, value] pair") from None
