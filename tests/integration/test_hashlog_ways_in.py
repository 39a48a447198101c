"""The hash-log engine through every way in, as real processes: the shell, the server
(JSON lines and RESP), and check, repair, backup, dump and load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from resp_fixtures import RespLink
from server_fixtures import Link, ServerProcess, run_shaledb
from test_shell import GOLDEN, run_cli, transcript

import shaledb


def engine_of(path: Path) -> str:
    with shaledb.open(str(path)) as db:
        return str(db.stats()["engine"])


def fill(path: Path, n: int = 300) -> None:
    with shaledb.open(str(path), engine="hashlog") as db:
        for i in range(n):
            db.put(f"k{i:05d}", f"value-{i:05d}")
        db.create_namespace("iti").create_table("people").put("p1", "sief")


def segments(path: Path) -> list[Path]:
    return sorted(path.glob("*.hld"))


# -- the shell ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", GOLDEN)
def test_every_shell_transcript_runs_on_the_hash_log_engine(name: str, tmp_path: Path) -> None:
    script, expected = transcript(name)
    result = run_cli("--engine", "hashlog", "--data-dir", str(tmp_path / "data"), stdin=script)
    assert (result.stdout, result.stderr, result.returncode) == (expected, "", 0)
    assert (tmp_path / "data" / "HASHLOG").exists()


def test_shell_data_survives_and_the_engine_is_detected(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    first, second = transcript("persist_1"), transcript("persist_2")
    result = run_cli("--engine", "hashlog", "--data-dir", data, stdin=first[0])
    assert (result.stdout, result.returncode) == (first[1], 0)
    result = run_cli("--data-dir", data, stdin=second[0])  # no --engine: detected
    assert (result.stdout, result.returncode) == (second[1], 0)
    assert engine_of(tmp_path / "data") == "hashlog"


def test_shell_with_the_other_engine_is_one_error_line(tmp_path: Path) -> None:
    fill(tmp_path / "data")
    before = {p.name: p.read_bytes() for p in (tmp_path / "data").iterdir() if p.is_file()}
    result = run_cli("--engine", "lsm", "--data-dir", str(tmp_path / "data"), stdin="exit\n")
    assert result.returncode == 1
    assert result.stdout.startswith("[ERROR] ") and "not an LSM one" in result.stdout
    after = {p.name: p.read_bytes() for p in (tmp_path / "data").iterdir() if p.is_file()}
    assert after == before
    bad = run_cli("--engine", "btree", "--data-dir", str(tmp_path / "x"), stdin="exit\n")
    assert bad.returncode == 2 and "'lsm', 'hashlog'" in bad.stderr


# -- the server --------------------------------------------------------------------------


def test_serve_with_the_hash_log_engine_speaks_json_lines_and_resp(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir, "--engine", "hashlog").start()
    try:
        link = Link(server.port)
        assert link.call({"command": "put", "key": "mykey", "value": "myvalue"}) == {
            "status": "ok",
            "message": "Key-value pair stored",
        }
        assert link.call({"command": "get", "key": "mykey"}) == {"status": "ok", "value": "myvalue"}
        reply = link.call({"command": "batch_put", "keys": ["k1", "k2"], "values": ["v1", "v2"]})
        assert reply["status"] == "ok"
        assert link.call({"command": "get_range", "start_key": "k1", "end_key": "k2"}) == {
            "status": "ok",
            "data": [["k1", "v1"], ["k2", "v2"]],
        }
        link.close()
        resp = RespLink(server.port)
        assert resp.call("SET", "redis-key", "redis-value") == "OK"
        assert resp.call("GET", "redis-key") == b"redis-value"
        assert resp.call("GET", "mykey") == b"myvalue"
        assert resp.call("DEL", "k1") == 1
        resp.close()
    finally:
        assert server.stop() == 0
    with shaledb.open(str(data_dir)) as db:
        assert db.stats()["engine"] == "hashlog"
        # RESP stores bytes, JSON lines str: each comes back as it went in.
        assert dict(db.scan()) == {"mykey": "myvalue", "k2": "v2", b"redis-key": b"redis-value"}


def test_serve_refuses_the_other_engine(tmp_path: Path) -> None:
    fill(tmp_path / "data")
    result = run_shaledb("serve", "--engine", "lsm", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert "not an LSM one" in result.stderr


def test_engine_is_refused_where_there_is_no_directory_to_pick_it_for() -> None:
    in_memory = run_shaledb("serve", "--in-memory", "--engine", "hashlog")
    assert in_memory.returncode == 2 and "--in-memory keeps no files" in in_memory.stderr
    remote = run_cli("--connect", "127.0.0.1:1", "--engine", "hashlog", stdin="exit\n")
    assert remote.returncode == 2  # a usage error, as serve's above
    message = "--engine picks the engine of --data-dir; a server has its own"
    assert remote.stdout == f"[ERROR] {message}\n"


# -- the operations ----------------------------------------------------------------------


def test_check_repair_and_check_again_on_a_hash_log_directory(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    fill(db_dir)
    healthy = run_shaledb("check", str(db_dir))
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert healthy.stdout.strip().splitlines()[-1].startswith(f"OK: {db_dir} is healthy (")
    segment = segments(db_dir)[0]
    data = bytearray(segment.read_bytes())
    at = data.index(b"value-00010")
    data[at] ^= 0xFF  # one record's value: its CRC fails, whole records follow
    segment.write_bytes(bytes(data))
    damaged = run_shaledb("check", str(db_dir))
    assert damaged.returncode == 1, damaged.stdout + damaged.stderr
    assert f"DAMAGED: {segment}" in damaged.stdout
    assert f"'shaledb repair {db_dir}' salvages the rest" in damaged.stdout
    repaired = run_shaledb("repair", str(db_dir))
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert repaired.stdout.strip().splitlines()[-1].startswith(f"repaired {db_dir}: ")
    again = run_shaledb("check", str(db_dir))
    assert again.returncode == 0, again.stdout + again.stderr
    with shaledb.open(str(db_dir)) as db:
        assert db.stats()["engine"] == "hashlog"
        kept = dict(db.scan())
        assert db.namespace("iti").table("people").get("p1") == "sief"
    assert "k00010" not in kept and len(kept) == 299
    assert all(v == f"value-{k[1:]}" for k, v in kept.items())


def test_check_refuses_a_hash_log_directory_in_use(tmp_path: Path) -> None:
    with shaledb.open(str(tmp_path / "db"), engine="hashlog") as db:
        db.put("a", "1")
        result = run_shaledb("check", str(tmp_path / "db"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "locked" in result.stderr


def test_backup_of_an_open_hash_log_directory(tmp_path: Path) -> None:
    src, dest = tmp_path / "db", tmp_path / "copy"
    with shaledb.open(str(src), engine="hashlog") as db:
        for i in range(500):
            db.put(f"k{i:04d}", str(i))
        db.delete("k0005")
        result = run_shaledb("backup", str(src), str(dest))
        assert result.returncode == 0, result.stderr
        db.put("after", "backup")
    assert (dest / "HASHLOG").exists()
    with shaledb.open(str(dest)) as copy:
        assert copy.stats()["engine"] == "hashlog"
        assert dict(copy.scan()) == {f"k{i:04d}": str(i) for i in range(500) if i != 5}


def test_dump_a_hash_log_directory_and_load_it_into_either_engine(tmp_path: Path) -> None:
    src = tmp_path / "db"
    with shaledb.open(str(src), engine="hashlog") as db:
        db.put("text", "plain")
        db.put(b"\xff\x00", b"\x01\x02")
        db.put("soon", "gone later", ttl=3600)
        db.create_namespace("iti").create_table("people").put("p1", "sief")
    dump_file = tmp_path / "dump.jsonl"
    dumped = run_shaledb("dump", str(src), "--output", str(dump_file))
    assert dumped.returncode == 0, dumped.stderr
    lines = [json.loads(line) for line in dump_file.read_text().splitlines()]
    assert {"namespace": "iti", "table": "people", "key": "p1", "value": "sief"} in lines
    assert len(lines) == 4
    for engine, target in (("hashlog", tmp_path / "hl"), ("lsm", tmp_path / "lsm")):
        loaded = run_shaledb("load", str(target), "--engine", engine, "--input", str(dump_file))
        assert loaded.returncode == 0, loaded.stderr
        with shaledb.open(str(target)) as copy:
            assert copy.stats()["engine"] == engine
            assert copy.get("text") == "plain" and copy.get(b"\xff\x00") == b"\x01\x02"
            ttl = copy.ttl("soon")
            assert ttl is not None and 3500 < ttl <= 3600
            assert copy.namespace("iti").table("people").get("p1") == "sief"
    # Loading into a directory of the other engine is refused before anything is written.
    before = {p.name: p.read_bytes() for p in (tmp_path / "lsm").iterdir() if p.is_file()}
    refused = run_shaledb(
        "load", str(tmp_path / "lsm"), "--engine", "hashlog", stdin='{"key": "k", "value": "v"}\n'
    )
    assert refused.returncode == 1 and "not a hash-log one" in refused.stderr
    after = {p.name: p.read_bytes() for p in (tmp_path / "lsm").iterdir() if p.is_file()}
    assert after == before
