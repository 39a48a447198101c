"""Running a ``shaledb`` command on a pseudo-terminal, for the terminal tests.

The terminal redraws its input line with control sequences, so a reply is matched as
a whole line: after a line break and any control sequences, the exact text, then the
line's end.
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


def spawn_shaledb(home: Path, *args: str, prompt: str | None) -> pexpect.spawn:
    """``shaledb ARGS`` on a terminal with ``$HOME`` at ``home``, once it shows ``prompt``
    (at once for None)."""
    shaledb = shutil.which("shaledb", path=str(Path(sys.executable).parent))
    assert shaledb, f"no shaledb script next to {sys.executable}"
    env = dict(
        os.environ,
        HOME=str(home),  # history files go to $HOME
        TERM="xterm",
        # The terminal here never answers cursor-position requests; do not ask.
        PROMPT_TOOLKIT_NO_CPR="1",
    )
    env.pop("SHALEDB_HISTORY", None)
    env.pop("SHALEDB_CLIENT_HISTORY", None)
    child = pexpect.spawn(
        shaledb, list(args), env=env, encoding="utf-8", timeout=10, dimensions=(24, 120)
    )
    if prompt is not None:
        child.expect_exact(prompt)
    return child


def expect_line(child: pexpect.spawn, text: str) -> None:
    """Wait for ``text`` to be printed as a line of its own."""
    # The buffer starts where the last match ended: at a line start, or mid-output.
    child.expect(r"(?:^|\n)" + _CSI + re.escape(text) + r"\r\n")


def run_typed(child: pexpect.spawn, prompt: str, command: str, *replies: str) -> None:
    """Enter ``command``, wait for its reply lines and then for the next ``prompt``.

    Waiting for the prompt matters before Ctrl-C or Ctrl-D: between two prompts the
    terminal is in line mode, where the kernel, not the program, would act on them.
    """
    child.sendline(command)
    for reply in replies:
        expect_line(child, reply)
    child.expect_exact(prompt)


def leave(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus)
