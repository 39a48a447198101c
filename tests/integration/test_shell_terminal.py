"""The shell on a terminal: the promised session, Ctrl-C, Ctrl-D, history and Tab.

Each test runs the real ``shaledb shell`` on a pseudo-terminal. The terminal redraws
its input line with control sequences, so a reply is matched as a whole line: after
a line break and any control sequences, the exact text, then the line's end.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

#: A terminal control sequence (CSI), as the line editor writes them between lines.
_CSI = r"(?:\x1b\[[0-9;?]*[A-Za-z])*"
UP = "\x1b[A"
CTRL_C = "\x03"


def spawn(tmp_path: Path) -> pexpect.spawn:
    shaledb = shutil.which("shaledb", path=str(Path(sys.executable).parent))
    assert shaledb, f"no shaledb script next to {sys.executable}"
    env = dict(
        os.environ,
        HOME=str(tmp_path),  # the history file goes to $HOME/.shaledb_history
        TERM="xterm",
        # The terminal here never answers cursor-position requests; do not ask.
        PROMPT_TOOLKIT_NO_CPR="1",
    )
    env.pop("SHALEDB_HISTORY", None)
    child = pexpect.spawn(
        shaledb,
        ["shell", "--data-dir", str(tmp_path / "data")],
        env=env,
        encoding="utf-8",
        timeout=10,
        dimensions=(24, 120),
    )
    child.expect_exact("kvstore>")
    return child


def expect_line(child: pexpect.spawn, text: str) -> None:
    """Wait for ``text`` to be printed as a line of its own."""
    # The buffer starts where the last match ended: at a line start, or mid-output.
    child.expect(r"(?:^|\n)" + _CSI + re.escape(text) + r"\r\n")


def run(child: pexpect.spawn, command: str, *replies: str) -> None:
    """Enter ``command``, wait for its reply lines and then for the next prompt.

    Waiting for the prompt matters before Ctrl-C or Ctrl-D: between two prompts the
    terminal is in line mode, where the kernel, not the shell, would act on them.
    """
    child.sendline(command)
    for reply in replies:
        expect_line(child, reply)
    child.expect_exact("kvstore>")


def leave(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus)


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
