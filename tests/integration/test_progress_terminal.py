"""Long commands on a terminal show their progress on standard error (``load`` and
``dump`` a bar or counts, ``repair``, ``backup`` and the shell's ``compact`` the bytes
written), and not with ``--quiet`` or when standard error is not a terminal; the
summary comes always."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from terminal_fixtures import leave, pexpect, spawn_shaledb

import shaledb

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


def fill(directory: Path, n: int) -> None:
    """A database whose compaction and repair take a while: overwritten keys, many files."""
    with shaledb.open(str(directory), memtable_size=5000, background_compaction=False) as db:
        for i in range(n):
            db.put(f"k{i % (n // 2):07d}", "v" * 50)
        db.flush()


def test_repair_and_the_shells_compact_tick_on_a_terminal(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    fill(db_dir, 150_000)
    shell = spawn_shaledb(tmp_path, "shell", "--data-dir", str(db_dir), prompt="kvstore>")
    shell.sendline("compact default")
    shell.expect(r"compacting default:default  [0-9.]+ [KM]?B(ytes)?  [0-9.]+ \S+/s  \d+\.\d s")
    # The ticker's line is cleared, and the promised line takes its place.
    shell.expect_exact("\r\x1b[K[OK] Compacted default:default into one file.\r\n")
    shell.expect_exact("kvstore>")
    shell.sendeof()
    assert leave(shell) == 0

    # Twice the shell's data: a repair is faster than a compaction, and it must run for
    # a few of the ticker's 0.1 s redraws on a fast machine too.
    fill(tmp_path / "db2", 300_000)
    child = spawn_shaledb(tmp_path, "repair", str(tmp_path / "db2"), prompt=None)
    child.expect(r"repairing \S+  [0-9.]+ [KM]?B(ytes)?  [0-9.]+ \S+/s  \d+\.\d s")
    child.expect(r"repaired \S+: kept 150,000 entries in \d+ SST files in ")
    assert leave(child) == 0


def test_backup_and_repair_with_quiet_print_only_the_summary(tmp_path: Path) -> None:
    fill(tmp_path / "db", 20_000)
    backup = run("backup", str(tmp_path / "db"), str(tmp_path / "copy"), "--quiet")
    assert backup.stderr == "" and backup.stdout.count("\n") == 1
    assert backup.stdout.startswith(f"backed up {tmp_path / 'db'} to {tmp_path / 'copy'}: ")
    child = spawn_shaledb(tmp_path, "repair", str(tmp_path / "copy"), "--quiet", prompt=None)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "repairing" not in child.before and "\x1b[K" not in child.before
    assert re.search(r"repaired \S+: kept 10,000 entries", child.before)
