"""KVClient against a real server: the promised usage, types, errors, reconnects, db-like API."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_fixtures import ServerProcess, free_port, start_server

import shaledb
from shaledb import KVClient
from shaledb.client import RemoteNamespace, RemoteTable
from shaledb.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ClosedError,
    ConnectionFailedError,
    InvalidArgumentError,
    InvalidTypeError,
    NotFoundError,
    ShaleDBError,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory)
    yield proc
    assert proc.stop() == 0, proc.log()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[KVClient]:
    with KVClient(host="localhost", port=server.port) as kv:
        yield kv


def test_promised_usage(server: ServerProcess) -> None:
    keys, values = ["user:1001", "user:1002"], ["Jane", "Joe"]
    with KVClient(host="localhost", port=server.port) as client:
        client.put("user:1000", "John Doe")
        assert client.get("user:1000") == "John Doe"
        client.batch_put(keys, values)
        assert client.get_range("user:1000", "user:1002") == [
            ("user:1000", "John Doe"),
            ("user:1001", "Jane"),
            ("user:1002", "Joe"),
        ]
        assert client.get_range("a", "z")[:1] == [("user:1000", "John Doe")]
        assert client.delete("user:1000") is True
        assert client.delete("user:1000") is False
        assert client.get("user:1000") is None
    assert shaledb.KVClient is KVClient


def test_bytes_round_trip(client: KVClient) -> None:
    client.put(b"\xff\x00key", b"\x00\x01\xfe")
    assert client.get(b"\xff\x00key") == b"\x00\x01\xfe"
    client.put("text-as-bytes", b"plain")
    assert client.get("text-as-bytes") == "plain"  # UTF-8 bytes come back as str
    client.batch_put([b"\xfe1", b"\xfe2"], [b"\x80", "x"])
    assert client.get_range(b"\xfe", b"\xfe\xff") == [(b"\xfe1", b"\x80"), (b"\xfe2", b"x")]
    assert client.get("missing", default="dflt") == "dflt"
    big = "é" * 500_000
    client.put("big", big)
    assert client.get("big") == big


def test_other_commands(client: KVClient) -> None:
    assert client.ping() is True
    client.put("tk", "v", ttl=50)
    assert client.exists("tk") and not client.exists("tk-none")
    ttl = client.ttl("tk")
    assert ttl is not None and 40 < ttl <= 50
    assert client.expire("tk", None) is True
    assert client.ttl("tk") is None
    assert client.expire("tk-none", 3) is False
    with pytest.raises(NotFoundError):
        client.ttl("tk-none")
    client.batch_put([f"scan:{i:04d}" for i in range(2500)], ["v"] * 2500)
    keys = [k for k, _ in client.scan(prefix="scan:")]
    assert keys == [f"scan:{i:04d}" for i in range(2500)]
    assert len(list(client.scan(prefix="scan:", limit=1200))) == 1200
    assert [k for k, _ in client.scan(start="scan:0010", end="scan:0012")] == [
        "scan:0010",
        "scan:0011",
        "scan:0012",
    ]
    assert client.count() >= 2500
    client.flush()
    client.compact()
    stats = client.stats()
    assert isinstance(stats, dict) and stats["server"]["requests_total"] > 0


def test_errors_are_shaledb_exceptions(client: KVClient) -> None:
    with pytest.raises(InvalidArgumentError):
        client.batch_put(["a", "b"], ["1"])
    with pytest.raises(InvalidArgumentError):
        client.put("", "v")
    with pytest.raises(InvalidTypeError):
        client.put(5, "v")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        client.batch_put("ab", "12")
    with pytest.raises(InvalidArgumentError):
        client.put("k", "v", ttl=-1)
    with pytest.raises(NotFoundError):
        client.namespace("no-such-ns")
    assert client.ping()  # still usable


def test_db_like_api_for_the_shell(client: KVClient) -> None:
    ns = client.create_namespace("iti")
    assert isinstance(ns, RemoteNamespace)
    assert "iti" in client.list_namespaces()
    with pytest.raises(AlreadyExistsError):
        client.create_namespace("iti")
    table = client.namespace("iti").create_table("collaborators")
    assert isinstance(table, RemoteTable)
    assert client.namespace("iti").list_tables() == ["collaborators"]
    t = client.namespace("iti").table("collaborators")
    t.put("collaborator1", "sief")
    t.put("collaborator2", "a:b:c", ttl=100)
    assert t.get("collaborator1") == "sief"
    assert t.get("collaborator2") == "a:b:c"
    assert t.get("nobody") is None
    assert t.ttl("collaborator1") is None
    assert 0 < (t.ttl("collaborator2") or 0) <= 100
    with pytest.raises(NotFoundError):
        t.ttl("nobody")
    assert list(t.scan()) == [("collaborator1", "sief"), ("collaborator2", "a:b:c")]
    assert list(t.scan(prefix="collaborator1")) == [("collaborator1", "sief")]
    assert list(t.scan(limit=1)) == [("collaborator1", "sief")]
    assert t.count() == 2
    t.flush()
    t.compact()
    assert t.delete("collaborator1") is True and t.delete("collaborator1") is False
    assert client.get("collaborator2") is None  # the default table is another table
    with pytest.raises(NotFoundError):
        client.namespace("iti").table("nope")
    with pytest.raises(NotFoundError):
        client.table("collaborators")  # not in the default namespace
    client.namespace("iti").drop_table("collaborators")
    with pytest.raises(NotFoundError):
        t.get("collaborator2")
    client.drop_namespace("iti")
    with pytest.raises(NotFoundError):
        client.namespace("iti")
    assert client.table("default").namespace_name == "default"


def test_connect_failure_and_closed_client() -> None:
    with pytest.raises(ConnectionFailedError):
        KVClient(port=free_port(), timeout=2)
    with pytest.raises(ShaleDBError):
        KVClient(port=free_port(), timeout=2)


def test_use_after_close(server: ServerProcess) -> None:
    client = KVClient(port=server.port)
    client.close()
    client.close()
    with pytest.raises(ClosedError):
        client.get("k")


def test_read_timeout() -> None:
    # A server that accepts and never answers.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    client = KVClient(port=port, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError, match="no reply"):
        client.get("k")
    assert time.monotonic() - started < 3
    client.close()
    for sock in accepted:
        sock.close()
    listener.close()


def test_reconnects_after_server_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    client = KVClient(port=server.port)
    client.put("survivor", "yes")
    assert server.stop() == 0
    restarted = ServerProcess(data, port=server.port).start()
    try:
        assert client.get("survivor") == "yes"  # retried on a fresh connection
        client.put("after", "restart")
        assert client.get("after") == "restart"
    finally:
        client.close()
        assert restarted.stop() == 0, restarted.log()


def test_password(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_server(tmp_path_factory, "--password", "pw")
    try:
        with pytest.raises(AuthenticationError):
            KVClient(port=server.port, password="wrong")
        no_auth = KVClient(port=server.port)
        with pytest.raises(AuthenticationError):
            no_auth.get("k")
        assert no_auth.ping()
        no_auth.close()
        with KVClient(port=server.port, password="pw") as client:
            client.put("k", "v")
            assert client.get("k") == "v"
    finally:
        assert server.stop() == 0, server.log()


@pytest.mark.parametrize(("keys", "values"), [(None, ["v"]), (["k"], 5), ("k", ["v"])])
def test_batch_put_arguments_that_are_not_lists_are_invalid_types(
    client: KVClient, keys: object, values: object
) -> None:
    with pytest.raises(InvalidTypeError, match="must be a list of str or bytes"):
        client.batch_put(keys, values)  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl", [1e300, 2**62])
def test_a_ttl_beyond_the_expiry_range_is_an_invalid_argument(client: KVClient, ttl: float) -> None:
    with pytest.raises(InvalidArgumentError, match="at most 9223372036854775"):
        client.put("ttl-overflow", "v", ttl=ttl)
    with pytest.raises(InvalidArgumentError, match="at most 9223372036854775"):
        client.batch_put(["ttl-overflow"], ["v"], ttl=ttl)
    assert client.get("ttl-overflow") is None
    assert client.ping()


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"port": -1}, InvalidArgumentError, "port must be an integer 1 to 65535"),
        ({"port": "9999"}, InvalidTypeError, "port must be an integer"),
        ({"host": 5}, InvalidTypeError, "host must be a str"),
        ({"timeout": "x"}, InvalidTypeError, "timeout must be a positive number"),
        ({"connect_timeout": -1}, InvalidArgumentError, "connect_timeout must be a positive"),
        ({"password": 123}, InvalidTypeError, "password must be a str"),
    ],
)
def test_bad_client_arguments_are_shaledb_errors(
    options: dict[str, object], error: type, words: str
) -> None:
    with pytest.raises(error, match=words):
        KVClient(**options)  # type: ignore[arg-type]
