"""Fuzzing the JSON-lines path: random bytes and mutated requests into the framer, the
codec and the server's answer to a line, over a real (in-memory) database.

Whatever arrives, a line gets exactly one JSON reply line (an error has status "error"),
nothing but a ShaleDB error escapes the codec, and the database keeps every earlier
write. Modest example counts here; more behind ``slow``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shaledb
from shaledb.engine.memory import MemoryEngine
from shaledb.errors import ShaleDBError
from shaledb.json_lines import decode_fields, decode_reply, parse_object
from shaledb.server.commands import Commands, Session
from shaledb.server.json_protocol import LineFramer, respond

FAST = settings(
    max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SLOW = settings(max_examples=3000, deadline=2000)

COMMANDS = ["put", "get", "delete", "get_range", "batch_put", "scan", "ping", "exists", "ttl"]
JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
REQUEST = st.fixed_dictionaries(
    {"command": st.sampled_from(COMMANDS) | st.text(max_size=8)},
    optional={
        "key": JSON_VALUE,
        "value": JSON_VALUE,
        "keys": JSON_VALUE,
        "values": JSON_VALUE,
        "start_key": JSON_VALUE,
        "end_key": JSON_VALUE,
        "ttl": JSON_VALUE,
        "limit": JSON_VALUE,
        "encoding": JSON_VALUE,
        "id": JSON_VALUE,
    },
)


@pytest.fixture
def session() -> Iterator[Session]:
    db = shaledb.DB.over(MemoryEngine())
    db.put("kept", "before")
    yield Commands(db).session()
    db.close()


def answer(session: Session, line: bytes) -> dict[str, object]:
    reply = respond(session, line)
    if not line.strip():
        assert reply == b""  # a blank line is skipped, as the protocol says
        return {"status": "ok"}
    assert reply.endswith(b"\n") and reply.count(b"\n") == 1
    decoded = orjson.loads(reply)
    assert isinstance(decoded, dict) and decoded.get("status") in ("ok", "error")
    return decoded


def still_kept(session: Session) -> None:
    reply = answer(session, orjson.dumps({"command": "get", "key": "kept"}))
    # Only a fuzzed request that itself overwrote or deleted the key may change it.
    assert reply["status"] == "ok"


@FAST
@given(st.binary(max_size=512))
def test_random_bytes_get_one_reply_line(session: Session, line: bytes) -> None:
    answer(session, line.replace(b"\n", b" "))
    still_kept(session)


@FAST
@given(REQUEST)
def test_random_requests_get_one_reply_line(session: Session, request: dict[str, object]) -> None:
    if request.get("key") == "kept" or request.get("keys"):
        request["key"] = "other"
        request.pop("keys", None)
    answer(session, orjson.dumps(request))
    still_kept(session)


@FAST
@given(st.binary(max_size=256))
def test_the_codec_raises_only_shaledb_errors(data: bytes) -> None:
    for decode in (parse_object, decode_reply):
        try:
            obj = decode(data)
        except ShaleDBError:
            continue
        assert isinstance(obj, dict)
    with contextlib.suppress(ShaleDBError):
        decode_fields(parse_object(data))


@FAST
@given(st.lists(st.binary(max_size=64), max_size=20), st.integers(1, 80))
def test_the_framer_cuts_only_at_newlines(chunks: list[bytes], max_line: int) -> None:
    framer = LineFramer(max_line=max_line)
    lines: list[bytes] = []
    overflowed = False
    for chunk in chunks:
        got, over = framer.feed(chunk)
        lines.extend(got)
        overflowed = overflowed or over
        if over:
            break
    if not overflowed:
        whole = b"".join(chunks)
        assert b"\n".join([*lines, framer.finish()]) == whole
        # max_line + 1: a "\r" before the "\n" is allowed beyond the limit.
        assert all(len(line) <= max_line + 1 for line in lines)


@pytest.mark.slow
@SLOW
@given(st.binary(max_size=2048))
def test_random_bytes_at_length(line: bytes) -> None:
    db = shaledb.DB.over(MemoryEngine())
    try:
        answer(Commands(db).session(), line.replace(b"\n", b" "))
    finally:
        db.close()
