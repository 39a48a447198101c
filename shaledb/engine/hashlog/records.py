"""The data segment's header and records, and reading them back (docs/format.md,
"Hash-log engine", "Data segment").

Codecs only, no I/O: :func:`encode_entry` and :func:`encode_batch` build the bytes a
write appends, :func:`read_entry` checks one entry a point read fetched, and
:func:`parse_records` walks a segment's bytes with the torn-tail rule of the WAL: in
the active segment damage with no whole record after it is a torn write (dropped);
any other damage is a :class:`~shaledb.errors.CorruptionError` naming file and offset.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Sequence
from typing import NamedTuple

from shaledb.engine.base import RawOp
from shaledb.engine.checksum import CRC, crc32c
from shaledb.engine.unwritten import starts_unwritten
from shaledb.errors import CorruptionError

DATA_MAGIC = b"SHLGDATA"
FORMAT_VERSION = 1
#: ``magic | format_version u16 | kind u8 | reserved u8 | file_id u64 | crc32c u32``.
SEGMENT_HEADER = struct.Struct("<8sHBBQI")
HEADER_SIZE = SEGMENT_HEADER.size  # 24
#: Segment kinds: written by writes (may be torn), or by a merge (complete once named).
KIND_APPEND = 0
KIND_MERGE = 1

TYPE_ENTRY = 1
TYPE_BATCH = 2
#: ``crc32c u32 | type u8 | flags u8 | key_len u32 | value_len u32 | expire_ms u64 | seq u64``.
ENTRY_HEADER = struct.Struct("<IBBIIQQ")
ENTRY_SIZE = ENTRY_HEADER.size  # 30
#: The entry header after its CRC (what the CRC covers, with the key and value).
ENTRY_BODY = struct.Struct("<" + ENTRY_HEADER.format[2:])
#: ``crc32c u32 | type u8 | count u32 | body_len u32 | body_crc u32``.
BATCH_HEADER = struct.Struct("<IBIII")
BATCH_SIZE = BATCH_HEADER.size  # 17
_BATCH_BODY = struct.Struct("<" + BATCH_HEADER.format[2:])

_TYPES = (TYPE_ENTRY, TYPE_BATCH)
_pack_crc = CRC.pack
_pack_entry_body = ENTRY_BODY.pack
_unpack_entry = ENTRY_HEADER.unpack_from


class SegmentHeader(NamedTuple):
    kind: int
    file_id: int


#: :class:`Record`'s fields as a plain tuple (an index file's items are decoded as these:
#: a named tuple per item cost a third of an open's time).
RawRecord = tuple[int, int, bytes, int, int, int]


class Record(NamedTuple):
    """One entry read back from a segment: where it is and what it says."""

    seq: int
    flags: int
    key: bytes
    expire_ms: int
    offset: int
    length: int


def new_file_id() -> int:
    """A random 64-bit identity for a new data file (its index file names it)."""
    return secrets.randbits(64)


def encode_header(kind: int, file_id: int) -> bytes:
    head = SEGMENT_HEADER.pack(DATA_MAGIC, FORMAT_VERSION, kind, 0, file_id, 0)[:-4]
    return head + _pack_crc(crc32c(head))


def decode_header(data: bytes, path: str) -> SegmentHeader:
    """The header of a segment whose first bytes are ``data``.

    Raises:
        CorruptionError: not a hash-log data file, an unknown version, or a bad CRC.
    """
    if len(data) < HEADER_SIZE or data[:8] != DATA_MAGIC:
        raise CorruptionError(
            f"{path}: not a hash-log data file (its first bytes are not {DATA_MAGIC!r})",
            path,
            0,
        )
    _, version, kind, _, file_id, crc = SEGMENT_HEADER.unpack_from(data, 0)
    if crc32c(data[: HEADER_SIZE - 4]) != crc:
        raise CorruptionError(f"{path}: segment header checksum mismatch at offset 0", path, 0)
    if version != FORMAT_VERSION or kind not in (KIND_APPEND, KIND_MERGE):
        raise CorruptionError(
            f"{path}: hash-log data format version {version} kind {kind}; this version "
            f"reads version {FORMAT_VERSION}, kinds {KIND_APPEND} and {KIND_MERGE}",
            path,
            0,
        )
    return SegmentHeader(kind, file_id)


def encode_entry(seq: int, flags: int, key: bytes, expire_ms: int, value: bytes) -> bytes:
    """The bytes of one entry record."""
    body = _pack_entry_body(TYPE_ENTRY, flags, len(key), len(value), expire_ms, seq) + key + value
    return _pack_crc(crc32c(body)) + body


def encode_batch(seq: int, ops: Sequence[RawOp]) -> tuple[bytes, list[int]]:
    """The bytes of one write: an entry for one op, else a batch of entries numbered
    from ``seq``. Also each entry's offset within those bytes."""
    if len(ops) == 1:
        flags, key, expire_ms, value = ops[0]
        return encode_entry(seq, flags, key, expire_ms, value), [0]
    parts, offsets, pos = [], [], BATCH_SIZE
    for i, (flags, key, expire_ms, value) in enumerate(ops):
        entry = encode_entry(seq + i, flags, key, expire_ms, value)
        parts.append(entry)
        offsets.append(pos)
        pos += len(entry)
    body = b"".join(parts)
    head = _BATCH_BODY.pack(TYPE_BATCH, len(ops), len(body), crc32c(body))
    return _pack_crc(crc32c(head)) + head + body, offsets


def read_entry(data: bytes, key: bytes, path: str, offset: int) -> tuple[int, int, bytes]:
    """``(flags, expire_ms, value)`` of the entry ``data`` (its whole record), read for
    ``key`` at ``offset`` of ``path``.

    Raises:
        CorruptionError: the record is short, fails its CRC or holds another key.
    """
    if len(data) >= ENTRY_SIZE:
        crc, kind, flags, klen, vlen, expire_ms, _ = _unpack_entry(data)
        if (
            kind == TYPE_ENTRY
            and len(data) == ENTRY_SIZE + klen + vlen
            and crc32c(memoryview(data)[4:]) == crc
            and data[ENTRY_SIZE : ENTRY_SIZE + klen] == key
        ):
            return flags, expire_ms, data[ENTRY_SIZE + klen :]
    raise CorruptionError(
        f"{path}: entry at offset {offset} is damaged (checksum, length or key mismatch)",
        path,
        offset,
    )


def _entry_at(data: bytes, pos: int, end: int) -> tuple[Record, int] | str:
    """The entry at ``pos`` (not past ``end``) and where it ends, else what is wrong."""
    if end - pos < ENTRY_SIZE:
        return "truncated entry header"
    crc, kind, flags, klen, vlen, expire_ms, seq = _unpack_entry(data, pos)
    if kind != TYPE_ENTRY:
        return f"unknown record type {kind}"
    stop = pos + ENTRY_SIZE + klen + vlen
    if stop > end:
        return "entry runs past the end of its file or batch"
    if crc32c(memoryview(data)[pos + 4 : stop]) != crc:
        return "entry checksum mismatch"
    key = data[pos + ENTRY_SIZE : pos + ENTRY_SIZE + klen]
    return Record(seq, flags, key, expire_ms, pos, stop - pos), stop


def record_at(data: bytes, pos: int) -> tuple[list[Record], int] | str:
    """The record (an entry, or a batch's entries) at ``pos`` and its end, else why not."""
    size = len(data)
    if size - pos < 5:
        return "truncated record header"
    kind = data[pos + 4]
    if kind == TYPE_ENTRY:
        found = _entry_at(data, pos, size)
        return found if isinstance(found, str) else ([found[0]], found[1])
    if kind != TYPE_BATCH:
        return f"unknown record type {kind}"
    if size - pos < BATCH_SIZE:
        return "truncated batch header"
    crc, _, count, body_len, body_crc = BATCH_HEADER.unpack_from(data, pos)
    if crc32c(memoryview(data)[pos + 4 : pos + BATCH_SIZE]) != crc:
        return "batch header checksum mismatch"
    start, end = pos + BATCH_SIZE, pos + BATCH_SIZE + body_len
    if end > size:
        return "batch runs past the end of the file"
    if crc32c(memoryview(data)[start:end]) != body_crc:
        return "batch body checksum mismatch"
    records: list[Record] = []
    at = start
    for _ in range(count):
        found = _entry_at(data, at, end)
        if isinstance(found, str):
            return f"batch entry at offset {at}: {found}"
        records.append(found[0])
        at = found[1]
    if at != end:
        return f"{end - at} stray bytes after the batch's last entry"
    return records, end


def _next_record(data: bytes, pos: int) -> int:
    """The first offset after ``pos`` where a whole record checks out, else -1. Only
    offsets whose type byte is a known type are checksummed (lengths first)."""
    for at in range(pos + 1, len(data) - 4):
        if data[at + 4] in _TYPES and not isinstance(record_at(data, at), str):
            return at
    return -1


def _claimed_end(data: bytes, pos: int) -> int:
    """Where the damaged record at ``pos`` ends if its own header can be trusted (a
    batch header whose CRC checks out), else ``pos``: the search for a later record
    starts there, so a torn batch's whole entries are never taken as records after it."""
    if len(data) - pos >= BATCH_SIZE and data[pos + 4] == TYPE_BATCH:
        crc, _, _, body_len, _ = BATCH_HEADER.unpack_from(data, pos)
        if crc32c(memoryview(data)[pos + 4 : pos + BATCH_SIZE]) == crc:
            end: int = pos + BATCH_SIZE + body_len
            return min(len(data), end) - 1
    return pos


def parse_records(
    data: bytes, path: str, start: int, may_be_torn: bool
) -> tuple[list[Record], int]:
    """Every entry from ``start`` on and the end of the last whole record.

    Args:
        data: the segment's bytes (header included).
        start: the offset of the first record to read.
        may_be_torn: the segment is the active one, whose tail may be a torn write or
            hold sectors a power cut did not write.
    Raises:
        CorruptionError: damage that is not a torn tail, naming the file and offset.
    """
    records: list[Record] = []
    pos, size = start, len(data)
    while pos < size:
        found = record_at(data, pos)
        if isinstance(found, str):
            if may_be_torn:
                # A torn tail, or a power cut's unwritten sectors with records after
                # them (docs/format.md, "Power-cut gaps"): the log ends here.
                after = _next_record(data, _claimed_end(data, pos))
                if after < 0 or starts_unwritten(data, pos, after):
                    return records, pos
            raise CorruptionError(f"{path}: {found} at offset {pos}", path, pos)
        records.extend(found[0])
        pos = found[1]
    return records, pos


def salvage_records(data: bytes, start: int) -> tuple[list[Record], list[int]]:
    """Every record that checks out from ``start`` on, skipping damage: ``(records,
    offsets of damage)``. After damage the next offset where a record checks out is
    taken; a value that holds the bytes of a whole record can be taken for one."""
    records: list[Record] = []
    damage: list[int] = []
    pos, size = start, len(data)
    while pos < size:
        found = record_at(data, pos)
        if not isinstance(found, str):
            records.extend(found[0])
            pos = found[1]
            continue
        damage.append(pos)
        pos = _next_record(data, _claimed_end(data, pos))
        if pos < 0:
            break
    return records, damage
