"""``load`` and ``dump`` on a terminal draw a progress bar on standard error, and not
with ``--quiet`` or when standard error is not a terminal; the summary comes always."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from terminal_fixtures import leave, pexpect, spawn_shaledb

ROWS = 20_000


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """``shaledb ARGS`` with standard error captured: not a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "shaledb.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.fixture
def dump_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    lines = (json.dumps({"key": f"k{i:06d}", "value": "v" * 20}) for i in range(ROWS))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_draws_a_bar_then_the_summary(tmp_path: Path, dump_file: Path) -> None:
    child = spawn_shaledb(tmp_path, "load", str(tmp_path / "db"), "-i", str(dump_file), prompt=None)
    child.expect(r"loading \[[#.]{20}\]  [0-9,]+/20,000 entries  [0-9,]+ entries/s")
    child.expect(r"\r\x1b\[Kloaded 20,000 entries \([0-9.]+ [KM]B\) into \S+ in [0-9.]+ s\r\n")
    assert leave(child) == 0


def test_dump_draws_counts_and_rate(tmp_path: Path, dump_file: Path) -> None:
    run("load", str(tmp_path / "db"), "-i", str(dump_file))
    out = tmp_path / "out.jsonl"
    child = spawn_shaledb(tmp_path, "dump", str(tmp_path / "db"), "-o", str(out), prompt=None)
    child.expect(r"dumping  [0-9,]+ entries  [0-9,]+ entries/s")
    child.expect(r"dumped 20,000 entries \([0-9.]+ [KM]B\) from \S+ in [0-9.]+ s\r\n")
    assert leave(child) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == ROWS


def test_quiet_on_a_terminal_prints_only_the_summary(tmp_path: Path, dump_file: Path) -> None:
    child = spawn_shaledb(
        tmp_path, "load", str(tmp_path / "db"), "-i", str(dump_file), "--quiet", prompt=None
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert child.before.startswith("loaded 20,000 entries (")
    assert "\r" not in child.before.rstrip("\r\n") and "[" not in child.before


def test_piped_output_gets_only_the_summary(tmp_path: Path, dump_file: Path) -> None:
    result = run("load", str(tmp_path / "db"), "-i", str(dump_file))
    assert result.stderr.startswith("loaded 20,000 entries (") and result.stderr.count("\n") == 1
    assert "\r" not in result.stderr and "loading" not in result.stderr
