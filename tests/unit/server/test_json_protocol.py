"""The server side of JSON lines (framing, answering a line) without a live server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

import shaledb
from shaledb.engine.memory import MemoryEngine
from shaledb.server.commands import Commands, Session
from shaledb.server.json_protocol import LineFramer, line_too_long, respond


@pytest.fixture
def session() -> Iterator[Session]:
    db = shaledb.DB.over(MemoryEngine())
    yield Commands(db).session()
    db.close()


def ask(session: Session, request: dict[str, Any] | bytes) -> dict[str, Any]:
    line = request if isinstance(request, bytes) else orjson.dumps(request)
    reply = respond(session, line)
    assert reply.endswith(b"\n") and reply.count(b"\n") == 1
    result: dict[str, Any] = orjson.loads(reply)
    return result


# -- framing ---------------------------------------------------------------------------


def test_lines_are_cut_at_newlines_and_the_tail_is_kept() -> None:
    framer = LineFramer(max_line=100)
    assert framer.feed(b'{"a": 1}\n{"b"') == ([b'{"a": 1}'], False)
    assert framer.feed(b": 2}\r\n\n") == ([b'{"b": 2}\r', b""], False)
    assert framer.feed(b"partial") == ([], False)
    assert framer.finish() == b"partial"
    assert framer.finish() == b""


def test_a_line_over_the_limit_is_reported_after_the_lines_before_it() -> None:
    framer = LineFramer(max_line=10)
    assert framer.feed(b"short\n" + b"x" * 12 + b"\nnext\n") == ([b"short"], True)
    # A line may also grow too long across reads, before its newline arrives.
    framer = LineFramer(max_line=10)
    assert framer.feed(b"x" * 8) == ([], False)
    assert framer.feed(b"x" * 8) == ([], True)
    # The limit is inclusive, and a '\r' before the '\n' does not count against it.
    assert LineFramer(max_line=10).feed(b"y" * 10 + b"\r\n") == ([b"y" * 10 + b"\r"], False)
    reply = orjson.loads(line_too_long(10))
    assert reply["code"] == "protocol" and "longer than 10 bytes" in reply["message"]


# -- answering -------------------------------------------------------------------------


def test_a_blank_line_gets_no_reply(session: Session) -> None:
    assert respond(session, b"") == b"" and respond(session, b"  \r") == b""


def test_requests_are_answered_with_their_id(session: Session) -> None:
    assert ask(session, {"command": "put", "key": "k", "value": "v", "id": "a"}) == {
        "status": "ok",
        "message": "Key-value pair stored",
        "id": "a",
    }
    assert ask(session, {"command": "get", "key": "k"}) == {"status": "ok", "value": "v"}


def test_bad_requests_are_error_replies_and_counted_invalid(session: Session) -> None:
    seen: list[tuple[str, bool]] = []
    session.commands.record = lambda command, ok: seen.append((command, ok))
    assert ask(session, b"{nope")["code"] == "protocol"
    assert ask(session, {"command": "nope"})["code"] == "protocol"
    reply = ask(session, {"command": "get", "key": 5, "id": 3})
    assert reply["code"] == "invalid_type" and reply["id"] == 3
    assert seen == [("invalid", False), ("unknown", False), ("get", False)]


@pytest.mark.parametrize("ttl", [1e300, 2**62, 1e19])
def test_a_ttl_beyond_the_expiry_range_is_an_invalid_argument(session: Session, ttl: float) -> None:
    # It used to overflow the 64-bit expiry field: "internal server error".
    for request in (
        {"command": "put", "key": "k", "value": "v", "ttl": ttl},
        {"command": "batch_put", "keys": ["k"], "values": ["v"], "ttl": ttl},
    ):
        reply = ask(session, request)
        assert reply["code"] == "invalid_argument", reply
        assert "at most 9223372036854775" in reply["message"]
    ask(session, {"command": "put", "key": "k", "value": "v"})
    reply = ask(session, {"command": "expire", "key": "k", "ttl": ttl})
    assert reply["code"] == "invalid_argument", reply
    assert ask(session, {"command": "ttl", "key": "k"}) == {"status": "ok", "ttl": None}


def test_a_huge_range_limit_is_no_error(session: Session) -> None:
    ask(session, {"command": "put", "key": "k", "value": "v"})
    reply = ask(
        session, {"command": "get_range", "start_key": "a", "end_key": "z", "limit": 2**64 - 1}
    )
    assert reply == {"status": "ok", "data": [["k", "v"]]}


def test_an_unexpected_exception_is_an_internal_error_reply(session: Session) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    session.db.default_table.get = broken  # type: ignore[method-assign, assignment]
    reply = ask(session, {"command": "get", "key": "k", "id": 1})
    assert reply["code"] == "internal" and reply["id"] == 1
    assert "RuntimeError: a bug" in reply["message"]
