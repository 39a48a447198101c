"""JSON-lines writes tell RESP's WATCH registry and expiry sweep, as RESP writes do
(shaledb.server.commands ``on_write``, RespState.json_wrote)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import shaledb
from shaledb.server.commands import Commands
from shaledb.server.resp_session import RespConfig, RespSession, RespState
from shaledb.server.resp_store import table_ref


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[Any, RespState, Any]]:
    db = shaledb.open(str(tmp_path / "db"))
    state = RespState(db, None, RespConfig(max_frame_bytes=1 << 20))
    session = Commands(db, on_write=state.json_wrote).session()
    yield db, state, session
    db.close()


def watching(state: RespState, key: bytes) -> RespSession:
    watcher = state.new_session()
    state.watches.watch(watcher, (table_ref(state.db.default_table), key), None)
    return watcher


@pytest.mark.parametrize(
    "request_",
    [
        {"command": "put", "key": "k", "value": "same"},
        {"command": "batch_put", "keys": ["a", "k"], "values": ["1", "same"]},
        {"command": "expire", "key": "k", "ttl": 100},
        {"command": "delete", "key": "k"},
    ],
)
def test_a_json_write_marks_the_sessions_watching_its_key(
    parts: tuple[Any, RespState, Any], request_: dict[str, Any]
) -> None:
    db, state, session = parts
    db.put("k", "same")
    watcher, other = watching(state, b"k"), watching(state, b"other")
    args = {name: value for name, value in request_.items() if name != "command"}
    session.execute(request_["command"], args)
    # Even a write of the very value there: WATCH is exact, as for RESP writes.
    assert watcher.dirty and not other.dirty


def test_a_json_delete_of_a_missing_key_marks_nobody(parts: tuple[Any, RespState, Any]) -> None:
    _, state, session = parts
    watcher = watching(state, b"gone")
    session.execute("delete", {"key": "gone"})
    assert not watcher.dirty


def test_keys_given_a_ttl_over_json_are_swept(parts: tuple[Any, RespState, Any]) -> None:
    db, state, session = parts
    session.execute("put", {"key": "short", "value": "v", "ttl": 0.05})
    session.execute("batch_put", {"keys": ["b1", "b2"], "values": ["1", "2"], "ttl": 0.05})
    session.execute("put", {"key": "kept", "value": "v", "ttl": 100})
    assert state.expiry.pending()[("default", "default")] == 4
    time.sleep(0.1)
    assert state.expiry.sweep() == 3  # tombstones written for the three expired keys
    assert state.expiry.pending()[("default", "default")] == 1
    assert db.get("kept") == "v" and db.get("short") is None
