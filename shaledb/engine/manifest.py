"""The manifest: a log of version edits, and CURRENT, which names the live manifest.

Format in docs/format.md ("Manifest"). Each record (framed as in
:mod:`shaledb.engine.record_log`) holds one :class:`~shaledb.engine.version_edit.VersionEdit`.
A new manifest starts with an edit that adds every live table and sets every counter
(a snapshot). An edit is fsynced before the engine acts on it. CURRENT is replaced
atomically (write, fsync, rename, fsync the directory), so a crash leaves either the
old manifest or the new one live, never neither.

Only :class:`shaledb.engine.version_set.VersionSet` writes a manifest while a database
is open; ``check``, ``repair`` and ``backup`` read one through :func:`read_current`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shaledb.engine import filenames
from shaledb.engine.checksum import crc32c
from shaledb.engine.fs import AppendFile, FileSystem
from shaledb.engine.record_log import MANIFEST_EDIT, LogWriter, read_records
from shaledb.engine.version_edit import TableFile, VersionEdit
from shaledb.errors import CorruptionError

#: The start of CURRENT's second line, before the name's CRC32C in hex.
_CURRENT_CRC = "crc32c "


@dataclass
class ManifestState:
    """Everything a manifest says, after replaying its edits.

    ``tables`` maps each live table's number to ``(level, table)``.
    """

    name: str
    tables: dict[int, tuple[int, TableFile]] = field(default_factory=dict)
    log_number: int = 0
    next_file: int = 1
    last_seq: int = 0
    #: None for a manifest written before ShaleDB recorded it.
    flushed_seq: int | None = None
    catalog: dict[str, Any] | None = None
    #: Where a torn last edit was dropped, if one was: the file ends in damage.
    torn_at: int | None = None
    #: The files the repair that wrote this manifest read (see VersionEdit).
    repair_inputs: list[str] | None = None

    def apply(self, edit: VersionEdit) -> None:
        for _level, number in edit.removed:
            self.tables.pop(number, None)
        for level, table in edit.added:
            self.tables[table.number] = (level, table)
        if edit.log_number is not None:
            self.log_number = edit.log_number
        if edit.next_file is not None:
            self.next_file = edit.next_file
        if edit.last_seq is not None:
            self.last_seq = edit.last_seq
        if edit.flushed_seq is not None:
            self.flushed_seq = edit.flushed_seq
        if edit.catalog is not None:
            self.catalog = dict(edit.catalog)
        if edit.repair_inputs is not None:
            self.repair_inputs = list(edit.repair_inputs)


def encode_current(name: str) -> bytes:
    """CURRENT's contents naming manifest ``name``: the name, then its checksum."""
    return f"{name}\n{_CURRENT_CRC}{crc32c(name.encode()):08x}\n".encode()


def decode_current(data: bytes, path: str = "CURRENT") -> str:
    """The manifest name held in CURRENT's ``data``.

    Accepts the form :func:`encode_current` writes and the older form without a
    checksum line (the name and a newline).

    Raises:
        CorruptionError: the contents are not one of those forms or the checksum fails.
    """
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    name = lines[0]
    parsed = filenames.parse(name)
    valid = text.endswith("\n") and parsed is not None
    if valid and len(lines) == 3:
        valid = lines[1] == f"{_CURRENT_CRC}{crc32c(name.encode()):08x}"
    elif valid:
        valid = len(lines) == 2
    if not valid or parsed is None or parsed[0] is not filenames.FileKind.MANIFEST:
        raise CorruptionError(
            f"{path}: does not name a manifest or fails its checksum (holds {text[:80]!r}); "
            f"run 'shaledb repair' on the directory",
            path,
            0,
        )
    return name


def current_name(fs: FileSystem, directory: str) -> str | None:
    """The manifest CURRENT names; None when the directory holds no CURRENT.

    Raises:
        CorruptionError: CURRENT is damaged, or the manifest it names is missing.
    """
    current = filenames.path(directory, filenames.CURRENT)
    if not fs.exists(current):
        return None
    name = decode_current(fs.read_all(current), current)
    if not fs.exists(filenames.path(directory, name)):
        raise CorruptionError(f"{current} names {name}, which does not exist", current, 0)
    return name


def read_manifest(fs: FileSystem, directory: str, name: str) -> ManifestState:
    """Replay manifest ``name`` of ``directory``.

    Raises:
        CorruptionError: the manifest is damaged (other than a torn last edit) or empty.
    """
    path = filenames.path(directory, name)
    data = fs.read_all(path)
    records, end = read_records(data, path, tail_may_be_torn=True, kind=MANIFEST_EDIT)
    if not records:
        raise CorruptionError(f"{path}: holds no edit", path, 0)
    state = ManifestState(name=name, torn_at=end if end < len(data) else None)
    for record in records:
        state.apply(VersionEdit.decode(record.payload, path, record.offset))
    return state


def read_current(fs: FileSystem, directory: str) -> ManifestState | None:
    """Replay the live manifest; None when the directory holds no database yet.

    Raises:
        CorruptionError: CURRENT or the manifest is damaged (other than a torn last edit).
    """
    name = current_name(fs, directory)
    return None if name is None else read_manifest(fs, directory, name)


class ManifestWriter:
    """One manifest file, open for appending edits. Callers serialize appends."""

    def __init__(self, fs: FileSystem, directory: str, number: int, snapshot: VersionEdit) -> None:
        """Create manifest ``number`` holding ``snapshot``, then point CURRENT at it."""
        self._fs = fs
        self.name = filenames.manifest_name(number)
        self.path = filenames.path(directory, self.name)
        self._file: AppendFile = fs.open_append(self.path, truncate_to=0)
        self._framer = LogWriter(MANIFEST_EDIT)
        try:
            self.append(snapshot)
            fs.sync_dir(directory)
            fs.write_atomic(directory, filenames.CURRENT, encode_current(self.name))
        except BaseException:
            self._file.close()
            raise

    @property
    def size(self) -> int:
        return self._file.size

    def append(self, edit: VersionEdit) -> None:
        """Append one edit and make it durable."""
        self._file.write(self._framer.frame(edit.encode()))
        self._file.sync()

    def close(self) -> None:
        self._file.close()
