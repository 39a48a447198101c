"""A consistent copy of a database directory, even while another process writes to it.

Used by ``shaledb backup``. The copy never takes the lock, so a running server keeps
serving. Tables are immutable, so they are hard-linked (copied across file systems);
the manifest and the WALs still being appended are copied byte for byte. If the live
set changed while copying (a table named by the copied manifest is gone, or CURRENT
moved), the copy starts again. A WAL copied mid-append may end in a torn record,
which recovery drops: the copy holds every write acknowledged before the copy began.

Every file operation goes through :class:`~shaledb.engine.fs.FileSystem`. Each file is
copied to its temp name (:func:`~shaledb.engine.filenames.temp_name`), fsynced and
renamed; CURRENT is written last, after the directory is fsynced, so a copy cut short
by a crash has no CURRENT and opening it says so instead of finding tables missing.

A hash-log directory (:mod:`shaledb.engine.detect`) is copied by the hash-log engine's
own ``backup_hashlog``.
"""

from __future__ import annotations

from shaledb.engine import filenames
from shaledb.engine.detect import HASHLOG, detect_engine
from shaledb.engine.filenames import FileKind
from shaledb.engine.fs import FileSystem
from shaledb.engine.manifest import ManifestState, decode_current, encode_current, read_manifest
from shaledb.errors import ShaleDBError, StorageError

_ATTEMPTS = 20


def backup_directory(source: str, dest: str, fs: FileSystem | None = None) -> int:
    """Copy the database in ``source``, of either engine, to the new directory ``dest``;
    returns bytes copied.

    Raises:
        StorageError: ``dest`` exists and is not empty, or the copy keeps failing.
        CorruptionError: the source's manifest is damaged.
        InvalidArgumentError: the source holds files of neither engine.
    """
    fs = fs or FileSystem()
    if fs.exists(dest) and fs.list_dir(dest):
        raise StorageError(f"backup destination {dest} exists and is not empty")
    if detect_engine(source, fs) == HASHLOG:
        from shaledb.engine.hashlog import backup_hashlog

        return backup_hashlog(source, dest, fs=fs)
    last_error: Exception | None = None
    for _ in range(_ATTEMPTS):
        fs.remove_tree(dest)
        fs.make_dirs(dest)
        try:
            copied, manifest_name = _copy_once(source, dest, fs)
        except (_Moved, StorageError) as exc:
            last_error = exc
            continue
        fs.sync_dir(dest)
        fs.write_atomic(dest, filenames.CURRENT, encode_current(manifest_name))
        return copied
    fs.remove_tree(dest)
    raise StorageError(f"could not take a consistent copy of {source}: {last_error}")


class _Moved(ShaleDBError):
    """The source's live set changed during the copy."""


def _copy_once(source: str, dest: str, fs: FileSystem) -> tuple[int, str]:
    """Copy the live files once: ``(bytes copied, the manifest's name)``."""
    current = fs.read_all(filenames.path(source, filenames.CURRENT))
    manifest_name = decode_current(current)
    copied = _copy(fs, source, dest, manifest_name)
    # Parse the copy, not the live file: the copy is what the backup will replay.
    state = read_manifest_copy(fs, dest, manifest_name)
    for number in state.tables:
        name = filenames.table_name(number)
        src, dst = filenames.path(source, name), filenames.path(dest, name)
        if not fs.exists(src):
            raise _Moved(f"{name} was compacted away during the copy")
        if not fs.link(src, dst):
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
    return copied, manifest_name


def read_manifest_copy(fs: FileSystem, directory: str, manifest_name: str) -> ManifestState:
    """Replay the copied manifest ``manifest_name`` of ``directory``.

    Raises:
        StorageError: CURRENT named something that is not a manifest.
        CorruptionError: the copied manifest is damaged.
    """
    parsed = filenames.parse(manifest_name)
    if parsed is None or parsed[0] is not FileKind.MANIFEST:
        raise StorageError(f"{directory}: CURRENT names {manifest_name!r}, not a manifest")
    return read_manifest(fs, directory, manifest_name)


def _copy(fs: FileSystem, source: str, dest: str, name: str) -> int:
    return fs.copy_file(filenames.path(source, name), filenames.path(dest, name))
