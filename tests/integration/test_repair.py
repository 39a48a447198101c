"""``shaledb repair``: every readable entry kept, newest version winning; nothing readable
destroyed; the catalog kept and table ids never reused; a crash at any step harmless.

Each test writes a real database, closes it, damages it the way a crash or a bad disk
would, repairs it and reopens it (docs/format.md, "Repair").
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tiny_lsm import small_lsm_options

import shaledb
from shaledb.engine.base import Op
from shaledb.engine.batch import encode_batch
from shaledb.engine.entry import KEY_STR, VALUE_STR
from shaledb.engine.record_log import MANIFEST_EDIT, frame, read_records
from shaledb.engine.repair import repair_directory
from shaledb.errors import CorruptionError

BUSY = small_lsm_options(memtable_size=20, level_size_ratio=2)


def manifest_of(directory: Path) -> Path:
    return directory / (directory / "CURRENT").read_text().splitlines()[0]


def edit_offsets(manifest: Path) -> list[int]:
    records, _ = read_records(manifest.read_bytes(), str(manifest), True, MANIFEST_EDIT)
    return [r.offset for r in records]


def contents(directory: Path) -> dict[str, str]:
    with shaledb.open(str(directory)) as db:
        return dict(db.scan())


def rounds_of_writes(directory: Path, rounds: int = 3, n: int = 300) -> dict[str, str]:
    """``rounds`` passes over ``n`` keys (later ones overwrite earlier ones and delete some),
    flushed and compacted along the way: versions of one key at several levels."""
    model: dict[str, str] = {}
    with shaledb.open(str(directory), **BUSY) as db:
        for r in range(rounds):
            for i in range(n):
                key = f"key{i:04d}"
                if r and i % 17 == 0:
                    db.delete(key)
                    model.pop(key, None)
                elif r == 0 or i % 3 == r % 3:
                    db.put(key, f"r{r}-{i}")
                    model[key] = f"r{r}-{i}"
            if r == 0:
                db.compact()
        db.put("in-the-wal", "only")  # left in the WAL by close
        model["in-the-wal"] = "only"
    return model


def test_a_truncated_manifest_loses_nothing(data_dir: Path) -> None:
    model = rounds_of_writes(data_dir)
    manifest = manifest_of(data_dir)
    # The manifest written at the last open holds one snapshot; reopen and flush so that
    # the live tables are made by edits after it, then cut every edit but the first.
    with shaledb.open(str(data_dir), **BUSY) as db:
        for i in range(0, 300, 2):
            db.put(f"key{i:04d}", f"late-{i}")
            model[f"key{i:04d}"] = f"late-{i}"
        db.flush()
        db.compact()
        db.put("unflushed", "yes")
        model["unflushed"] = "yes"
    manifest = manifest_of(data_dir)
    offsets = edit_offsets(manifest)
    assert len(offsets) > 3
    os.truncate(manifest, offsets[1])
    report = repair_directory(str(data_dir))
    assert contents(data_dir) == model
    assert report.entries_kept >= len(model)


@pytest.mark.parametrize("how", ["zeroed", "flipped"])
def test_manifest_damaged_after_its_first_edit_loses_nothing(data_dir: Path, how: str) -> None:
    model = rounds_of_writes(data_dir, rounds=2)
    with shaledb.open(str(data_dir), **BUSY) as db:
        for i in range(300):
            db.put(f"key{i:04d}", f"v2-{i}")
            model[f"key{i:04d}"] = f"v2-{i}"
        db.flush()
    manifest = manifest_of(data_dir)
    second = edit_offsets(manifest)[1]
    data = bytearray(manifest.read_bytes())
    if how == "zeroed":
        data[second:] = bytes(len(data) - second)
    else:
        data[second + 10] ^= 0x04
    manifest.write_bytes(bytes(data))
    repair_directory(str(data_dir))
    assert contents(data_dir) == model


def test_a_damaged_current_keeps_the_catalog_and_table_ids_are_never_reused(
    data_dir: Path,
) -> None:
    with shaledb.open(str(data_dir), **BUSY) as db:
        secret = db.create_namespace("ns").create_table("secret")
        for i in range(50):
            secret.put(f"s{i}", f"secret-{i}")
            db.put(f"d{i}", f"default-{i}")
        db.flush()
    current = data_dir / "CURRENT"
    raw = bytearray(current.read_bytes())
    raw[3] ^= 0x01
    current.write_bytes(bytes(raw))
    with pytest.raises(CorruptionError):
        shaledb.open(str(data_dir))
    repair_directory(str(data_dir))
    with shaledb.open(str(data_dir)) as db:
        assert db.list_namespaces() == ["default", "ns"]
        table = db.namespace("ns").table("secret")
        assert table.get("s7") == "secret-7" and db.get("d7") == "default-7"
        fresh = db.namespace("ns").create_table("fresh")
        assert list(fresh.scan()) == []


def test_without_any_manifest_new_tables_never_inherit_forgotten_data(data_dir: Path) -> None:
    with shaledb.open(str(data_dir), **BUSY) as db:
        for name in ("a", "b", "c"):
            t = db.create_namespace(f"ns{name}").create_table("t")
            for i in range(30):
                t.put(f"k{i}", f"{name}-{i}")
        db.put("plain", "default")
        db.flush()
    for path in data_dir.iterdir():
        if path.name.startswith("MANIFEST-") or path.name == "CURRENT":
            path.unlink()
    report = repair_directory(str(data_dir))
    assert any("catalog" in line for line in report.lost)
    with shaledb.open(str(data_dir)) as db:
        assert db.get("plain") == "default"
        fresh = db.create_namespace("later").create_table("t")
        assert list(fresh.scan()) == []
        # The forgotten tables' data is kept and reachable under recovered names.
        recovered = db.namespace("recovered")
        found = {t: dict(recovered.table(t).scan()) for t in recovered.list_tables()}
    assert sorted(len(v) for v in found.values()) == [30, 30, 30]


def test_repair_never_applies_a_record_found_inside_a_value(data_dir: Path) -> None:
    with shaledb.open(str(data_dir)) as db:
        for i in range(10):
            db.put(f"k{i}", f"v{i}")
        forged = encode_batch(10**6, [Op(KEY_STR | VALUE_STR, b"\x00admin", 0, b"pwned")])
        db.put("note", b"x" * 40 + frame(1, forged) * 4 + b"y" * 300)
    wal = next(p for p in data_dir.iterdir() if p.suffix == ".wal")
    os.truncate(wal, wal.stat().st_size - 200)  # the write holding the value is torn
    copy = data_dir.parent / "copy"
    os.makedirs(copy)
    for p in data_dir.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    # The open drops the torn write and nothing else.
    with shaledb.open(str(data_dir)) as db:
        assert dict(db.scan()) == {f"k{i}": f"v{i}" for i in range(10)}
    # Repair of the same torn state never applies the embedded record.
    repair_directory(str(copy))
    assert contents(copy) == {f"k{i}": f"v{i}" for i in range(10)}


def test_newer_writes_in_the_wal_win_over_older_tables(data_dir: Path) -> None:
    with shaledb.open(str(data_dir), **BUSY) as db:
        for i in range(100):
            db.put(f"k{i:03d}", "old")
        db.compact()
        for i in range(0, 100, 2):
            db.put(f"k{i:03d}", "newer")
        db.flush()
    # Writes left in the WAL by close; the manifest then cut to its first edit.
    with shaledb.open(str(data_dir), memtable_size=1000) as db:
        for i in range(0, 100, 4):
            db.put(f"k{i:03d}", "newest")
        db.delete("k001")
    expected = {
        f"k{i:03d}": "newest" if i % 4 == 0 else "newer" if i % 2 == 0 else "old"
        for i in range(100)
        if i != 1
    }
    assert contents(data_dir) == expected
    manifest = manifest_of(data_dir)
    repair_directory(str(data_dir))
    assert contents(data_dir) == expected
    assert not manifest.exists()


def test_damaged_and_unused_inputs_are_kept_aside_in_lost(data_dir: Path) -> None:
    with shaledb.open(str(data_dir), block_size=256, compression="none") as db:
        for i in range(500):
            db.put(f"k{i:04d}", f"value-{i}")
        db.flush()
    table = next(p for p in data_dir.iterdir() if p.suffix == ".sst")
    data = bytearray(table.read_bytes())
    data[100] ^= 0xFF
    table.write_bytes(bytes(data))
    report = repair_directory(str(data_dir))
    assert any(table.name in line for line in report.lost)
    lost = data_dir / "lost"
    assert (lost / table.name).read_bytes() == bytes(data)
    kept = contents(data_dir)
    assert 400 < len(kept) < 500
    assert all(v == f"value-{int(k[1:])}" for k, v in kept.items())


def test_repair_of_a_healthy_database_changes_no_entry(data_dir: Path) -> None:
    model = rounds_of_writes(data_dir, rounds=2)
    repair_directory(str(data_dir))
    assert contents(data_dir) == model
    repair_directory(str(data_dir))
    assert contents(data_dir) == model
