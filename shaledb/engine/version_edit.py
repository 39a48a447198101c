"""Version edits: the one record type of the manifest, and its codec (docs/format.md, "Manifest").

An edit is one JSON object, every field optional::

    {"add": [[level, number, size, entries, smallest_hex, largest_hex], ...],
     "remove": [[level, number], ...], "log_number": 7, "next_file": 9,
     "last_seq": 1234, "flushed_seq": 1200, "catalog": {...},
     "repair_inputs": ["000004.sst", ...]}

:meth:`VersionEdit.encode` and :meth:`VersionEdit.decode` are inverses and do no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shaledb.errors import CorruptionError


@dataclass(frozen=True)
class TableFile:
    """A table as the manifest records it: its number, size and key range."""

    number: int
    size: int
    entries: int
    smallest: bytes
    largest: bytes

    def overlaps(self, lo: bytes | None, hi: bytes | None) -> bool:
        """Whether the table's keys meet ``[lo, hi)`` (None: unbounded)."""
        return (hi is None or self.smallest < hi) and (lo is None or self.largest >= lo)


@dataclass
class VersionEdit:
    """A change to the live tables and the counters.

    ``added`` holds ``(level, table)``; ``removed`` holds ``(level, number)``. A field
    left None is not changed by the edit.
    """

    added: list[tuple[int, TableFile]] = field(default_factory=list)
    removed: list[tuple[int, int]] = field(default_factory=list)
    log_number: int | None = None
    next_file: int | None = None
    last_seq: int | None = None
    catalog: dict[str, Any] | None = None
    #: The last sequence number whose write is in a table; WAL ``log_number`` starts
    #: right after it (recovery checks that no write in between is missing).
    flushed_seq: int | None = None
    #: The files a repair read (names in the directory); set only in the snapshot a
    #: repair writes. An open moves any still there into ``lost/`` (the repair was cut
    #: short before it moved them itself) instead of deleting them as obsolete.
    repair_inputs: list[str] | None = None

    def encode(self) -> bytes:
        """The edit's JSON bytes (keys sorted, no spaces)."""
        obj: dict[str, Any] = {}
        if self.added:
            obj["add"] = [
                [level, t.number, t.size, t.entries, t.smallest.hex(), t.largest.hex()]
                for level, t in self.added
            ]
        if self.removed:
            obj["remove"] = [[level, number] for level, number in self.removed]
        for name in (
            "log_number",
            "next_file",
            "last_seq",
            "flushed_seq",
            "catalog",
            "repair_inputs",
        ):
            value = getattr(self, name)
            if value is not None:
                obj[name] = value
        return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, payload: bytes, path: str = "", offset: int = 0) -> VersionEdit:
        """The edit in ``payload``.

        Raises:
            CorruptionError: not a JSON object of the fields above, naming path and offset.
        """
        try:
            obj = json.loads(payload)
            if not isinstance(obj, dict):
                raise ValueError("an edit must be a JSON object")
            added = [
                (
                    _int(level),
                    TableFile(
                        _int(number),
                        _int(size),
                        _int(entries),
                        bytes.fromhex(smallest),
                        bytes.fromhex(largest),
                    ),
                )
                for level, number, size, entries, smallest, largest in obj.get("add", [])
            ]
            removed = [(_int(level), _int(number)) for level, number in obj.get("remove", [])]
            counters = {
                name: _int(obj[name])
                for name in ("log_number", "next_file", "last_seq", "flushed_seq")
                if name in obj
            }
            catalog = obj.get("catalog")
            if catalog is not None and not isinstance(catalog, dict):
                raise ValueError("the catalog must be a JSON object")
            inputs = obj.get("repair_inputs")
            if inputs is not None and not (
                isinstance(inputs, list) and all(isinstance(n, str) for n in inputs)
            ):
                raise ValueError("repair_inputs must be a list of file names")
        except (TypeError, ValueError, AttributeError, RecursionError) as exc:
            raise CorruptionError(
                f"{path}: edit at offset {offset} does not parse: {exc}", path, offset
            ) from None
        return cls(added, removed, catalog=catalog, repair_inputs=inputs, **counters)


def _int(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value
