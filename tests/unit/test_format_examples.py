"""The worked examples of docs/format.md, byte for byte: keep the two in step."""

from __future__ import annotations

import json
import os
from pathlib import Path

import shaledb
from shaledb.cli.operations import dump_lines, parse_line
from shaledb.engine import block
from shaledb.engine.memory import MemoryEngine


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace("|", ""))


def test_wal_record_of_the_first_put(tmp_path: Path) -> None:
    # "Logs", worked example: db.put("k", "v"), the first write of a new database.
    with shaledb.open(tmp_path) as db:
        db.put("k", "v")
    wal = (tmp_path / "000001.wal").read_bytes()
    assert wal == _hex(
        "33 51 ff 75 | 18 00 | 11 | 01 00 00 00 00 00 00 00 | 01 00 00 00 |"
        " 30 02 00 00 00 01 00 00 00 | 00 6b 76"
    )
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".wal")) == ["000001.wal"]


def test_three_entry_data_block() -> None:
    # "Blocks", worked example: keys a, b, c; values 1, 2, 3; flags 0.
    contents = block.encode([b"a", b"b", b"c"], bytes(3), [b"1", b"2", b"3"])
    assert len(contents) == 37
    assert contents == _hex(
        "61 62 63 | 31 32 33 | 00 00 00 | 01 00 00 00 02 00 00 00 03 00 00 00 |"
        " 01 00 00 00 02 00 00 00 03 00 00 00 | 03 00 00 00"
    )
    assert block.seal(contents, block.COMPRESSION_NONE) == contents + _hex("00 | 73 f4 d2 d2")
    sealed = block.seal(contents, block.COMPRESSION_LZ4)
    assert len(sealed) == 32 + block.TRAILER_SIZE
    assert sealed.startswith(_hex("25 00 00 00 | fa 03 61 62"))
    assert sealed.endswith(_hex("01 | 35 0c b0 4a"))


def test_dump_lines_of_the_worked_example() -> None:
    # "Dump format", worked example (the ttl line is left out: its value is a clock reading).
    db = shaledb.DB.over(MemoryEngine())
    db.put("user:1000", "John Doe")
    table = db.create_namespace("iti").create_table("collaborators")
    table.put(b"\x00id", b"\xff\x01")
    table.put("collaborator1", b"sief")
    lines = list(dump_lines(db))
    assert lines == [
        '{"namespace": "default", "table": "default", "key": "user:1000", "value": "John Doe"}',
        '{"namespace": "iti", "table": "collaborators", "key": "AGlk", "key_encoding": "base64",'
        ' "value": "/wE=", "encoding": "base64"}',
        '{"namespace": "iti", "table": "collaborators", "key": "collaborator1",'
        ' "value": "c2llZg==", "encoding": "base64"}',
    ]
    assert [parse_line(line, n) for n, line in enumerate(lines, 1)] == [
        ("default", "default", "user:1000", "John Doe", None),
        ("iti", "collaborators", b"\x00id", b"\xff\x01", None),
        ("iti", "collaborators", "collaborator1", b"sief", None),
    ]
    ttl_line = '{"namespace": "default", "table": "default", "key": "s", "value": "v", "ttl": 1.5}'
    assert parse_line(ttl_line, 1)[4] == json.loads(ttl_line)["ttl"]
