"""Which engine a directory holds (shaledb.engine.detect), and the choice an open makes."""

from __future__ import annotations

from pathlib import Path

import pytest

import shaledb
from shaledb.engine.detect import ENGINES, choose_engine, detect_engine
from shaledb.errors import InvalidArgumentError, StorageError


def lsm_dir(path: Path) -> Path:
    with shaledb.open(str(path), engine="lsm") as db:
        db.put("k", "v")
    return path


def hashlog_dir(path: Path) -> Path:
    with shaledb.open(str(path), engine="hashlog") as db:
        db.put("k", "v")
    return path


def test_a_missing_or_empty_directory_holds_no_engine(tmp_path: Path) -> None:
    assert detect_engine(str(tmp_path / "missing")) is None
    (tmp_path / "empty").mkdir()
    assert detect_engine(str(tmp_path / "empty")) is None
    # LOCK alone is what any open leaves first; both engines take it.
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "LOCK").write_text("pid 1\n")
    assert detect_engine(str(tmp_path / "locked")) is None


def test_each_engine_is_recognised_by_its_files(tmp_path: Path) -> None:
    assert detect_engine(str(lsm_dir(tmp_path / "lsm"))) == "lsm"
    assert detect_engine(str(hashlog_dir(tmp_path / "hl"))) == "hashlog"


def test_lsm_files_without_current_are_still_lsm(tmp_path: Path) -> None:
    # A first open cut short, or a backup cut short: the LSM open reports or clears them.
    path = tmp_path / "db"
    path.mkdir()
    (path / "000003.wal").write_bytes(b"")
    assert detect_engine(str(path)) == "lsm"


def test_hash_log_files_without_their_identity_file_are_not_lsm(tmp_path: Path) -> None:
    path = hashlog_dir(tmp_path / "hl")
    (path / "HASHLOG").unlink()
    (path / "000009.wal").write_bytes(b"")  # an LSM name beside them changes nothing
    before = sorted(p.name for p in path.iterdir())
    with pytest.raises(InvalidArgumentError, match="holds files of neither engine"):
        detect_engine(str(path))
    with pytest.raises(InvalidArgumentError, match="holds files of neither engine"):
        shaledb.open(str(path))
    assert sorted(p.name for p in path.iterdir()) == before


def test_lost_alone_is_neither_engine(tmp_path: Path) -> None:
    (tmp_path / "db" / "lost").mkdir(parents=True)
    with pytest.raises(InvalidArgumentError, match=r"neither engine \(lost\)"):
        detect_engine(str(tmp_path / "db"))


def test_files_of_neither_engine_are_refused_and_named(tmp_path: Path) -> None:
    path = tmp_path / "photos"
    path.mkdir()
    (path / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(
        InvalidArgumentError, match=r"holds files of neither engine \(holiday.jpg\)"
    ):
        detect_engine(str(path))


def test_a_file_is_not_a_directory(tmp_path: Path) -> None:
    plain = tmp_path / "notes.txt"
    plain.write_text("hello")
    with pytest.raises(StorageError, match="exists and is not a directory"):
        detect_engine(str(plain))
    with shaledb.KeyValueStore(str(tmp_path / "data.txt"), str(tmp_path / "index.txt")) as s:
        s.set("k", "v")
    with pytest.raises(StorageError, match=r"hash-log data file.*KeyValueStore"):
        detect_engine(str(tmp_path / "data.txt"))


def test_choose_engine(tmp_path: Path) -> None:
    new = str(tmp_path / "new")
    assert choose_engine(new, None) == "lsm"
    assert choose_engine(new, None, default="hashlog") == "hashlog"
    assert choose_engine(new, "hashlog") == "hashlog"
    lsm = str(lsm_dir(tmp_path / "lsm"))
    assert choose_engine(lsm, None, default="hashlog") == "lsm"
    with pytest.raises(InvalidArgumentError, match="holds an LSM database, not a hash-log one"):
        choose_engine(lsm, "hashlog")
    with pytest.raises(
        InvalidArgumentError, match="unknown engine 'btree'; accepted engines: lsm, hashlog"
    ):
        choose_engine(new, "btree")
    assert ENGINES == ("lsm", "hashlog")
