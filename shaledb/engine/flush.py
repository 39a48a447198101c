"""Flush: an immutable memtable becomes a level-0 table.

Order, each step durable before the next (docs/architecture.md, "Flush path"): the
table is written and fsynced with its directory entry; the edit that adds it and
advances the log number is logged to the manifest; the new state is published; only
then is the memtable's WAL deleted, since until the edit is durable that WAL is the
only copy of its writes.
"""

from __future__ import annotations

from collections.abc import Callable

from shaledb.engine import filenames
from shaledb.engine.fs import FileSystem
from shaledb.engine.memtable import MemTable
from shaledb.engine.version import FileMeta
from shaledb.engine.version_edit import VersionEdit
from shaledb.engine.version_set import VersionSet
from shaledb.engine.write_path import WritePath


def flush_immutable(
    imm: MemTable,
    fs: FileSystem,
    directory: str,
    write_table: Callable[[MemTable], FileMeta | None],
    versions: VersionSet,
    writes: WritePath,
) -> None:
    """Write ``imm`` to a table with ``write_table`` (which returns it durable and
    open, or None for an empty memtable), make it live, and delete its WAL."""
    meta = write_table(imm)
    edit = VersionEdit(
        added=[(0, meta)] if meta is not None else [],
        log_number=writes.log_number_after(imm),
        flushed_seq=imm.last_seq,
    )
    versions.log_and_apply(edit, lambda version: writes.install(version, flushed=imm))
    fs.remove(filenames.path(directory, filenames.wal_name(imm.wal_number)))
