"""The server as a process: concurrent clients, slow clients, kill -9, SIGTERM, auth, limits."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from server_fixtures import Link, ServerProcess, start_server

CLIENTS = 20
KEYS_PER_CLIENT = 150


def _writer(port: int, client: int, acked: list[str], failures: list[BaseException]) -> None:
    try:
        link = Link(port)
        for i in range(KEYS_PER_CLIENT):
            key = f"c{client:02d}:{i:04d}"
            reply = link.call({"command": "put", "key": key, "value": f"v{client}-{i}"})
            assert reply == {"status": "ok", "message": "Key-value pair stored"}, reply
            acked.append(key)
        link.close()
    except BaseException as exc:  # reported by the test thread
        failures.append(exc)


def _write_concurrently(port: int) -> list[str]:
    acked: list[str] = []
    failures: list[BaseException] = []
    threads = [
        threading.Thread(target=_writer, args=(port, c, acked, failures)) for c in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures
    return acked


def _check_all(port: int, keys: list[str]) -> None:
    link = Link(port)
    batch = b"".join(json.dumps({"command": "get", "key": k}).encode() + b"\n" for k in keys)
    link.send(batch)
    for key in keys:
        client, i = key[1:].split(":")
        assert link.recv() == {"status": "ok", "value": f"v{int(client)}-{int(i)}"}, key
    link.close()


def test_concurrent_clients_write_disjoint_keys(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--memtable-size", "500").start()
    try:
        acked = _write_concurrently(server.port)
        assert len(acked) == CLIENTS * KEYS_PER_CLIENT
        _check_all(server.port, acked)
        count = Link(server.port).call({"command": "count"})
        assert count == {"status": "ok", "count": CLIENTS * KEYS_PER_CLIENT}
    finally:
        assert server.stop() == 0, server.log()


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, "--memtable-size", "700").start()
    acked = _write_concurrently(server.port)
    server.kill()
    server = ServerProcess(data).start()
    try:
        _check_all(server.port, acked)
    finally:
        assert server.stop() == 0, server.log()


def test_sigterm_finishes_in_flight_requests_and_exits_0(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, "--fsync", "never").start()
    link = Link(server.port)
    n = 3000
    # Pipelined: many requests are in flight when the signal arrives.
    link.send(
        b"".join(
            json.dumps({"command": "put", "key": f"term:{i:05d}", "value": str(i)}).encode() + b"\n"
            for i in range(n)
        )
    )
    assert link.recv()["status"] == "ok"
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    answered = 1
    try:
        while True:
            line = link.file.readline()
            if not line:
                break
            assert json.loads(line) == {"status": "ok", "message": "Key-value pair stored"}
            answered += 1
    except ConnectionResetError:
        pass
    link.close()
    assert server.wait() == 0, server.log()
    server = ServerProcess(data).start()
    try:
        check = Link(server.port)
        for i in range(answered):
            assert check.call({"command": "get", "key": f"term:{i:05d}"})["value"] == str(i)
        check.close()
    finally:
        assert server.stop(signal.SIGINT) == 0, server.log()


def test_sigterm_on_idle_server_with_idle_clients(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    link = Link(server.port)
    assert link.call({"command": "put", "key": "k", "value": "v"})["status"] == "ok"
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
    started = time.monotonic()
    assert server.stop() == 0, server.log()
    assert time.monotonic() - started < 10
    assert link.closed_by_server()
    for sock in idle:
        sock.close()


def test_slow_clients_do_not_block_others(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_server(tmp_path_factory)
    try:
        # One client sends half a request and stalls; another pipelines a lot and never
        # reads its replies.
        half = socket.create_connection(("127.0.0.1", server.port))
        half.sendall(b'{"command": "put", "key": "slow", ')
        deaf = socket.create_connection(("127.0.0.1", server.port))
        deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        payload = json.dumps({"command": "get_range", "start_key": "a", "end_key": "z"}).encode()
        deaf.setblocking(False)
        try:
            for _ in range(20_000):
                deaf.send(payload + b"\n")
        except BlockingIOError:
            pass
        link = Link(server.port, timeout=5)
        started = time.monotonic()
        for i in range(100):
            assert link.call({"command": "put", "key": f"fast:{i}", "value": "v"})["status"] == "ok"
        assert time.monotonic() - started < 5
        link.close()
        half.close()
        deaf.close()
    finally:
        assert server.stop() == 0, server.log()


def test_password_refuses_until_auth(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_server(tmp_path_factory, "--password", "s3cret")
    try:
        link = Link(server.port)
        assert link.call({"command": "ping"}) == {"status": "ok", "message": "PONG"}
        for request in (
            {"command": "put", "key": "k", "value": "v"},
            {"command": "get", "key": "k"},
            {"command": "list_namespaces"},
            {"command": "stats"},
        ):
            reply = link.call(request)
            assert reply["status"] == "error" and reply["code"] == "auth", reply
            assert "auth" in reply["message"]
        reply = link.call({"command": "auth", "password": "wrong"})
        assert reply["status"] == "error" and reply["code"] == "auth"
        assert link.call({"command": "get", "key": "k"})["code"] == "auth"
        assert link.call({"command": "auth", "password": "s3cret"}) == {
            "status": "ok",
            "message": "Authenticated",
        }
        assert link.call({"command": "put", "key": "k", "value": "v"})["status"] == "ok"
        assert link.call({"command": "get", "key": "k"}) == {"status": "ok", "value": "v"}
        # Authentication belongs to the connection.
        other = Link(server.port)
        assert other.call({"command": "get", "key": "k"})["code"] == "auth"
        other.close()
        link.close()
    finally:
        assert server.stop() == 0, server.log()


def test_max_clients(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_server(tmp_path_factory, "--max-clients", "2")
    try:
        first, second = Link(server.port), Link(server.port)
        assert first.call({"command": "ping"})["status"] == "ok"
        assert second.call({"command": "ping"})["status"] == "ok"
        third = Link(server.port)
        reply = third.call({"command": "ping"})
        assert reply["status"] == "error" and "max number of clients" in reply["message"]
        assert third.closed_by_server()
        third.close()
        first.close()
        time.sleep(0.2)
        fourth = Link(server.port)
        assert fourth.call({"command": "ping"})["status"] == "ok"
        fourth.close()
        second.close()
    finally:
        assert server.stop() == 0, server.log()


def test_data_dir_locked_by_another_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        with pytest.raises(AssertionError, match="(?i)lock"):
            ServerProcess(data).start()
    finally:
        assert server.stop() == 0, server.log()


def test_pipelined_puts_with_fsync_always_are_acknowledged_and_survive_kill_9(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, "--fsync", "always").start()
    link = Link(server.port)
    n = 2000
    link.send(
        b"".join(
            json.dumps({"command": "put", "key": f"p:{i:05d}", "value": str(i)}).encode() + b"\n"
            for i in range(n)
        )
    )
    replies = [link.recv() for _ in range(n)]
    assert all(r == {"status": "ok", "message": "Key-value pair stored"} for r in replies)
    link.close()
    server.kill()
    server.start()
    try:
        link = Link(server.port)
        got = link.call({"command": "get_range", "start_key": "p:", "end_key": "p:~"})
        assert got["status"] == "ok"
        assert got["data"] == [
            [f"p:{i:05d}", str(i)] for i in sorted(range(n), key=lambda i: f"{i:05d}")
        ]
        link.close()
    finally:
        assert server.stop() == 0, server.log()
