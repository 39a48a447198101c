"""Every tool against a directory a running server process holds: one table of exit
codes (README, "Exit codes"): 2 for the tools that need the directory to themselves,
0 for those that only read it (``backup``, ``info``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_fixtures import Link, ServerProcess, free_port, run_shaledb

from shaledb.cli.exit_codes import EXIT_LOCKED, EXIT_OK


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("locked") / "data").start()
    link = Link(proc.port)
    assert link.call({"command": "put", "key": "k", "value": "v"})["status"] == "ok"
    link.close()
    yield proc
    assert proc.stop() == 0, proc.log()


@pytest.mark.parametrize(
    "args, stdin, stream",
    [
        (("check", "{dir}"), "", "stderr"),
        (("repair", "{dir}"), "", "stderr"),
        (("dump", "{dir}", "--output", "-"), "", "stderr"),
        (("load", "{dir}"), '{"key": "a", "value": "1"}\n', "stderr"),
        (("shell", "--data-dir", "{dir}"), "get default:k\n", "stdout"),
        (("serve", "--data-dir", "{dir}", "--port", "{port}"), "", "stderr"),
    ],
    ids=lambda value: value[0] if isinstance(value, tuple) else None,
)
def test_tools_that_need_the_directory_exit_2(
    served: ServerProcess, args: tuple[str, ...], stdin: str, stream: str
) -> None:
    command = [a.format(dir=served.data_dir, port=free_port()) for a in args]
    result = run_shaledb(*command, stdin=stdin)
    assert result.returncode == EXIT_LOCKED, result.stdout + result.stderr
    message = getattr(result, stream)
    assert "locked" in message and str(served.data_dir) in message, message
    assert "Traceback" not in result.stderr


def test_backup_and_info_only_read_and_work(served: ServerProcess, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    backup = run_shaledb("backup", str(served.data_dir), str(copy))
    assert backup.returncode == EXIT_OK, backup.stderr
    assert backup.stdout.startswith(f"backed up {served.data_dir} to {copy}: 1 entry")
    info = run_shaledb("info", str(served.data_dir))
    assert info.returncode == EXIT_OK, info.stderr
    assert "engine: lsm" in info.stdout.splitlines()
    assert "  default:default: 1" in info.stdout.splitlines()
