"""The record framing shared by the write-ahead log and the manifest (docs/format.md, "Logs").

Each record is ``crc32c u32 | length u32 | type u8 | payload``, little-endian, where
the CRC covers ``length``, ``type`` and the payload. Encoding and decoding here do no
I/O. Damage handling: a record that does not check out at the end of a log, with no
valid record after it, is a torn write and is dropped; damage followed by valid
records is corruption and raises :class:`~shaledb.errors.CorruptionError`.
"""

from __future__ import annotations

import struct

from shaledb.engine.checksum import CRC, crc32c
from shaledb.errors import CorruptionError

RECORD_HEADER = struct.Struct("<IIB")
HEADER_SIZE = RECORD_HEADER.size  # 9
_BODY_HEADER = struct.Struct("<IB")

#: A write-ahead-log record: one atomic write batch.
WAL_BATCH = 1
#: A manifest record: one version edit (JSON).
MANIFEST_EDIT = 2
RECORD_TYPES = frozenset((WAL_BATCH, MANIFEST_EDIT))


def frame(record_type: int, payload: bytes) -> bytes:
    """The bytes of one record."""
    body = _BODY_HEADER.pack(len(payload), record_type) + payload
    return CRC.pack(crc32c(body)) + body


class LogWriter:
    """Frames the records of one log file. Pure: the caller writes the bytes.

    ``offset`` is where the file ends when writing starts (a reopened log); each
    :meth:`frame` returns the bytes to append next and advances it.
    """

    def __init__(self, record_type: int, offset: int = 0) -> None:
        self._type = record_type
        self.offset = offset

    def frame(self, payload: bytes) -> bytes:
        record = frame(self._type, payload)
        self.offset += len(record)
        return record


def _check_at(data: bytes, offset: int) -> tuple[int, int] | str:
    """``(type, end)`` of a valid record at ``offset``, else what is wrong with it."""
    if len(data) - offset < HEADER_SIZE:
        return "truncated record header"
    crc, length, record_type = RECORD_HEADER.unpack_from(data, offset)
    end = offset + HEADER_SIZE + length
    if end > len(data):
        return "truncated record (length runs past the end of the file)"
    if record_type not in RECORD_TYPES:
        return f"unknown record type {record_type}"
    if crc32c(memoryview(data)[offset + 4 : end]) != crc:
        return "record checksum mismatch"
    return record_type, end


def _valid_record_after(data: bytes, offset: int) -> bool:
    # A zero-filled or garbled tail holds no valid record; only real corruption does.
    return _next_valid_record(data, offset) < len(data)


def read_records(
    data: bytes, path: str, tail_may_be_torn: bool
) -> tuple[list[tuple[int, bytes]], int]:
    """Decode a whole log: ``([(type, payload), ...], end of the last good record)``.

    Args:
        data: the log file's bytes.
        path: the file's name, for error messages.
        tail_may_be_torn: whether the log may end in a torn write (the newest log);
            when False any damage raises.
    Raises:
        CorruptionError: damage that is not a torn tail, naming the file and offset.
    """
    records: list[tuple[int, bytes]] = []
    offset = 0
    size = len(data)
    while offset < size:
        checked = _check_at(data, offset)
        if isinstance(checked, str):
            if tail_may_be_torn and not _valid_record_after(data, offset + 1):
                return records, offset
            raise CorruptionError(f"{path}: {checked} at offset {offset}", path=path, offset=offset)
        record_type, end = checked
        records.append((record_type, data[offset + HEADER_SIZE : end]))
        offset = end
    return records, offset


def salvage_records(data: bytes) -> tuple[list[tuple[int, bytes]], list[int]]:
    """Every record that checks out, skipping damage: ``(records, offsets of damage)``."""
    records: list[tuple[int, bytes]] = []
    damage: list[int] = []
    offset = 0
    while offset < len(data):
        checked = _check_at(data, offset)
        if isinstance(checked, str):
            damage.append(offset)
            offset = _next_valid_record(data, offset + 1)
            continue
        record_type, end = checked
        records.append((record_type, data[offset + HEADER_SIZE : end]))
        offset = end
    return records, damage


def _next_valid_record(data: bytes, offset: int) -> int:
    if not any(memoryview(data)[offset:]):
        return len(data)
    for start in range(offset, len(data) - HEADER_SIZE + 1):
        if data[start + 8] in RECORD_TYPES and not isinstance(_check_at(data, start), str):
            return start
    return len(data)
