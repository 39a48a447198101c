"""The file-system layer: appends, atomic replacement, the directory lock, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shaledb.engine.fs import FileSystem
from shaledb.errors import LockedError, StorageError


def test_append_file_appends_and_truncates(tmp_path: Path) -> None:
    fs = FileSystem()
    path = str(tmp_path / "f")
    f = fs.open_append(path)
    f.write(b"hello ")
    f.write(b"world")
    f.sync()
    assert f.size == 11
    f.close()
    f.close()
    f = fs.open_append(path)
    assert f.size == 11
    f.write(b"!")
    f.close()
    assert Path(path).read_bytes() == b"hello world!"
    f = fs.open_append(path, truncate_to=5)
    f.write(b"?")
    f.close()
    assert Path(path).read_bytes() == b"hello?"


def test_random_access_reads(tmp_path: Path) -> None:
    fs = FileSystem()
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    f = fs.open_read(str(path))
    assert f.size == 10
    assert f.read(3, 4) == b"3456"
    assert f.read(8, 10) == b"89"  # short at the end of the file
    f.close()


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    fs = FileSystem()
    fs.write_atomic(str(tmp_path), "CURRENT", b"one\n")
    fs.write_atomic(str(tmp_path), "CURRENT", b"two\n")
    assert (tmp_path / "CURRENT").read_bytes() == b"two\n"
    assert os.listdir(tmp_path) == ["CURRENT"]


def test_list_exists_size_remove_rename(tmp_path: Path) -> None:
    fs = FileSystem()
    for name in ["b", "a", "c"]:
        (tmp_path / name).write_bytes(name.encode() * 3)
    assert fs.list_dir(str(tmp_path)) == ["a", "b", "c"]
    assert fs.exists(str(tmp_path / "a")) and fs.size(str(tmp_path / "a")) == 3
    fs.remove(str(tmp_path / "a"))
    fs.remove(str(tmp_path / "a"))  # already gone: fine
    fs.rename(str(tmp_path / "b"), str(tmp_path / "z"))
    assert fs.list_dir(str(tmp_path)) == ["c", "z"]
    assert fs.read_all(str(tmp_path / "z")) == b"bbb"


def test_os_errors_become_storage_errors_naming_the_path(tmp_path: Path) -> None:
    fs = FileSystem()
    missing = str(tmp_path / "missing")
    for action in (fs.read_all, fs.size, fs.open_read, fs.list_dir):
        with pytest.raises(StorageError, match="missing"):
            action(missing)
    with pytest.raises(StorageError, match="missing"):
        fs.rename(missing, str(tmp_path / "x"))
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError):
        fs.make_dirs(str(tmp_path / "file"))
    with pytest.raises(StorageError):
        fs.open_append(str(tmp_path / "no" / "such" / "dir"))


def test_make_dirs_creates_nested_directories(tmp_path: Path) -> None:
    FileSystem().make_dirs(str(tmp_path / "a" / "b"))
    FileSystem().make_dirs(str(tmp_path / "a" / "b"))
    assert (tmp_path / "a" / "b").is_dir()


def test_lock_is_exclusive_even_within_one_process(tmp_path: Path) -> None:
    fs = FileSystem()
    path = str(tmp_path / "LOCK")
    held = fs.lock(path)
    assert Path(path).read_text() == f"pid {os.getpid()}\n"
    with pytest.raises(LockedError) as info:
        fs.lock(path)
    assert "locked" in str(info.value) and f"pid {os.getpid()}" in str(info.value)
    held.release()
    held.release()
    again = fs.lock(path)
    again.release()
