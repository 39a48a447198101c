"""``shaledb client`` end to end: a script on standard input against a real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from server_fixtures import ServerProcess, free_port, run_shaledb, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory)
    yield proc
    assert proc.stop() == 0, proc.log()


SCRIPT = """\
ping
put user:1000 John Doe
get user:1000
put greeting "hello   world"
get greeting
batch k1 v1 k2 v2
range k1 k2
range x y
delete k1
delete k1
get k1
get
batch a
frobnicate
help
quit
put after quit
"""

EXPECTED = """\
PONG
Key-value pair stored
John Doe
Key-value pair stored
hello   world
2 key-value pairs stored
k1 = v1
k2 = v2
(2 pairs)
(empty)
Key deleted
Key not found
(not found)
[ERROR] usage: get <key>
[ERROR] usage: batch <k1> <v1> <k2> <v2> ...
[ERROR] unknown command: frobnicate (type help for the commands)
"""


def test_script_on_stdin(server: ServerProcess) -> None:
    result = run_shaledb("client", "--host", "127.0.0.1", "--port", str(server.port), stdin=SCRIPT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(EXPECTED), result.stdout
    help_text = result.stdout[len(EXPECTED) :]
    assert "put <key> <value>" in help_text and "quit, exit" in help_text
    # 'quit' ended the session: the put after it did not run.
    check = run_shaledb("client", "--port", str(server.port), stdin="get after\nexit\n")
    assert check.stdout == "(not found)\n"


def test_eof_ends_the_session(server: ServerProcess) -> None:
    result = run_shaledb("client", "--port", str(server.port), stdin="put eof yes\nget eof")
    assert result.returncode == 0
    assert result.stdout == "Key-value pair stored\nyes\n"


def test_server_not_running() -> None:
    result = run_shaledb("client", "--port", str(free_port()), stdin="ping\n")
    assert result.returncode == 1
    assert result.stdout.startswith("[ERROR] cannot connect") and result.stdout.count("\n") == 1
