"""Telling a hash-log store from anything else on disk, without opening it."""

from __future__ import annotations

from shaledb.engine import filenames
from shaledb.engine.fs import FileSystem
from shaledb.engine.hashlog.index_file import INDEX_MAGIC
from shaledb.engine.hashlog.records import DATA_MAGIC
from shaledb.errors import InvalidArgumentError, StorageError


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


def check_pair(data_path: str, index_path: str, fs: FileSystem | None = None) -> None:
    """Refuse a two-file pair whose files are not what they should be, changing nothing.

    Raises:
        InvalidArgumentError: a non-empty ``data_path`` without the data magic, a
            non-empty ``index_path`` without the index magic, or an index beside an
            empty or missing data file (another store's index: the pair swapped, even
            while that store is open).
        StorageError: a file cannot be read.
    """
    fs = fs or FileSystem()
    data_size, index_size = _size(data_path, fs), _size(index_path, fs)
    if data_size and not is_hashlog_data_file(data_path, fs):
        raise InvalidArgumentError(
            f"{data_path} is not a hash-log data file (it does not start with the "
            "hash-log magic); it is left untouched: give a new or empty file"
        )
    if index_size and not is_hashlog_index_file(index_path, fs):
        raise InvalidArgumentError(
            f"{index_path} is not a hash-log index file (it does not start with the "
            "hash-log index magic); it is left untouched: give a new or empty file"
        )
    if index_size and not data_size:
        raise InvalidArgumentError(
            f"{index_path} is the index of a hash-log store, but {data_path} holds no "
            "data; it is left untouched: give the data file it belongs to, or a new "
            "index path"
        )


def _size(path: str, fs: FileSystem) -> int:
    """The size of file ``path`` (0 when there is none)."""
    return fs.size(path) if fs.exists(path) else 0
