"""redis-cli against ``shaledb serve``: commands, inline quoting, ``--pipe`` mass insert."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from resp_fixtures import RespLink, program
from server_fixtures import ServerProcess, start_server

from shaledb.server.resp_protocol import encode_command


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory)
    yield proc
    proc.stop()


def cli(server: ServerProcess, *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        [program("redis-cli"), "-p", str(server.port), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return done.stdout.decode()


def test_everyday_commands(server: ServerProcess) -> None:
    assert cli(server, "PING") == "PONG\n"
    assert cli(server, "SET", "cli:k", "hello world") == "OK\n"
    assert cli(server, "GET", "cli:k") == "hello world\n"
    assert cli(server, "INCR", "cli:n") == "1\n"
    assert cli(server, "GET", "cli:none") == "\n"
    assert cli(server, "--no-raw", "GET", "cli:none") == "(nil)\n"
    assert cli(server, "MSET", "cli:a", "1", "cli:b", "2") == "OK\n"
    assert cli(server, "MGET", "cli:a", "cli:b") == "1\n2\n"
    assert cli(server, "EXPIRE", "cli:a", "100") == "1\n"
    assert cli(server, "TTL", "cli:a") in ("100\n", "99\n")
    assert "redis_version:" in cli(server, "INFO", "server")
    assert "ERR unknown command 'NOPE'" in cli(server, "NOPE")
    assert set(cli(server, "--scan", "--pattern", "cli:*").split()) >= {"cli:a", "cli:b", "cli:k"}


def test_commands_from_standard_input(server: ServerProcess) -> None:
    script = b'SET cli:q "quoted value"\nGET cli:q\nDEL cli:q\nEXISTS cli:q\n'
    assert cli(server, stdin=script) == "OK\nquoted value\n1\n0\n"


def test_pipe_mass_insert(server: ServerProcess) -> None:
    n = 20_000
    data = b"".join(encode_command("SET", f"mass:{i}", f"value{i}") for i in range(n))
    out = cli(server, "--pipe", stdin=data)
    assert "errors: 0" in out and f"replies: {n}" in out
    link = RespLink(server.port)
    assert link.call("GET", f"mass:{n - 1}") == f"value{n - 1}".encode()
    assert link.call("DBSIZE") >= n
    link.close()


def test_password(tmp_path_factory: pytest.TempPathFactory) -> None:
    proc = start_server(tmp_path_factory, "--password", "pw")
    try:
        assert "NOAUTH" in cli(proc, "GET", "k")
        assert cli(proc, "-a", "pw", "--no-auth-warning", "SET", "k", "v") == "OK\n"
        assert (
            cli(proc, "--user", "default", "--pass", "pw", "--no-auth-warning", "GET", "k") == "v\n"
        )
    finally:
        proc.stop()
