"""The block-aligned log format shared by the WAL and the manifest (docs/format.md, "Logs").

A log file is a sequence of 32 KiB blocks. A record (one write batch, one version edit)
is cut into fragments that never cross a block boundary::

    fragment = crc32c u32 | length u16 | type u8 | payload (length bytes)

The CRC covers ``length``, ``type`` and the payload. The type byte holds the record's
kind in its high nibble (:data:`WAL_BATCH`, :data:`MANIFEST_EDIT`) and the fragment's
position in its low nibble (:data:`FULL`, :data:`FIRST`, :data:`MIDDLE`, :data:`LAST`),
so a manifest record can never be taken for a WAL record or the other way round. A
block's last bytes, when fewer than a header, are zeros. Constants only, no I/O: the
writer is :mod:`shaledb.engine.log_writer`, the reader :mod:`shaledb.engine.log_reader`.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

#: The file is read and written in blocks of this size; no fragment crosses a boundary.
BLOCK_SIZE = 32 * 1024
#: ``crc32c u32 | length u16 | type u8``.
FRAGMENT_HEADER = struct.Struct("<IHB")
HEADER_SIZE = FRAGMENT_HEADER.size  # 7
#: The part of the header the CRC covers, with the payload: ``length u16 | type u8``.
LENGTH_AND_TYPE = struct.Struct("<HB")

#: Record kinds (the high nibble of the type byte).
#: A write-ahead-log record: one atomic write batch.
WAL_BATCH = 1
#: A manifest record: one version edit (JSON).
MANIFEST_EDIT = 2
RECORD_KINDS = frozenset((WAL_BATCH, MANIFEST_EDIT))

#: Fragment positions (the low nibble of the type byte).
FULL = 1  # the whole record
FIRST = 2  # the first fragment of a record cut in several
MIDDLE = 3
LAST = 4
POSITIONS = frozenset((FULL, FIRST, MIDDLE, LAST))


def fragment_type(kind: int, position: int) -> int:
    """The type byte of a fragment at ``position`` of a record of ``kind``."""
    return kind << 4 | position


def split_type(type_byte: int) -> tuple[int, int] | None:
    """``(kind, position)`` of a type byte; None for a byte that is neither."""
    kind, position = type_byte >> 4, type_byte & 0x0F
    if kind in RECORD_KINDS and position in POSITIONS:
        return kind, position
    return None


class LogRecord(NamedTuple):
    """One whole record read back: where its first fragment starts, its kind, its bytes."""

    offset: int
    record_type: int
    payload: bytes


#: The record header of the format before block-aligned records (``crc32c u32 | length
#: u32 | type u8``, the CRC covering the rest): recognised only to refuse such a file
#: with a message that says what it is, never read.
LEGACY_HEADER = struct.Struct("<IIB")
