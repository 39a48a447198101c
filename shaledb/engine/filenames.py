"""Every file name in a data directory comes from here (docs/format.md, "Files").

LOCK               held with an exclusive lock while the database is open
CURRENT            the name of the live manifest, replaced atomically
MANIFEST-NNNNNN    log of version edits (live tables, catalog, counters)
NNNNNN.wal         write-ahead log
NNNNNN.sst         sorted table
*.tmp              a file being written; removed on open
lost/              files moved aside, never deleted: tables an open could not prove
                   dead, and the inputs of a repair (NAME or NAME~N)

The hash-log engine's directory form (docs/format.md, "Hash-log engine"):

HASHLOG            identity file: this directory holds a hash-log store
NNNNNN.hld         data segment
NNNNNN.hli         index (hint) file of the segment of the same number
CATALOG            the catalog
In its two-file form the sidecars of DATA are DATA.lock and DATA.catalog.
"""

from __future__ import annotations

import enum
import os
import re

LOCK = "LOCK"
CURRENT = "CURRENT"
TEMP_SUFFIX = ".tmp"
LOST_DIR = "lost"

HASHLOG = "HASHLOG"
HASHLOG_CATALOG = "CATALOG"
LOCK_SUFFIX = ".lock"
CATALOG_SUFFIX = ".catalog"

_SEGMENT = re.compile(r"(\d{6,})\.hld")
_NUMBERED = re.compile(r"(?:(\d{6,})\.(wal|sst)|MANIFEST-(\d{6,}))")


class FileKind(enum.Enum):
    WAL = "wal"
    TABLE = "sst"
    MANIFEST = "manifest"


def wal_name(number: int) -> str:
    return f"{number:06d}.wal"


def table_name(number: int) -> str:
    return f"{number:06d}.sst"


def manifest_name(number: int) -> str:
    return f"MANIFEST-{number:06d}"


def temp_name(name: str) -> str:
    return name + TEMP_SUFFIX


def lost_name(name: str, taken: set[str]) -> str:
    """The name under which ``name`` goes into ``lost/``: itself, or ``name~N`` when
    ``taken`` (the names already there) holds it."""
    candidate, n = name, 0
    while candidate in taken:
        n += 1
        candidate = f"{name}~{n}"
    return candidate


def parse_lost(name: str) -> tuple[FileKind, int] | None:
    """:func:`parse` of a name in ``lost/`` (``name~N`` included)."""
    return parse(name.split("~")[0])


def parse(name: str) -> tuple[FileKind, int] | None:
    """``(kind, number)`` for a numbered file name, None for any other name."""
    m = _NUMBERED.fullmatch(name)
    if m is None:
        return None
    if m.group(3) is not None:
        return FileKind.MANIFEST, int(m.group(3))
    kind = FileKind.WAL if m.group(2) == "wal" else FileKind.TABLE
    return kind, int(m.group(1))


def path(directory: str, name: str) -> str:
    return os.path.join(directory, name)


def segment_name(number: int) -> str:
    return f"{number:06d}.hld"


def segment_index_name(number: int) -> str:
    return f"{number:06d}.hli"


def parse_segment(name: str) -> int | None:
    """The number of a hash-log data segment's name, None for any other name."""
    m = _SEGMENT.fullmatch(name)
    return None if m is None else int(m.group(1))
