"""A consistent copy of a database directory, even while another process writes to it.

Used by ``shaledb backup``. The copy never takes the lock, so a running server keeps
serving. Tables are immutable, so they are hard-linked (copied across file systems);
the manifest and the WALs still being appended are copied byte for byte. If the live
set changed while copying (a table named by the copied manifest is gone, or CURRENT
moved), the copy starts again. A WAL copied mid-append may end in a torn record,
which recovery drops: the copy holds every write acknowledged before the copy began.
"""

from __future__ import annotations

import os
import shutil

from shaledb.engine import filenames
from shaledb.engine.filenames import FileKind
from shaledb.engine.fs import FileSystem
from shaledb.engine.manifest import ManifestState, decode_current, read_current
from shaledb.errors import ShaleDBError, StorageError

_ATTEMPTS = 20


def backup_directory(source: str, dest: str, fs: FileSystem | None = None) -> int:
    """Copy the database in ``source`` to the new directory ``dest``; returns bytes copied.

    Raises:
        StorageError: ``dest`` exists and is not empty, or the copy keeps failing.
        CorruptionError: the source's manifest is damaged.
    """
    fs = fs or FileSystem()
    if os.path.exists(dest) and os.listdir(dest):
        raise StorageError(f"backup destination {dest} exists and is not empty")
    last_error: Exception | None = None
    for _ in range(_ATTEMPTS):
        shutil.rmtree(dest, ignore_errors=True)
        fs.make_dirs(dest)
        try:
            copied = _copy_once(source, dest, fs)
        except (FileNotFoundError, _Moved, StorageError) as exc:
            last_error = exc
            continue
        fs.sync_dir(dest)
        return copied
    shutil.rmtree(dest, ignore_errors=True)
    raise StorageError(f"could not take a consistent copy of {source}: {last_error}")


class _Moved(ShaleDBError):
    """The source's live set changed during the copy."""


def _copy_once(source: str, dest: str, fs: FileSystem) -> int:
    current = fs.read_all(filenames.path(source, filenames.CURRENT))
    manifest_name = decode_current(current)
    copied = _copy(fs, source, dest, manifest_name)
    # Parse the copy, not the live file: the copy is what the backup will replay.
    state = read_current_from(fs, dest, manifest_name)
    for number in state.tables:
        name = filenames.table_name(number)
        try:
            os.link(filenames.path(source, name), filenames.path(dest, name))
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise _Moved(f"{name} was compacted away during the copy") from None
            copied += _copy(fs, source, dest, name)
    for name in fs.list_dir(source):
        parsed = filenames.parse(name)
        if parsed and parsed[0] is FileKind.WAL and parsed[1] >= state.log_number:
            copied += _copy(fs, source, dest, name)
    # Any edit logged meanwhile (a flush deletes a WAL, a compaction a table) means the
    # copied manifest may not match the copied files: start again.
    if fs.read_all(filenames.path(source, filenames.CURRENT)) != current or fs.size(
        filenames.path(source, manifest_name)
    ) != fs.size(filenames.path(dest, manifest_name)):
        raise _Moved("the manifest changed during the copy")
    return copied


def read_current_from(fs: FileSystem, directory: str, manifest_name: str) -> ManifestState:
    """Point ``directory``'s CURRENT at ``manifest_name`` and replay it."""
    fs.write_atomic(directory, filenames.CURRENT, (manifest_name + "\n").encode())
    state = read_current(fs, directory)
    if state is None:
        raise StorageError(f"{directory}: no manifest copied")
    return state


def _copy(fs: FileSystem, source: str, dest: str, name: str) -> int:
    data = fs.read_all(filenames.path(source, name))
    with open(filenames.path(dest, name), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return len(data)
