"""The shell on a terminal: the promised session, Ctrl-C, Ctrl-D, history and Tab.

Each test runs the real ``shaledb shell`` on a pseudo-terminal (terminal_fixtures).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from terminal_fixtures import CTRL_C, UP, expect_line, leave, run_typed, spawn_shaledb


def spawn(tmp_path: Path) -> Any:
    return spawn_shaledb(tmp_path, "shell", "--data-dir", str(tmp_path / "data"), prompt="kvstore>")


def run(child: Any, command: str, *replies: str) -> None:
    run_typed(child, "kvstore>", command, *replies)


PRODUCT_SESSION = [
    ("create-namespace iti", "[OK] Created namespace: iti"),
    ("use-namespace iti", "[OK] Using namespace: iti"),
    ("create-table collaborators", "[OK] Created table: iti:collaborators"),
    ("set collaborators:collaborator1:sief", "[OK] Set collaborator1 in iti:collaborators"),
    ("get collaborators:collaborator1", "[HIT] iti:collaborators:collaborator1 = sief"),
    ("flush collaborators", "[OK] Flushed iti:collaborators to disk."),
]


def test_the_promised_session_then_exit(tmp_path: Path) -> None:
    child = spawn(tmp_path)
    for command, reply in PRODUCT_SESSION:
        run(child, command, reply)
    run(child, "get collaborators:nobody", "[MISS] iti:collaborators:nobody")
    run(child, "get nosuch:k", "[ERROR] table iti:nosuch does not exist")
    run(child, "list-namespaces", "  default", "* iti")
    child.sendline("exit")
    assert leave(child) == 0


def test_ctrl_c_drops_the_line_and_ctrl_d_leaves(tmp_path: Path) -> None:
    child = spawn(tmp_path)
    run(child, "create-table t", "[OK] Created table: default:t")
    child.send("set t:cancelled:yes")
    child.send(CTRL_C)
    run(child, "get t:cancelled", "[MISS] default:t:cancelled")
    run(child, "count t", "[COUNT] default:t = 0")
    child.sendeof()
    assert leave(child) == 0


def test_history_is_kept_across_sessions(tmp_path: Path) -> None:
    child = spawn(tmp_path)
    run(child, "create-namespace ops", "[OK] Created namespace: ops")
    run(child, "list-namespaces", "* default", "  ops")
    child.sendeof()
    assert leave(child) == 0
    history = (tmp_path / ".shaledb_history").read_text(encoding="utf-8")
    assert "+create-namespace ops\n" in history and "+list-namespaces\n" in history

    # The directory was closed: a new session opens it, and Up recalls the last line.
    child = spawn(tmp_path)
    child.send(UP)
    child.send("\r")
    expect_line(child, "* default")
    expect_line(child, "  ops")
    child.sendline("exit")
    assert leave(child) == 0


def test_tab_completes_commands_namespaces_and_tables(tmp_path: Path) -> None:
    child = spawn(tmp_path)
    run(child, "create-namespace iti", "[OK] Created namespace: iti")
    child.send("use-n\t")
    child.expect_exact("use-namespace")
    child.send(" it\t")
    child.expect_exact("iti")
    child.send("\r")
    expect_line(child, "[OK] Using namespace: iti")
    run(child, "create-table collaborators", "[OK] Created table: iti:collaborators")
    command, reply = PRODUCT_SESSION[3]
    run(child, command, reply)
    child.send("get coll\t")
    child.expect_exact("collaborators:")
    child.send("collaborator1\r")
    expect_line(child, "[HIT] iti:collaborators:collaborator1 = sief")
    child.sendline("exit")
    assert leave(child) == 0
