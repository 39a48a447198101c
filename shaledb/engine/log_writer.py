"""Framing records into the block-aligned log format (docs/format.md, "Logs").

Pure: :meth:`LogWriter.frame` returns the bytes to append and the caller writes them
(the WAL and the manifest each own their file and its durability).
"""

from __future__ import annotations

from shaledb.engine.checksum import CRC, crc32c
from shaledb.engine.log_format import (
    BLOCK_SIZE,
    FIRST,
    FULL,
    HEADER_SIZE,
    LAST,
    LENGTH_AND_TYPE,
    MIDDLE,
    fragment_type,
)

_pack_length_and_type = LENGTH_AND_TYPE.pack
_pack_crc = CRC.pack


def _fragment(type_byte: int, chunk: bytes) -> bytes:
    body = LENGTH_AND_TYPE.pack(len(chunk), type_byte) + chunk
    return CRC.pack(crc32c(body)) + body


class LogWriter:
    """Frames the records of one log file, all of one kind. Not thread-safe.

    ``offset`` is where the file ends when writing starts (the size of a reopened
    log); each :meth:`frame` returns the bytes to append there and advances it.
    """

    def __init__(self, record_type: int, offset: int = 0) -> None:
        self._types = {p: fragment_type(record_type, p) for p in (FULL, FIRST, MIDDLE, LAST)}
        self._full = self._types[FULL]
        self.offset = offset

    def frame(self, payload: bytes) -> bytes:
        """The bytes of one record holding ``payload``, to be appended at :attr:`offset`."""
        size = len(payload)
        if size + HEADER_SIZE <= BLOCK_SIZE - self.offset % BLOCK_SIZE:
            # The common case, a record that fits in what is left of the block: one
            # fragment, built inline (this runs once per write).
            body = _pack_length_and_type(size, self._full) + payload
            self.offset += size + HEADER_SIZE
            return _pack_crc(crc32c(body)) + body
        left = BLOCK_SIZE - self.offset % BLOCK_SIZE
        parts: list[bytes] = []
        view = memoryview(payload)
        pos, first = 0, True
        while True:
            if left < HEADER_SIZE:
                parts.append(bytes(left))  # the block's tail: too short for a header
                left = BLOCK_SIZE
            chunk = view[pos : pos + left - HEADER_SIZE]
            pos += len(chunk)
            last = pos == len(payload)
            position = (FULL if last else FIRST) if first else (LAST if last else MIDDLE)
            parts.append(_fragment(self._types[position], bytes(chunk)))
            left -= HEADER_SIZE + len(chunk)
            first = False
            if last:
                break
        record = b"".join(parts)
        self.offset += len(record)
        return record


def frame(record_type: int, payload: bytes) -> bytes:
    """The bytes of one record holding ``payload`` at the start of a new log."""
    return LogWriter(record_type).frame(payload)
