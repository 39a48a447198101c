"""The shell, driven by scripts: golden transcripts, TTL expiry, persistence, exit status.

Each ``transcripts/<name>.in`` is fed to the shell on standard input and the whole of
standard output must equal ``transcripts/<name>.out``. Every transcript runs three
times: in this process over an in-memory database seen through :class:`SubsetDB`
(which offers only the API a remote client offers, so the shell cannot drift beyond
it), through the real ``shaledb`` command on a data directory, and through it again
with ``--connect`` to a ``shaledb serve``.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import shaledb
from shaledb.cli.shell import run_lines
from shaledb.cli.shell_commands import Shell
from shaledb.engine.memory import MemoryEngine
from shaledb.options import Options

TRANSCRIPTS = Path(__file__).parent / "transcripts"
GOLDEN = ["product_example", "namespaces", "tables", "keys", "errors", "help", "script_rules"]


def shaledb_command() -> str:
    """The ``shaledb`` console script installed beside this Python."""
    found = shutil.which("shaledb", path=str(Path(sys.executable).parent))
    assert found, f"no shaledb script next to {sys.executable}; is the package installed?"
    return found


def run_cli(
    *args: str, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``shaledb shell ARGS`` with ``stdin`` and return what it did."""
    return subprocess.run(
        [shaledb_command(), "shell", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        cwd=cwd,
    )


class SubsetTable:
    """A table offering only what the shell may use."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def put(self, key: str, value: str, ttl: float | None = None) -> None:
        self._table.put(key, value, ttl=ttl)

    def get(self, key: str) -> Any:
        return self._table.get(key)

    def delete(self, key: str) -> bool:
        return bool(self._table.delete(key))

    def ttl(self, key: str) -> float | None:
        return self._table.ttl(key)  # type: ignore[no-any-return]

    def scan(self, prefix: str | None = None, limit: int | None = None) -> Iterator[Any]:
        return iter(self._table.scan(prefix=prefix, limit=limit))

    def count(self) -> int:
        return int(self._table.count())

    def flush(self) -> None:
        self._table.flush()

    def compact(self) -> None:
        self._table.compact()


class SubsetNamespace:
    def __init__(self, namespace: Any) -> None:
        self._namespace = namespace

    def list_tables(self) -> list[str]:
        return list(self._namespace.list_tables())

    def create_table(self, name: str) -> None:
        self._namespace.create_table(name)

    def drop_table(self, name: str) -> None:
        self._namespace.drop_table(name)

    def table(self, name: str) -> SubsetTable:
        return SubsetTable(self._namespace.table(name))


class SubsetDB:
    """A database offering only the subset of the API that the remote client implements."""

    def __init__(self, db: shaledb.DB) -> None:
        self._db = db
        self.closed = False

    def list_namespaces(self) -> list[str]:
        return list(self._db.list_namespaces())

    def create_namespace(self, name: str) -> None:
        self._db.create_namespace(name)

    def drop_namespace(self, name: str) -> None:
        self._db.drop_namespace(name)

    def namespace(self, name: str) -> SubsetNamespace:
        return SubsetNamespace(self._db.namespace(name))

    def stats(self) -> dict[str, Any]:
        return dict(self._db.stats())

    def close(self) -> None:
        self.closed = True
        self._db.close()


def memory_db(clock: Any = None) -> SubsetDB:
    options = Options(clock=clock) if clock else Options()
    return SubsetDB(shaledb.DB.over(MemoryEngine(options)))


def run_in_process(db: SubsetDB, script: str) -> tuple[str, Shell]:
    out: list[str] = []
    shell = Shell(db, out.append)
    run_lines(shell, io.StringIO(script))
    return "".join(line + "\n" for line in out), shell


def transcript(name: str) -> tuple[str, str]:
    script = (TRANSCRIPTS / f"{name}.in").read_text(encoding="utf-8")
    expected = (TRANSCRIPTS / f"{name}.out").read_text(encoding="utf-8")
    return script, expected


# -- golden transcripts ------------------------------------------------------------


@pytest.mark.parametrize("name", GOLDEN)
def test_transcript_in_process(name: str) -> None:
    script, expected = transcript(name)
    output, _ = run_in_process(memory_db(), script)
    assert output == expected


@pytest.fixture
def server() -> Iterator[str]:
    """A fresh in-memory ``shaledb serve`` on a free port; yields ``HOST:PORT``."""
    proc = subprocess.Popen(
        [shaledb_command(), "serve", "--in-memory", "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        address = None
        for line in proc.stderr:  # the server logs where it listens once it does
            match = re.search(r"listening on (\S+:\d+)", line)
            if match:
                address = match[1]
                break
        assert address, "the server did not start"
        yield address
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.parametrize("name", GOLDEN)
def test_transcript_over_the_network(name: str, server: str) -> None:
    script, expected = transcript(name)
    result = run_cli("--connect", server, stdin=script)
    assert (result.stdout, result.returncode) == (expected, 0)


@pytest.mark.parametrize("name", GOLDEN)
def test_transcript_through_the_command(name: str, tmp_path: Path) -> None:
    script, expected = transcript(name)
    result = run_cli("--data-dir", str(tmp_path / "data"), stdin=script)
    assert result.stdout == expected
    assert result.stderr == ""
    assert result.returncode == 0


def test_product_example_lines_exactly(tmp_path: Path) -> None:
    # The promised lines, spelled out here too so no regenerated golden file can drift.
    result = run_cli("--data-dir", str(tmp_path / "data"), stdin=transcript("product_example")[0])
    assert result.stdout.splitlines() == [
        "[OK] Created namespace: iti",
        "[OK] Using namespace: iti",
        "[OK] Created table: iti:collaborators",
        "[OK] Set collaborator1 in iti:collaborators",
        "[HIT] iti:collaborators:collaborator1 = sief",
        "[OK] Flushed iti:collaborators to disk.",
        "[MISS] iti:collaborators:collaborator2",
    ]


def test_data_survives_two_runs(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    for name in ("persist_1", "persist_2"):
        script, expected = transcript(name)
        result = run_cli("--data-dir", data, stdin=script)
        assert (result.stdout, result.returncode) == (expected, 0), name
    # The ttl survived too (it counts down from 3600 across the runs).
    result = run_cli("--data-dir", data, stdin="use-namespace iti\nttl collaborators:lasting\n")
    last = result.stdout.splitlines()[-1]
    prefix = "[TTL] iti:collaborators:lasting = "
    assert last.startswith(prefix) and last.endswith("s"), last
    assert 3500 < float(last[len(prefix) : -1]) <= 3600


def test_in_process_shells_share_one_database() -> None:
    db = memory_db()
    for name in ("persist_1", "persist_2"):
        script, expected = transcript(name)
        assert run_in_process(db, script)[0] == expected, name


# -- ttl expiry ---------------------------------------------------------------------


def test_ttl_expires_through_the_command(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [shaledb_command(), "shell", "--data-dir", str(tmp_path / "data")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("create-table t\nset t:short:lived 0.5\nset t:long:lived 60\nget t:short\n")
    proc.stdin.flush()
    seen = [proc.stdout.readline() for _ in range(4)]
    assert seen[-1] == "[HIT] default:t:short = lived\n"
    time.sleep(0.7)
    out, _ = proc.communicate("get t:short\nttl t:short\ndelete t:short\ncount t\nscan t\n", 30)
    assert out.splitlines() == [
        "[MISS] default:t:short",
        "[MISS] default:t:short",
        "[MISS] default:t:short",
        "[COUNT] default:t = 1",
        "long = lived",
        "[OK] Scanned 1 key in default:t",
    ]
    assert proc.returncode == 0


def test_ttl_counts_down_on_the_clock() -> None:
    now = [1000.0]
    db = memory_db(clock=lambda: now[0])
    out: list[str] = []
    shell = Shell(db, out.append)
    for line in ("create-table t", "set t:k:v 10", "ttl t:k"):
        shell.execute(line)
    now[0] += 9.95
    shell.execute("ttl t:k")  # 0.05 s left reads as 0.1, never 0
    shell.execute("get t:k")
    now[0] += 0.05
    shell.execute("ttl t:k")
    shell.execute("get t:k")
    assert out[1:] == [
        "[OK] Set k in default:t (ttl 10s)",
        "[TTL] default:t:k = 10s",
        "[TTL] default:t:k = 0.1s",
        "[HIT] default:t:k = v",
        "[MISS] default:t:k",
        "[MISS] default:t:k",
    ]


# -- exit status, options, opening ------------------------------------------------------

FAILING = "create-table t\nget nosuch:k\nset t:k:v\nget t:k\n"


def test_errors_do_not_change_the_exit_status_without_strict(tmp_path: Path) -> None:
    result = run_cli("--data-dir", str(tmp_path / "data"), stdin=FAILING)
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "[OK] Created table: default:t",
        "[ERROR] table default:nosuch does not exist",
        "[OK] Set k in default:t",
        "[HIT] default:t:k = v",
    ]


def test_strict_exits_1_after_any_failed_command_but_runs_them_all(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    failing = run_cli("--strict", "--data-dir", data, stdin=FAILING)
    assert failing.returncode == 1
    assert failing.stdout.splitlines()[-1] == "[HIT] default:t:k = v"
    clean = run_cli("--strict", "--data-dir", data, stdin="get t:k\nexit\n")
    assert (clean.stdout, clean.returncode) == ("[HIT] default:t:k = v\n", 0)


def test_strict_counts_errors_in_process() -> None:
    _, shell = run_in_process(memory_db(), FAILING + "frob\n")
    assert shell.errors == 2


def test_exit_closes_the_database_in_process() -> None:
    db = memory_db()
    out, shell = run_in_process(db, "exit\nget t:k\n")
    assert (out, shell.finished) == ("", True)
    # run_lines leaves closing to its caller; the command does it (checked next).
    assert not db.closed


def test_default_data_dir_is_data_in_the_working_directory(tmp_path: Path) -> None:
    result = run_cli(stdin="set default:k:v\n", cwd=tmp_path)
    assert (result.stdout, result.returncode) == ("[OK] Set k in default:default\n", 0)
    assert (tmp_path / "data").is_dir()
    again = run_cli(stdin="get default:k\n", cwd=tmp_path)
    assert again.stdout == "[HIT] default:default:k = v\n"


def test_a_second_shell_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    first = subprocess.Popen(
        [shaledb_command(), "shell", "--data-dir", data],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first.stdin is not None and first.stdout is not None
    try:
        first.stdin.write("set default:k:v\n")
        first.stdin.flush()
        assert first.stdout.readline() == "[OK] Set k in default:default\n"
        second = run_cli("--data-dir", data, stdin="get default:k\n")
        assert second.returncode == 2  # locked, as for every tool
        assert second.stdout.startswith("[ERROR] ") and "lock" in second.stdout.lower()
        assert second.stdout.count("\n") == 1
    finally:
        first.communicate("", 30)
    assert first.returncode == 0  # and it closed the directory: it opens again
    assert run_cli("--data-dir", data, stdin="get default:k\n").stdout == (
        "[HIT] default:default:k = v\n"
    )


def test_a_data_dir_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("not a database")
    result = run_cli("--data-dir", str(path), stdin="list-namespaces\n")
    assert result.returncode == 1
    assert result.stdout.startswith("[ERROR] ") and result.stdout.count("\n") == 1


@pytest.mark.parametrize("address", ["nonsense", "host:", ":99", "host:0", "host:70000", "h:p"])
def test_connect_needs_host_and_port(address: str) -> None:
    result = run_cli("--connect", address)
    assert result.returncode == 2  # a usage error (README, "Exit codes")
    assert result.stdout == f"[ERROR] --connect takes HOST:PORT; got {address!r}\n"


def test_connect_and_data_dir_exclude_each_other(tmp_path: Path) -> None:
    result = run_cli("--connect", "127.0.0.1:9999", "--data-dir", str(tmp_path))
    assert (result.stdout, result.returncode) == (
        "[ERROR] give either --data-dir or --connect, not both\n",
        2,
    )


def test_connect_to_nothing_is_one_error_line(tmp_path: Path) -> None:
    # Port 1 is privileged and unused here: the client is either missing or refused.
    result = run_cli("--connect", "127.0.0.1:1", stdin="list-namespaces\n")
    assert result.returncode == 1
    assert result.stdout.startswith("[ERROR] ") and result.stdout.count("\n") == 1


# -- output forms that depend on the engine or on data only the API can write ---------


def test_stats_in_process() -> None:
    out, _ = run_in_process(memory_db(), "set default:k:v\nstats\n")
    assert out.splitlines()[1:] == ["engine: memory", "keys: 1"]


def test_stats_through_the_command(tmp_path: Path) -> None:
    result = run_cli("--data-dir", str(tmp_path / "data"), stdin="stats\n")
    lines = result.stdout.splitlines()
    assert lines and result.returncode == 0
    for line in lines:
        name, sep, value = line.partition(": ")
        assert sep and name and " " not in name and not line.startswith("["), line
        assert not value.startswith(("[", "{")), line  # no Python list or dict
    assert "levels.0.files: 0" in lines and "levels.6.bytes: 0" in lines
    assert not any(line.startswith("levels.0.level") for line in lines)


def test_bytes_written_through_the_api_are_shown_readably() -> None:
    db = shaledb.DB.over(MemoryEngine())
    db.put(b"\xff\x00", b"\x00\xfe")
    db.put(b"text", "caf\u00e9".encode())
    out, _ = run_in_process(SubsetDB(db), "scan default\nget default:text\n")
    assert out.splitlines() == [
        "text = caf\u00e9",
        "b'\\xff\\x00' = b'\\x00\\xfe'",
        "[OK] Scanned 2 keys in default:default",
        "[HIT] default:default:text = caf\u00e9",
    ]


def test_unexpected_exceptions_become_error_lines() -> None:
    class Broken(SubsetDB):
        def list_namespaces(self) -> list[str]:
            raise OSError(5, "Input/output error")

    broken = Broken(shaledb.DB.over(MemoryEngine()))
    out, shell = run_in_process(broken, "list-namespaces\nhelp exit\n")
    assert out.splitlines()[0] == "[ERROR] OSError: [Errno 5] Input/output error"
    assert out.splitlines()[1] == "exit"
    assert shell.errors == 1


# -- completion ----------------------------------------------------------------------


def completions(shell: Shell, text: str) -> list[str]:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from shaledb.cli.shell_completion import ShellCompleter

    found = ShellCompleter(shell).get_completions(Document(text), CompleteEvent(True))
    return [text[: len(text) + c.start_position] + c.text for c in found]


def test_completion_of_commands_namespaces_and_tables() -> None:
    shell = Shell(memory_db(), lambda line: None)
    for line in (
        "create-namespace iti",
        "create-namespace ops",
        "use-namespace iti",
        "create-table collaborators",
        "create-table config",
    ):
        assert shell.execute(line)
    assert completions(shell, "")[:2] == ["create-namespace", "use-namespace"]
    assert completions(shell, "c") == ["create-namespace", "create-table", "count", "compact"]
    assert completions(shell, "use-namespace ") == [
        "use-namespace default",
        "use-namespace iti",
        "use-namespace ops",
    ]
    assert completions(shell, "drop-namespace o") == ["drop-namespace ops"]
    assert completions(shell, "get co") == ["get collaborators:", "get config:"]
    assert completions(shell, "flush col") == ["flush collaborators"]
    assert completions(shell, "help he") == ["help help"]
    assert completions(shell, "get collaborators:") == []  # keys are not completed
    assert completions(shell, "create-table c") == []  # a new name
    assert completions(shell, "nosuch x") == []
    shell.execute("use-namespace ops")
    assert completions(shell, "get co") == []


TTL_OVERFLOW_SCRIPT = (
    "create-table t\n"
    "set t:k:v 18446744073709551616\n"
    "set t:k:v 99999999999999999999\n"
    "set t:k:v\n"
    "get t:k\n"
)
TTL_OVERFLOW_OUT = [
    "[OK] Created table: default:t",
    "[ERROR] ttl must be a positive number of seconds, at most 9223372036854775 "
    "(the expiry time must fit in 64 bits); got 18446744073709551616",
    "[ERROR] ttl must be a positive number of seconds, at most 9223372036854775 "
    "(the expiry time must fit in 64 bits); got 100000000000000000000",
    "[OK] Set k in default:t",
    "[HIT] default:t:k = v",
]


def test_a_ttl_beyond_the_expiry_range_is_one_error_line_and_the_script_goes_on(
    tmp_path: Path,
) -> None:
    # It used to raise struct.error out of the shell, skipping the rest of the script.
    proc = run_cli("--data-dir", str(tmp_path / "db"), stdin=TTL_OVERFLOW_SCRIPT)
    assert proc.stdout.splitlines() == TTL_OVERFLOW_OUT, proc.stderr
    assert proc.returncode == 0 and proc.stderr == ""
    out, shell = run_in_process(memory_db(), TTL_OVERFLOW_SCRIPT)
    assert out.splitlines() == TTL_OVERFLOW_OUT and shell.errors == 2


def test_any_unexpected_exception_is_an_error_line() -> None:
    class Broken(SubsetDB):
        def list_namespaces(self) -> list[str]:
            raise ArithmeticError("not one of the usual built-ins")

    out, shell = run_in_process(Broken(shaledb.DB.over(MemoryEngine())), "list-namespaces\nexit\n")
    assert out.splitlines() == ["[ERROR] ArithmeticError: not one of the usual built-ins"]
    assert shell.errors == 1 and shell.finished
