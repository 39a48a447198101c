"""Telling a hash-log store from anything else on disk, without opening it."""

from __future__ import annotations

from shaledb.engine import filenames
from shaledb.engine.fs import FileSystem
from shaledb.engine.hashlog.index_file import INDEX_MAGIC
from shaledb.engine.hashlog.records import DATA_MAGIC
from shaledb.errors import StorageError


def is_hashlog_directory(path: str, fs: FileSystem | None = None) -> bool:
    """Whether ``path`` is a directory holding a ``HASHLOG`` identity file."""
    fs = fs or FileSystem()
    return fs.exists(filenames.path(path, filenames.HASHLOG))


def is_hashlog_data_file(path: str, fs: FileSystem | None = None) -> bool:
    """Whether ``path`` is a file starting with the hash-log data-file magic."""
    return _starts_with(path, DATA_MAGIC, fs)


def is_hashlog_index_file(path: str, fs: FileSystem | None = None) -> bool:
    """Whether ``path`` is a file starting with the hash-log index-file magic."""
    return _starts_with(path, INDEX_MAGIC, fs)


def _starts_with(path: str, magic: bytes, fs: FileSystem | None) -> bool:
    fs = fs or FileSystem()
    if not fs.exists(path):
        return False
    try:
        file = fs.open_read(path)
    except StorageError:
        return False  # a directory, or unreadable: not a file we can use
    try:
        return file.read(0, len(magic)) == magic
    except StorageError:
        return False
    finally:
        file.close()
