"""``shaledb client`` on a terminal: line editing, history, Tab, Ctrl-C and Ctrl-D as in
the shell, and errors in the shell's ``[ERROR]`` form (terminal_fixtures)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import ServerProcess, start_server
from terminal_fixtures import CTRL_C, UP, expect_line, leave, run_typed, spawn_shaledb


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory)
    yield proc
    assert proc.stop() == 0, proc.log()


def prompt(server: ServerProcess) -> str:
    return f"127.0.0.1:{server.port}>"


def spawn(tmp_path: Path, server: ServerProcess) -> Any:
    return spawn_shaledb(tmp_path, "client", "--port", str(server.port), prompt=prompt(server))


def test_errors_print_as_the_shell_prints_them(tmp_path: Path, server: ServerProcess) -> None:
    child = spawn(tmp_path, server)
    run_typed(
        child,
        prompt(server),
        "frobnicate",
        "[ERROR] unknown command: frobnicate (type help for the commands)",
    )
    run_typed(child, prompt(server), "get", "[ERROR] usage: get <key>")
    child.sendline("quit")
    expect_line(child, "Bye.")
    assert leave(child) == 0


def test_up_recalls_a_line_and_history_outlives_the_session(
    tmp_path: Path, server: ServerProcess
) -> None:
    child = spawn(tmp_path, server)
    run_typed(child, prompt(server), "put recall me", "Key-value pair stored")
    run_typed(child, prompt(server), "get recall", "me")
    run_typed(child, prompt(server), "delete recall", "Key deleted")
    child.send(UP)  # delete recall, again: the key is gone now
    child.send("\r")
    expect_line(child, "Key not found")
    child.expect_exact(prompt(server))
    child.sendeof()
    expect_line(child, "Bye.")
    assert leave(child) == 0
    history = (tmp_path / ".shaledb_client_history").read_text(encoding="utf-8")
    assert "+put recall me\n" in history and "+delete recall\n" in history

    child = spawn(tmp_path, server)
    child.send(UP + UP)  # get recall, from the last session
    child.send("\r")
    expect_line(child, "(not found)")
    child.expect_exact(prompt(server))
    child.sendeof()
    assert leave(child) == 0


def test_ctrl_c_drops_the_line_and_tab_completes_commands(
    tmp_path: Path, server: ServerProcess
) -> None:
    child = spawn(tmp_path, server)
    child.send("put dropped yes")
    child.send(CTRL_C)
    child.expect_exact(prompt(server))
    run_typed(child, prompt(server), "get dropped", "(not found)")
    child.send("pi\t")
    child.expect_exact("ping")
    child.send("\r")
    expect_line(child, "PONG")
    child.expect_exact(prompt(server))
    child.sendeof()
    assert leave(child) == 0
