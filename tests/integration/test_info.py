"""``shaledb info``: an offline summary read from the manifest and the WALs, writing nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import shaledb


def info(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shaledb.cli.main", "info", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()}


def test_engine_levels_bytes_wal_sequence_and_tables(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    # No background compaction: the files stats() lists must still be there at close.
    options = {"memtable_size": 100, "compression": "none", "background_compaction": False}
    with shaledb.open(str(db_dir), **options) as db:
        for i in range(300):
            db.put(f"k{i:03d}", "v")
        people = db.create_namespace("iti").create_table("people")
        for i in range(100):
            people.put(f"p{i}", "x")
        db.flush()
        db.put("unflushed", "1")
        stats = db.stats()
    before = snapshot(db_dir)
    result = info(db_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    levels = [level for level in stats["levels"] if level["files"]]
    files = sum(level["files"] for level in levels)
    size = f"{sum(level['bytes'] for level in levels) / 1000:.1f} KB"
    assert lines[:2] == [f"directory: {db_dir}", "engine: lsm"]
    assert "last sequence: 401" in lines
    assert any(
        line.startswith("WAL: ") and line.endswith(", 1 entry not yet in an SST file")
        for line in lines
    ), lines
    assert f"SST files: {files}, {size}, 400 entries" in lines
    for level in levels:
        kb = f"{level['bytes'] / 1000:.1f} KB"
        assert f"  level {level['level']}: {level['files']} files, {kb}," in "\n".join(lines)
    assert "  default:default: 301" in lines and "  iti:people: 100" in lines
    assert snapshot(db_dir) == before  # nothing written, nothing removed


def test_a_table_sharing_an_sst_file_shows_a_lower_bound(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    with shaledb.open(str(db_dir)) as db:
        people = db.create_namespace("iti").create_table("people")
        for i in range(10):
            db.put(f"k{i}", "v")
            people.put(f"p{i}", "x")
        db.flush()  # one SST file holds both tables
        people.put("p-late", "y")
    lines = info(db_dir).stdout.splitlines()
    assert "  default:default: at least 0 (shares SST files)" in lines
    assert "  iti:people: at least 1 (shares SST files)" in lines


def test_a_directory_without_a_database(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = info(tmp_path / "empty")
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {tmp_path / 'empty'} holds no database "
        "(neither an LSM CURRENT nor a hash-log HASHLOG file)\n"
    )
    missing = info(tmp_path / "missing")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert not os.path.exists(tmp_path / "missing")


def test_a_hash_log_directory_is_summarized_from_its_files_and_catalog(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    with shaledb.open(str(db_dir), engine="hashlog") as db:
        db.create_namespace("iti").create_table("people").put("p", "x" * 1000)
        db.put("k", "v")
        data_bytes = db.stats()["data_bytes"]
    before = snapshot(db_dir)
    result = info(db_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "engine: hashlog" in lines
    segments = next(line for line in lines if line.startswith("data segments: "))
    assert segments.startswith("data segments: 1, ")
    assert f"{data_bytes:,} bytes" in segments or "KB" in segments
    assert "  iti:people" in lines and "  default:default" in lines
    assert snapshot(db_dir) == before  # read-only
