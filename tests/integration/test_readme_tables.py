"""The README's tables say what the program does: the command table names every
``shaledb`` command, the shell table has the rows ``help`` shows, in its order, with
the lines the shell prints, and the exit-code table is the one the tools use."""

from __future__ import annotations

import re
from pathlib import Path

from server_fixtures import run_shaledb

import shaledb
from shaledb.cli import exit_codes
from shaledb.cli.main import main
from shaledb.cli.shell_commands import COMMANDS, Shell
from shaledb.engine.memory import MemoryEngine

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def table_after(heading: str) -> list[list[str]]:
    """The rows (cells stripped) of the first Markdown table after ``heading``."""
    text = README[README.index(heading) :]
    rows = []
    for line in text.splitlines()[1:]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # past the header and the |---| line


def unquote(cell: str) -> str:
    return cell.strip("`")


def shell_lines(script: str) -> list[str]:
    out: list[str] = []
    shell = Shell(shaledb.DB.over(MemoryEngine()), out.append)
    for line in script.splitlines():
        shell.execute(line)
    return out


def test_the_shell_table_has_the_rows_help_shows_in_its_order() -> None:
    rows = table_after("### Shell commands")
    names = [name for row in rows for name in re.findall(r"`([a-z-]+)`", row[0])]
    assert names == list(COMMANDS)
    for row in rows:
        for name in re.findall(r"`([a-z-]+)`", row[0]):
            assert unquote(row[1]) == COMMANDS[name].args, name
    listed = shell_lines("help")[1:]
    assert [line.split()[0] for line in listed] == list(COMMANDS)


def test_the_shell_table_shows_what_set_compact_and_stats_print() -> None:
    rows = {unquote(row[0]): row for row in table_after("### Shell commands")}
    assert (
        (rows["set"][2])
        == "`[OK] Set <key> in <ns>:<table>`, then ` (ttl <n>s)` when a ttl is given"
    )
    assert rows["compact"][2] == "`[OK] Compacted <ns>:<table> into one file.`"
    out = shell_lines("create-table t\nset t:k:v 3600\nset t:j:w\ncompact t\nstats\n")
    assert out[1:4] == [
        "[OK] Set k in default:t (ttl 3600s)",
        "[OK] Set j in default:t",
        "[OK] Compacted default:t into one file.",
    ]


def test_the_command_table_names_every_command() -> None:
    listed = {unquote(row[0]).split()[1] for row in table_after("## Commands")}
    assert set(main.commands) <= listed | {"version"}, set(main.commands) - listed


def test_version_and_dash_dash_version_print_the_same_line() -> None:
    def run(*args: str) -> str:
        result = run_shaledb(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert run("version") == run("--version") == f"shaledb {shaledb.__version__}\n"
    assert f"`shaledb {shaledb.__version__}`" in README


def test_the_exit_code_table_is_the_one_the_tools_use() -> None:
    codes = {int(row[0]): row[1] for row in table_after("### Exit codes")}
    assert set(codes) == {exit_codes.EXIT_OK, exit_codes.EXIT_FAILED, exit_codes.EXIT_LOCKED}
    assert "locked" in codes[exit_codes.EXIT_LOCKED] and "usage" in codes[exit_codes.EXIT_LOCKED]


def test_the_quick_start_says_what_make_test_leaves_out_and_how_to_get_shaledb() -> None:
    quick_start = README[README.index("## Quick start") : README.index("## Embedded use")]
    addopts = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "addopts = \"-ra --strict-markers -m 'not slow'\"" in addopts
    assert "except the slow soak tests" in quick_start and "pytest -m slow" in quick_start
    for way in (
        "source .venv/bin/activate",
        ".venv/bin/shaledb",
        "pipx install .",
        "pip install .",
    ):
        assert way in quick_start, way
