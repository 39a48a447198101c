"""JSON-lines protocol conformance against a real server: every command, every bad input.

The exact replies promised in PRODUCT.md are compared whole; docs/protocol.md is the
reference for the rest.
"""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest
from server_fixtures import Link, ServerProcess, free_port, start_server

MAX_LINE = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory, "--metrics-port", str(free_port()))
    yield proc
    assert proc.stop() == 0, proc.log()


@pytest.fixture
def link(server: ServerProcess) -> Iterator[Link]:
    conn = Link(server.port)
    yield conn
    conn.close()


def ok(reply: dict[str, object]) -> dict[str, object]:
    assert reply["status"] == "ok", reply
    return reply


def error(reply: dict[str, object], code: str | None = None, *words: str) -> str:
    assert reply["status"] == "error", reply
    assert isinstance(reply["message"], str) and reply["message"]
    if code is not None:
        assert reply["code"] == code, reply
    for word in words:
        assert word in reply["message"], reply
    return reply["message"]


# -- the promised forms --------------------------------------------------------------


def test_promised_replies_exactly(link: Link) -> None:
    assert link.call({"command": "put", "key": "mykey", "value": "myvalue"}) == {
        "status": "ok",
        "message": "Key-value pair stored",
    }
    assert link.call({"command": "get", "key": "mykey"}) == {"status": "ok", "value": "myvalue"}
    assert link.call(
        {"command": "batch_put", "keys": ["pr:k1", "pr:k2"], "values": ["v1", "v2"]}
    ) == {"status": "ok", "message": "2 key-value pairs stored"}
    assert link.call({"command": "get_range", "start_key": "pr:", "end_key": "pr:z"}) == {
        "status": "ok",
        "data": [["pr:k1", "v1"], ["pr:k2", "v2"]],
    }
    assert link.call({"command": "delete", "key": "mykey"}) == {
        "status": "ok",
        "message": "Key deleted",
    }


def test_missing_key_get_and_delete(link: Link) -> None:
    assert link.call({"command": "get", "key": "never-written"}) == {"status": "ok", "value": None}
    assert link.call({"command": "delete", "key": "never-written"}) == {
        "status": "ok",
        "message": "Key not found",
    }


def test_get_range_is_inclusive_sorted_and_limited(link: Link) -> None:
    ok(
        link.call(
            {
                "command": "batch_put",
                "keys": ["gr:c", "gr:a", "gr:b", "gr:d"],
                "values": ["3", "1", "2", "4"],
            }
        )
    )
    reply = ok(link.call({"command": "get_range", "start_key": "gr:a", "end_key": "gr:c"}))
    assert reply["data"] == [["gr:a", "1"], ["gr:b", "2"], ["gr:c", "3"]]
    reply = ok(
        link.call({"command": "get_range", "start_key": "gr:a", "end_key": "gr:z", "limit": 2})
    )
    assert reply["data"] == [["gr:a", "1"], ["gr:b", "2"]]
    assert (
        ok(link.call({"command": "get_range", "start_key": "gr:x", "end_key": "gr:a"}))["data"]
        == []
    )


# -- base64 --------------------------------------------------------------------------


def test_binary_values_come_back_as_base64(link: Link) -> None:
    raw = b"\xff\x00\xfe"
    ok(
        link.call(
            {
                "command": "put",
                "key": "bin",
                "value": base64.b64encode(raw).decode(),
                "encoding": "base64",
            }
        )
    )
    assert link.call({"command": "get", "key": "bin"}) == {
        "status": "ok",
        "value": base64.b64encode(raw).decode(),
        "encoding": "base64",
    }
    # Bytes that are valid UTF-8 come back as a plain string.
    ok(
        link.call(
            {
                "command": "put",
                "key": "bin2",
                "value": base64.b64encode(b"hi").decode(),
                "encoding": "base64",
            }
        )
    )
    assert link.call({"command": "get", "key": "bin2"}) == {"status": "ok", "value": "hi"}


def test_binary_keys_with_key_encoding(link: Link) -> None:
    key = base64.b64encode(b"\xf0bk\xff").decode()
    ok(link.call({"command": "put", "key": key, "key_encoding": "base64", "value": "v"}))
    assert ok(link.call({"command": "get", "key": key, "key_encoding": "base64"}))["value"] == "v"
    reply = ok(
        link.call(
            {
                "command": "get_range",
                "start_key": base64.b64encode(b"\xf0").decode(),
                "end_key": base64.b64encode(b"\xf1").decode(),
                "key_encoding": "base64",
            }
        )
    )
    assert reply == {"status": "ok", "data": [[key, "v"]], "key_encoding": "base64"}


def test_batch_put_base64_values(link: Link) -> None:
    values = [base64.b64encode(b"\x80").decode(), base64.b64encode(b"ok").decode()]
    ok(
        link.call(
            {
                "command": "batch_put",
                "keys": ["b64:1", "b64:2"],
                "values": values,
                "encoding": "base64",
            }
        )
    )
    reply = ok(link.call({"command": "get_range", "start_key": "b64:", "end_key": "b64:~"}))
    # One value is not UTF-8, so the whole value column is base64.
    assert reply == {
        "status": "ok",
        "data": [["b64:1", values[0]], ["b64:2", values[1]]],
        "encoding": "base64",
    }


@pytest.mark.parametrize(
    "request_, code",
    [
        ({"command": "put", "key": "x", "value": "%%%", "encoding": "base64"}, "invalid_argument"),
        ({"command": "put", "key": "x", "value": "v", "encoding": "rot13"}, "invalid_argument"),
        ({"command": "get", "key": "@@", "key_encoding": "base64"}, "invalid_argument"),
        (
            {"command": "batch_put", "keys": ["a"], "values": [1], "encoding": "base64"},
            "invalid_type",
        ),
    ],
)
def test_bad_base64_is_an_error(link: Link, request_: dict[str, object], code: str) -> None:
    error(link.call(request_), code)
    ok(link.call({"command": "ping"}))


# -- the other commands --------------------------------------------------------------


def test_ping_exists_ttl_expire(link: Link) -> None:
    assert link.call({"command": "ping"}) == {"status": "ok", "message": "PONG"}
    ok(link.call({"command": "put", "key": "t:1", "value": "v", "ttl": 100}))
    assert link.call({"command": "exists", "key": "t:1"}) == {"status": "ok", "exists": True}
    assert link.call({"command": "exists", "key": "t:none"}) == {"status": "ok", "exists": False}
    ttl = ok(link.call({"command": "ttl", "key": "t:1"}))["ttl"]
    assert isinstance(ttl, float) and 90 < ttl <= 100
    assert link.call({"command": "expire", "key": "t:1", "ttl": None}) == {
        "status": "ok",
        "updated": True,
    }
    assert link.call({"command": "ttl", "key": "t:1"}) == {"status": "ok", "ttl": None}
    assert link.call({"command": "expire", "key": "t:none", "ttl": 5}) == {
        "status": "ok",
        "updated": False,
    }
    error(link.call({"command": "ttl", "key": "t:none"}), "not_found")


def test_ttl_expires(link: Link) -> None:
    ok(link.call({"command": "put", "key": "t:short", "value": "v", "ttl": 0.2}))
    ok(link.call({"command": "expire", "key": "mykey-none", "ttl": 1}))
    time.sleep(0.3)
    assert ok(link.call({"command": "get", "key": "t:short"}))["value"] is None
    ok(link.call({"command": "batch_put", "keys": ["t:b"], "values": ["v"], "ttl": 0.2}))
    time.sleep(0.3)
    assert ok(link.call({"command": "exists", "key": "t:b"}))["exists"] is False


def test_scan_prefix_limit_and_cursor(link: Link) -> None:
    keys = [f"sc:{i:03d}" for i in range(25)]
    ok(link.call({"command": "batch_put", "keys": keys, "values": keys}))
    ok(link.call({"command": "put", "key": "sd:other", "value": "x"}))
    seen: list[str] = []
    request: dict[str, object] = {"command": "scan", "prefix": "sc:", "limit": 10}
    pages = 0
    while True:
        reply = ok(link.call(request))
        pages += 1
        seen += [k for k, _ in reply["data"]]
        if reply["cursor"] is None:
            break
        request["cursor"] = reply["cursor"]
    assert seen == keys and pages == 3
    reply = ok(link.call({"command": "scan", "start_key": "sc:020", "end_key": "sc:022"}))
    assert reply == {"status": "ok", "data": [[k, k] for k in keys[20:23]], "cursor": None}
    error(link.call({"command": "scan", "limit": 10_001}), "invalid_argument")
    error(link.call({"command": "scan", "limit": 0}), "invalid_argument")
    error(link.call({"command": "scan", "cursor": "!!"}), "invalid_argument", "cursor")


def test_namespaces_and_tables(link: Link) -> None:
    assert link.call({"command": "create_namespace", "namespace": "iti"}) == {
        "status": "ok",
        "message": "Created namespace: iti",
    }
    error(link.call({"command": "create_namespace", "namespace": "iti"}), "already_exists")
    assert "iti" in ok(link.call({"command": "list_namespaces"}))["namespaces"]
    assert link.call({"command": "create_table", "namespace": "iti", "table": "collab"}) == {
        "status": "ok",
        "message": "Created table: iti:collab",
    }
    assert ok(link.call({"command": "list_tables", "namespace": "iti"}))["tables"] == ["collab"]
    where = {"namespace": "iti", "table": "collab"}
    ok(link.call({"command": "put", "key": "c1", "value": "sief", **where}))
    assert ok(link.call({"command": "get", "key": "c1", **where}))["value"] == "sief"
    # The same key in the default table is another key.
    assert ok(link.call({"command": "get", "key": "c1"}))["value"] is None
    assert ok(link.call({"command": "count", **where}))["count"] == 1
    ok(link.call({"command": "flush", **where}))
    ok(link.call({"command": "compact", **where}))
    stats = ok(link.call({"command": "stats", **where}))["stats"]
    assert stats["table"] == "iti:collab" and stats["table_keys"] == 1
    error(
        link.call({"command": "get", "key": "c1", "namespace": "iti", "table": "nope"}),
        "not_found",
        "iti:nope",
    )
    error(link.call({"command": "put", "key": "k", "value": "v", "namespace": "nope"}), "not_found")
    error(link.call({"command": "list_tables", "namespace": "nope"}), "not_found")
    ok(link.call({"command": "drop_table", "namespace": "iti", "table": "collab"}))
    error(link.call({"command": "get", "key": "c1", **where}), "not_found")
    ok(link.call({"command": "drop_namespace", "namespace": "iti"}))
    assert "iti" not in ok(link.call({"command": "list_namespaces"}))["namespaces"]
    error(link.call({"command": "drop_namespace", "namespace": "default"}), "invalid_argument")
    error(link.call({"command": "create_table", "table": "bad:name"}), "invalid_argument")


def test_count_flush_compact_stats_on_default_table(link: Link) -> None:
    assert isinstance(ok(link.call({"command": "count"}))["count"], int)
    assert ok(link.call({"command": "flush"})) == {"status": "ok", "message": "Flushed to disk"}
    assert ok(link.call({"command": "compact"})) == {"status": "ok", "message": "Compacted"}
    stats = ok(link.call({"command": "stats"}))["stats"]
    assert stats["server"]["requests_total"] > 0
    assert stats["server"]["connections_current"] >= 1


def test_request_ids_are_echoed_and_pipelining_keeps_order(link: Link) -> None:
    lines = b"".join(
        json.dumps({"command": "put", "key": f"pipe:{i}", "value": str(i), "id": i}).encode()
        + b"\n"
        for i in range(200)
    )
    lines += b"".join(
        json.dumps({"command": "get", "key": f"pipe:{i}", "id": f"g{i}"}).encode() + b"\n"
        for i in range(200)
    )
    link.send(lines)
    for i in range(200):
        assert link.recv() == {"status": "ok", "message": "Key-value pair stored", "id": i}
    for i in range(200):
        assert link.recv() == {"status": "ok", "value": str(i), "id": f"g{i}"}
    reply = link.call({"command": "nope", "id": 5})
    error(reply, "protocol")
    assert reply["id"] == 5


# -- bad input: answered, connection kept ---------------------------------------------


BAD_REQUESTS = [
    (b"not json\n", "protocol", "not valid JSON"),
    (b'{"command": "put", \n', "protocol", "not valid JSON"),
    (b"[1, 2]\n", "protocol", "JSON object"),
    (b'"ping"\n', "protocol", "JSON object"),
    (b"42\n", "protocol", "JSON object"),
    (b"null\n", "protocol", "JSON object"),
    (b"{}\n", "protocol", "command"),
    (b'{"command": 7}\n', "protocol", "command"),
    (b'{"command": "frobnicate"}\n', "protocol", "unknown command"),
    (b'{"command": "put", "key": "k"}\n', "protocol", "value"),
    (b'{"command": "get"}\n', "protocol", "key"),
    (b'{"command": "get", "key": "k", "colour": 1}\n', "protocol", "unknown field"),
    (b'{"command": "put", "key": 1, "value": "v"}\n', "invalid_type", "key"),
    (b'{"command": "put", "key": "k", "value": {"a": 1}}\n', "invalid_type", "value"),
    (b'{"command": "put", "key": "k", "value": null}\n', "invalid_type", "value"),
    (b'{"command": "put", "key": "k", "value": "v", "ttl": "10"}\n', "invalid_type", "ttl"),
    (b'{"command": "put", "key": "k", "value": "v", "ttl": -1}\n', "invalid_argument", "ttl"),
    (b'{"command": "put", "key": "k", "value": "v", "ttl": true}\n', "invalid_type", "ttl"),
    (b'{"command": "put", "key": "", "value": "v"}\n', "invalid_argument", "empty"),
    (b'{"command": "put", "key": "k", "value": "v", "table": 3}\n', "invalid_type", "table"),
    (
        b'{"command": "batch_put", "keys": ["a", "b"], "values": ["1"]}\n',
        "invalid_argument",
        "values",
    ),
    (b'{"command": "batch_put", "keys": "ab", "values": "12"}\n', "invalid_type", "keys"),
    (b'{"command": "batch_put", "keys": ["a", 2], "values": ["1", "2"]}\n', "invalid_type", "keys"),
    (b'{"command": "get_range", "start_key": "a"}\n', "protocol", "end_key"),
    (
        b'{"command": "get_range", "start_key": "a", "end_key": "b", "limit": -1}\n',
        "invalid_type",
        "limit",
    ),
    (b'{"command": "expire", "key": "k"}\n', "protocol", "ttl"),
    (b'{"command": "auth", "password": "x"}\n', "invalid_argument", "password"),
    (b'{"command": "ping", "id": [1]}\n', "protocol", "id"),
    (b"\xff\xfe{\n", "protocol", "UTF-8"),
    (b'{"command": "put", "key": "\xff", "value": "v"}\n', "protocol", "UTF-8"),
    (b'{"command": "put", "key": "\\ud800", "value": "v"}\n', "protocol", None),
    (b'{"command": "ping"} trailing\n', "protocol", "JSON"),
]


@pytest.mark.parametrize("line, code, word", BAD_REQUESTS)
def test_bad_request_gets_an_error_and_connection_stays(
    link: Link, line: bytes, code: str, word: str | None
) -> None:
    link.send(b'{"command": "ping"}\n')  # the first byte picks JSON lines
    ok(link.recv())
    error(link.call(line), code, *([word] if word else []))
    assert link.call({"command": "ping"}) == {"status": "ok", "message": "PONG"}


def test_nothing_written_by_a_failed_batch(link: Link) -> None:
    error(
        link.call({"command": "batch_put", "keys": ["fb:1", ""], "values": ["1", "2"]}),
        "invalid_argument",
    )
    assert ok(link.call({"command": "get", "key": "fb:1"}))["value"] is None


def test_blank_lines_and_crlf(link: Link) -> None:
    link.send(b'{"command": "ping"}\r\n\n   \n{"command": "put", "key": "crlf", "value": "v"}\r\n')
    assert link.recv() == {"status": "ok", "message": "PONG"}
    assert link.recv() == {"status": "ok", "message": "Key-value pair stored"}
    assert ok(link.call({"command": "get", "key": "crlf"}))["value"] == "v"


def test_request_split_across_packets(link: Link) -> None:
    data = b'{"command": "put", "key": "split", "value": "' + b"x" * 200_000 + b'"}\n'
    for i in range(0, len(data), 7_001):
        link.send(data[i : i + 7_001])
    ok(link.recv())
    assert ok(link.call({"command": "get", "key": "split"}))["value"] == "x" * 200_000


def test_last_line_without_newline_at_eof(server: ServerProcess) -> None:
    conn = Link(server.port)
    conn.send(b'{"command": "put", "key": "eof", "value": "v"}')
    conn.sock.shutdown(socket.SHUT_WR)
    assert conn.recv() == {"status": "ok", "message": "Key-value pair stored"}
    assert conn.closed_by_server()
    conn.close()


def test_oversized_line_is_answered_then_closed(server: ServerProcess) -> None:
    conn = Link(server.port, timeout=30)
    conn.send(b'{"command": "ping"}\n')
    ok(conn.recv())
    chunk = b'{"command": "put", "key": "big", "value": "' + b"x" * (1 << 20)
    conn.send(chunk)
    try:
        for _ in range(MAX_LINE >> 20):
            conn.send(b"x" * (1 << 20))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close before it has read everything
    error(conn.recv(), "protocol", "longer than")
    assert conn.closed_by_server()
    conn.close()
    other = Link(server.port)
    assert other.call({"command": "ping"})["status"] == "ok"
    other.close()


def test_non_json_first_byte_speaks_resp(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert sock.recv(4096) == b"+PONG\r\n"


def test_metrics_endpoint(server: ServerProcess, link: Link) -> None:
    ok(link.call({"command": "ping"}))
    metrics_port = int(server.args[server.args.index("--metrics-port") + 1])
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        body = resp.read().decode()
    assert 'shaledb_requests_total{command="ping"}' in body
    assert "shaledb_connections " in body
