"""The operations commands, run as real processes: check, repair, backup, dump, load."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import shaledb


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shaledb.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def fill(path: Path, n: int = 3000) -> None:
    with shaledb.open(str(path), memtable_size=500, block_size=512, compression="none") as db:
        for i in range(n):
            db.put(f"k{i:05d}", f"value-{i}")
        db.flush()


def flip_byte_in_first_data_block(path: Path) -> Path:
    table = sorted(path.glob("*.sst"))[0]
    data = bytearray(table.read_bytes())
    data[100] ^= 0xFF
    table.write_bytes(bytes(data))
    return table


def test_check_reports_a_healthy_database(tmp_path: Path) -> None:
    fill(tmp_path / "db")
    result = run("check", str(tmp_path / "db"))
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    # SST files, never "tables", which users read as their own tables.
    assert re.fullmatch(
        rf"OK: {re.escape(str(tmp_path / 'db'))} is healthy \(\d+ SST files, 3000 SST entries, "
        r"\d+ WAL records\)",
        last,
    ), last


def test_check_names_the_damaged_file_and_offset_and_repair_salvages_the_rest(
    tmp_path: Path,
) -> None:
    db_dir = tmp_path / "db"
    fill(db_dir)
    table = flip_byte_in_first_data_block(db_dir)
    result = run("check", str(db_dir))
    assert result.returncode == 1
    assert f"DAMAGED: {table}: data block at offset 0 fails its checksum" in result.stdout
    repaired = run("repair", str(db_dir))
    assert repaired.returncode == 0, repaired.stderr
    assert "dropped:" in repaired.stdout and str(table) in repaired.stdout
    assert run("check", str(db_dir)).returncode == 0
    with shaledb.open(str(db_dir)) as db:
        kept = dict(db.scan())
    assert 2000 < len(kept) < 3000  # one small block's keys are gone, nothing else
    assert all(v == f"value-{int(k[1:])}" for k, v in kept.items())


def test_check_refuses_a_directory_in_use(tmp_path: Path) -> None:
    with shaledb.open(str(tmp_path / "db")) as db:
        db.put("a", "1")
        result = run("check", str(tmp_path / "db"))
    assert result.returncode == 2
    assert "locked" in result.stderr


def test_backup_copies_a_database_that_is_open_and_changing(tmp_path: Path) -> None:
    src, dest = tmp_path / "db", tmp_path / "copy"
    with shaledb.open(str(src), memtable_size=200) as db:
        for i in range(1000):
            db.put(f"k{i:04d}", str(i))
        db.delete("k0005")
        result = run("backup", str(src), str(dest))
        assert result.returncode == 0, result.stderr
        db.put("after", "backup")  # not in the copy
    with shaledb.open(str(dest)) as copy:
        items = dict(copy.scan())
    expected = {f"k{i:04d}": str(i) for i in range(1000) if i != 5}
    assert items == expected
    again = run("backup", str(src), str(dest))
    assert again.returncode == 1 and "not empty" in again.stderr


def test_dump_and_load_round_trip_types_tables_and_ttl(tmp_path: Path) -> None:
    with shaledb.open(str(tmp_path / "db")) as db:
        db.put("text", "plain")
        db.put(b"\xff\x00", b"\x01\x02")
        db.put("soon", "gone later", ttl=3600)
        db.create_namespace("iti").create_table("people").put("p1", "sief")
    dump_file = tmp_path / "dump.jsonl"
    assert run("dump", str(tmp_path / "db"), "--output", str(dump_file)).returncode == 0
    lines = [json.loads(line) for line in dump_file.read_text().splitlines()]
    assert {"namespace": "iti", "table": "people", "key": "p1", "value": "sief"} in lines
    loaded = run("load", str(tmp_path / "copy"), "--input", str(dump_file))
    assert loaded.returncode == 0, loaded.stderr
    with shaledb.open(str(tmp_path / "copy")) as copy:
        assert copy.get("text") == "plain"
        assert copy.get(b"\xff\x00") == b"\x01\x02"
        ttl = copy.ttl("soon")
        assert ttl is not None and 3500 < ttl <= 3600
        assert copy.namespace("iti").table("people").get("p1") == "sief"


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("not json", "line 2: not JSON"),
        ('{"key": 1, "value": "v"}', "line 2: 'key' must be a string"),
        ('{"key": "k", "value": "v", "ttl": -1}', "line 2: ttl must be a positive number"),
        ('{"key": "k", "value": "v", "ttl": NaN}', "line 2: ttl must be a positive number"),
        ('{"key": "k", "value": "v", "ttl": Infinity}', "line 2: ttl must be a positive"),
        ('{"key": "k", "value": "v", "ttl": 1e300}', "line 2: ttl must be a positive number"),
        ('{"key": "k", "value": "v", "ttl": "5"}', "line 2: 'ttl' must be a positive number"),
        ('{"key": "", "value": "v"}', "line 2: key must not be empty"),
        ('{"key": "\\ud800", "value": "v"}', "line 2: key is not encodable as UTF-8"),
        ("[" * 100_000, "line 2: not a dump line (JSON nested too deeply)"),
        (
            '{"key": "k", "value": "@@", "encoding": "base64"}',
            "line 2: 'value' is not valid base64",
        ),
    ],
)
def test_load_checks_the_whole_input_before_writing(
    tmp_path: Path, bad_line: str, message: str
) -> None:
    script = '{"key": "good", "value": "1"}\n' + bad_line + "\n"
    result = run("load", str(tmp_path / "db"), stdin=script)
    assert result.returncode == 1
    assert message in result.stderr and "nothing was loaded" in result.stderr
    with shaledb.open(str(tmp_path / "db")) as db:
        assert db.get("good") is None


def test_load_names_the_line_that_is_not_utf8(tmp_path: Path) -> None:
    source = tmp_path / "dump.jsonl"
    good = b'{"key": "good", "value": "1"}\n'
    source.write_bytes(good * 3 + b'{"key": "k", "value": "\xff"}\n')
    result = run("load", str(tmp_path / "db"), "--input", str(source))
    assert result.returncode == 1
    assert "line 4: not UTF-8 (byte 0xff at column 24)" in result.stderr
    assert "nothing was loaded" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [("check",), ("repair",), ("dump", "--output", "-"), ("load", "--input", "{input}")],
)
def test_every_tool_exits_2_on_a_locked_directory(tmp_path: Path, args: tuple[str, ...]) -> None:
    source = tmp_path / "dump.jsonl"
    source.write_text("")
    with shaledb.open(str(tmp_path / "db")) as db:
        db.put("a", "1")
        command = [a.replace("{input}", str(source)) for a in args]
        result = run(command[0], str(tmp_path / "db"), *command[1:])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "locked" in result.stderr


def test_check_reports_a_manifest_that_lost_an_acted_on_edit(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    fill(db_dir, 600)
    manifest = db_dir / (db_dir / "CURRENT").read_text().splitlines()[0]
    data = manifest.read_bytes()
    manifest.write_bytes(data[: len(data) - 40])  # the last edits are torn away
    result = run("check", str(db_dir))
    assert result.returncode == 1, result.stdout
    assert "DAMAGED:" in result.stdout and ".wal" in result.stdout


def test_check_reports_a_database_whose_current_is_missing(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    fill(db_dir)
    (db_dir / "CURRENT").unlink()
    result = run("check", str(db_dir))
    assert result.returncode == 1, result.stdout
    assert "CURRENT is missing but database files exist" in result.stdout
    assert run("repair", str(db_dir)).returncode == 0
    with shaledb.open(str(db_dir)) as db:
        assert db.count() == 3000
