"""Recovery: data survives close, abandonment and process death; leftovers are cleaned up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tiny_lsm import small_lsm_options

import shaledb
from shaledb.errors import CorruptionError

SMALL = small_lsm_options(level_size_ratio=2)


def files(directory: Path, suffix: str) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.endswith(suffix))


def test_data_survives_many_close_and_reopen_cycles(data_dir: Path, clock: Any) -> None:
    model: dict[str, str] = {}
    for cycle in range(6):
        with shaledb.open(str(data_dir), clock=clock, **SMALL) as db:
            assert dict(db.scan()) == model, cycle
            for i in range(60):
                key = f"k{(i * 7 + cycle) % 90:02d}"
                if i % 5 == 0:
                    db.delete(key)
                    model.pop(key, None)
                else:
                    db.put(key, f"{cycle}-{i}")
                    model[key] = f"{cycle}-{i}"
            if cycle % 2:
                db.compact()
    # Reopening does not pile up logs or manifests.
    with shaledb.open(str(data_dir)) as db:
        assert dict(db.scan()) == model
    assert len(files(data_dir, ".wal")) == 1
    assert len([n for n in os.listdir(data_dir) if n.startswith("MANIFEST-")]) == 1


def test_empty_reopens_do_not_grow_the_directory(data_dir: Path) -> None:
    with shaledb.open(str(data_dir)) as db:
        db.put("k", "v")
    shaledb.open(str(data_dir)).close()
    before = sorted(os.listdir(data_dir))
    for _ in range(5):
        shaledb.open(str(data_dir)).close()
    assert len(os.listdir(data_dir)) == len(before)
    with shaledb.open(str(data_dir)) as db:
        assert db.get("k") == "v"


def test_catalog_deletes_types_and_ttls_survive_reopen(data_dir: Path, clock: Any) -> None:
    with shaledb.open(str(data_dir), clock=clock, **SMALL) as db:
        t = db.create_namespace("iti").create_table("collaborators")
        t.put("collaborator1", "sief")
        t.put(b"raw", b"\x00\xff")
        db.put("doomed", "x")
        db.flush()
        db.delete("doomed")
        db.put("short", "lived", ttl=10)
        db.put("long", "lived", ttl=1000)
        db.create_namespace("gone").create_table("t").put("k", "v")
        db.drop_namespace("gone")
        sequence = db.stats()["sequence"]
    clock.advance(10)
    with shaledb.open(str(data_dir), clock=clock) as db:
        t = db.namespace("iti").table("collaborators")
        assert t.get("collaborator1") == "sief" and t.get(b"raw") == b"\x00\xff"
        assert db.get("doomed") is None and db.get("short") is None
        assert db.get("long") == "lived" and db.ttl("long") == pytest.approx(990)
        assert db.list_namespaces() == ["default", "iti"]
        assert db.stats()["sequence"] >= sequence
        db.put("next", "write")
        assert db.stats()["sequence"] > sequence


ABANDON = """
import os, sys, shaledb
directory, mode = sys.argv[1], sys.argv[2]
db = shaledb.open(directory, fsync=mode, memtable_size=int(sys.argv[3]))
t = db.create_namespace("ns").create_table("t")
for i in range(300):
    db.put(f"k{i:03d}", f"v{i}")
    if i % 3 == 0:
        db.delete(f"k{i - 1:03d}") if i else None
db.batch_put(["b1", "b2"], ["x", "y"])
t.put("in-table", "yes")
sys.stdout.write("DONE\\n")
sys.stdout.flush()
os._exit(0)  # no close: no final flush, no fsync, no lock release
"""


def expected_after_abandon() -> dict[str, str]:
    model = {}
    for i in range(300):
        model[f"k{i:03d}"] = f"v{i}"
        if i % 3 == 0 and i:
            model.pop(f"k{i - 1:03d}", None)
    model.update({"b1": "x", "b2": "y"})
    return model


@pytest.mark.parametrize(
    "mode,memtable", [("always", 1000), ("everysec", 7), ("never", 7), ("never", 100000)]
)
def test_data_survives_a_process_that_exits_without_close(
    data_dir: Path, subprocess_env: dict, mode: str, memtable: int
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", ABANDON, str(data_dir), mode, str(memtable)],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=120,
    )
    assert proc.stdout == "DONE\n", proc.stderr
    with shaledb.open(str(data_dir)) as db:  # the lock died with the process
        assert dict(db.scan()) == expected_after_abandon()
        assert db.namespace("ns").table("t").get("in-table") == "yes"


def test_orphan_tables_and_temp_files_are_removed_on_open(data_dir: Path) -> None:
    with shaledb.open(str(data_dir)) as db:
        db.batch_put([f"k{i}" for i in range(50)], ["v"] * 50)
        db.flush()
    live = files(data_dir, ".sst")
    (data_dir / "999999.sst").write_bytes(b"half-written table from a crashed flush")
    (data_dir / "000900.sst").write_bytes(b"")
    (data_dir / "CURRENT.tmp").write_bytes(b"MANIFEST-")
    (data_dir / "000123.sst.tmp").write_bytes(b"x" * 100)
    (data_dir / "README").write_text("not ours: left alone")
    with shaledb.open(str(data_dir)) as db:
        assert db.count() == 50
        db.put("new", "write")  # new file numbers do not collide with the orphans
        db.flush()
    names = os.listdir(data_dir)
    assert "999999.sst" not in names and "000900.sst" not in names
    assert not [n for n in names if n.endswith(".tmp")]
    assert "README" in names
    assert set(live) <= set(files(data_dir, ".sst"))
    with shaledb.open(str(data_dir)) as db:
        assert db.count() == 51


def test_missing_current_with_files_present_is_corruption(data_dir: Path) -> None:
    with shaledb.open(str(data_dir)) as db:
        db.put("k", "v")
        db.flush()
    (data_dir / "CURRENT").unlink()
    with pytest.raises(CorruptionError) as info:
        shaledb.open(str(data_dir))
    assert "CURRENT" in str(info.value) and "repair" in str(info.value)
    # Nothing was deleted by the refused open.
    assert files(data_dir, ".sst")
    # ...and the directory is not left locked.
    with pytest.raises(CorruptionError):
        shaledb.open(str(data_dir))


def test_opening_creates_missing_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c"
    with shaledb.open(str(path)) as db:
        db.put("k", "v")
    assert (path / "CURRENT").exists()


def test_a_file_where_the_directory_should_be(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(shaledb.StorageError):
        shaledb.open(str(path))


def test_recovered_wal_is_flushed_and_removed(data_dir: Path) -> None:
    with shaledb.open(str(data_dir)) as db:
        for i in range(100):
            db.put(f"k{i}", "v")
    wal = files(data_dir, ".wal")
    assert os.path.getsize(data_dir / wal[0]) > 0
    with shaledb.open(str(data_dir)) as db:
        assert db.count() == 100
        assert db.stats()["levels"][0]["files"] == 1
        assert db.stats()["memtable_entries"] == 0
    assert wal[0] not in files(data_dir, ".wal")


def test_missing_current_of_a_database_holding_only_its_catalog_is_corruption(
    data_dir: Path,
) -> None:
    """No data yet, but namespaces and tables: losing CURRENT must not silently reset them."""
    with shaledb.open(str(data_dir)) as db:
        db.create_namespace("ns").create_table("t")
    (data_dir / "CURRENT").unlink()
    with pytest.raises(CorruptionError, match="CURRENT"):
        shaledb.open(str(data_dir))
    assert [n for n in os.listdir(data_dir) if n.startswith("MANIFEST-")]
