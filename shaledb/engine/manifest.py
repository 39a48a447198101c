"""The manifest: a log of version edits, and CURRENT, which names the live manifest.

Format in docs/format.md ("Manifest"). Each record (framed as in
:mod:`shaledb.engine.record_log`) is one JSON object, an edit::

    {"add": [[level, number, size, entries, smallest_hex, largest_hex], ...],
     "remove": [[level, number], ...], "log_number": 7, "next_file": 9,
     "last_seq": 1234, "catalog": {...}}

every field optional. A new manifest starts with an edit that adds every live table
and sets every counter (a snapshot). An edit is fsynced before the engine acts on
it. CURRENT is replaced atomically (write, fsync, rename, fsync the directory), so a
crash leaves either the old manifest or the new one live, never neither.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shaledb.engine import filenames
from shaledb.engine.fs import AppendFile, FileSystem
from shaledb.engine.record_log import MANIFEST_EDIT, frame, read_records
from shaledb.errors import CorruptionError


@dataclass
class TableRecord:
    """A live table as the manifest records it."""

    level: int
    number: int
    size: int
    entries: int
    smallest: bytes
    largest: bytes


@dataclass
class ManifestState:
    """Everything the manifest says, after replaying its edits."""

    name: str
    tables: dict[int, TableRecord] = field(default_factory=dict)
    log_number: int = 0
    next_file: int = 1
    last_seq: int = 0
    catalog: dict[str, Any] | None = None

    def apply(self, edit: dict[str, Any], where: str) -> None:
        try:
            for _level, number in edit.get("remove", []):
                self.tables.pop(int(number), None)
            for level, number, size, entries, smallest, largest in edit.get("add", []):
                self.tables[int(number)] = TableRecord(
                    int(level),
                    int(number),
                    int(size),
                    int(entries),
                    bytes.fromhex(smallest),
                    bytes.fromhex(largest),
                )
            for name in ("log_number", "next_file", "last_seq"):
                if name in edit:
                    setattr(self, name, int(edit[name]))
            if "catalog" in edit:
                self.catalog = dict(edit["catalog"])
        except (TypeError, ValueError, AttributeError) as exc:
            raise CorruptionError(f"{where}: edit does not parse: {exc}") from None


def encode_edit(
    added: list[TableRecord] | None = None,
    removed: list[tuple[int, int]] | None = None,
    **counters: Any,
) -> bytes:
    """The payload of one manifest record."""
    edit: dict[str, Any] = {k: v for k, v in counters.items() if v is not None}
    if added:
        edit["add"] = [
            [t.level, t.number, t.size, t.entries, t.smallest.hex(), t.largest.hex()] for t in added
        ]
    if removed:
        edit["remove"] = [list(r) for r in removed]
    return json.dumps(edit, separators=(",", ":"), sort_keys=True).encode()


def read_current(fs: FileSystem, directory: str) -> ManifestState | None:
    """Replay the live manifest; None when the directory holds no database yet.

    Raises:
        CorruptionError: CURRENT or the manifest is damaged (other than a torn last edit).
    """
    current = filenames.path(directory, filenames.CURRENT)
    if not fs.exists(current):
        return None
    text = fs.read_all(current).decode("utf-8", "replace")
    name = text.strip()
    parsed = filenames.parse(name)
    if not text.endswith("\n") or parsed is None or parsed[0] is not filenames.FileKind.MANIFEST:
        raise CorruptionError(
            f"{current}: does not name a manifest (holds {text[:80]!r})", current, 0
        )
    path = filenames.path(directory, name)
    if not fs.exists(path):
        raise CorruptionError(f"{current} names {name}, which does not exist", current, 0)
    data = fs.read_all(path)
    records, _ = read_records(data, path, tail_may_be_torn=True)
    state = ManifestState(name=name)
    offset = 0
    for _, payload in records:
        try:
            edit = json.loads(payload)
            if not isinstance(edit, dict):
                raise ValueError("an edit must be a JSON object")
        except ValueError as exc:
            raise CorruptionError(
                f"{path}: edit at offset {offset} is not JSON: {exc}", path, offset
            ) from None
        state.apply(edit, f"{path} offset {offset}")
        offset += len(payload) + 9
    if not records:
        raise CorruptionError(f"{path}: holds no edit", path, 0)
    return state


class ManifestLog:
    """The live manifest file, open for appending edits. Callers serialize appends."""

    def __init__(self, fs: FileSystem, directory: str, number: int, snapshot: bytes) -> None:
        """Create manifest ``number`` holding ``snapshot``, then point CURRENT at it."""
        self._fs = fs
        self.name = filenames.manifest_name(number)
        self.path = filenames.path(directory, self.name)
        self._file: AppendFile = fs.open_append(self.path, truncate_to=0)
        self.append(snapshot)
        fs.write_atomic(directory, filenames.CURRENT, (self.name + "\n").encode())

    @property
    def size(self) -> int:
        return self._file.size

    def append(self, edit: bytes) -> None:
        """Append one edit and make it durable."""
        self._file.write(frame(MANIFEST_EDIT, edit))
        self._file.sync()

    def close(self) -> None:
        self._file.close()
