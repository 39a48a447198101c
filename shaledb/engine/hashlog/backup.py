"""A consistent copy of a hash-log store, even while another process writes to it.

The copy never takes the lock. Sealed segments never change and the active one only
grows, so each file is copied as it is (to its temp name, fsynced, renamed); the copy of
the active segment may end in a torn record, which the copy's open drops. A merge
removes its inputs only after its output is in place, so a copy that found every file
it listed holds a state an open accepts (the duplicated records of a merge under way
are resolved by their sequence numbers); a listed file that vanished starts the copy
again. The directory form writes ``HASHLOG`` last, after the directory is fsynced, so a
copy cut short is refused on open instead of found incomplete.
"""

from __future__ import annotations

import contextlib
import os

from shaledb.engine import filenames
from shaledb.engine.fs import FileSystem
from shaledb.engine.hashlog.identity import is_hashlog_data_file
from shaledb.engine.hashlog.layout import Layout
from shaledb.errors import StorageError

_ATTEMPTS = 20


def backup_hashlog(source: str, dest: str, fs: FileSystem | None = None) -> int:
    """Copy the store at ``source`` to ``dest``; returns the bytes copied.

    ``source`` is a store directory (``dest`` a new directory), or a two-file store's
    data file (``dest`` the new data file; its catalog sidecar is copied too, and its
    index file is rebuilt from the data when the copy is first opened).

    Raises:
        StorageError: ``dest`` exists (a non-empty directory, or a file), or the copy
            keeps failing.
    """
    fs = fs or FileSystem()
    if is_hashlog_data_file(source, fs):
        return _copy_two_files(fs, source, dest)
    if fs.exists(dest) and fs.list_dir(dest):
        raise StorageError(f"backup destination {dest} exists and is not empty")
    if not fs.exists(filenames.path(source, filenames.HASHLOG)):
        raise StorageError(f"{source} is not a hash-log store (no {filenames.HASHLOG} file)")
    last_error: Exception | None = None
    for _ in range(_ATTEMPTS):
        fs.remove_tree(dest)
        fs.make_dirs(dest)
        try:
            copied = _copy_once(fs, source, dest)
        except StorageError as exc:
            last_error = exc
            continue
        fs.sync_dir(dest)
        copied += fs.copy_file(
            filenames.path(source, filenames.HASHLOG), filenames.path(dest, filenames.HASHLOG)
        )
        fs.sync_dir(dest)
        return copied
    fs.remove_tree(dest)
    raise StorageError(f"could not take a consistent copy of {source}: {last_error}")


def _copy_once(fs: FileSystem, source: str, dest: str) -> int:
    layout = Layout(source)
    copied = 0
    for number in layout.segment_numbers(fs):
        # Data before its index file: an index covering more than the copied data is
        # rebuilt on open, one covering less is carried on from.
        name = filenames.segment_name(number)
        copied += fs.copy_file(filenames.path(source, name), filenames.path(dest, name))
        index = filenames.segment_index_name(number)
        if fs.exists(filenames.path(source, index)):
            # Removed by a merge meanwhile: then rebuilt from the data on open.
            with contextlib.suppress(StorageError):
                copied += fs.copy_file(filenames.path(source, index), filenames.path(dest, index))
    catalog = filenames.path(source, filenames.HASHLOG_CATALOG)
    if fs.exists(catalog):
        copied += fs.copy_file(catalog, filenames.path(dest, filenames.HASHLOG_CATALOG))
    return copied


def _copy_two_files(fs: FileSystem, source: str, dest: str) -> int:
    if fs.exists(dest):
        raise StorageError(f"backup destination {dest} exists")
    copied = 0
    last_error: Exception | None = None
    for _ in range(_ATTEMPTS):
        try:
            # A compaction may replace the file between the reads: copy again then.
            copied = fs.copy_file(source, dest)
            break
        except StorageError as exc:
            last_error = exc
    else:
        raise StorageError(f"could not copy {source}: {last_error}")
    catalog = source + filenames.CATALOG_SUFFIX
    if fs.exists(catalog):
        copied += fs.copy_file(catalog, dest + filenames.CATALOG_SUFFIX)
    fs.sync_dir(os.path.dirname(os.path.abspath(dest)))
    return copied
