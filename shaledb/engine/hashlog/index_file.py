"""The index (hint) file of one data segment (docs/format.md, "Hash-log engine",
"Index (hint) file").

One item per record of the segment up to ``covers``, tombstones included, in file
order, so that an open rebuilds the in-memory index without reading the data. Pure
codec: :class:`IndexItems` accumulates encoded items as records are appended,
:func:`encode_index` seals them into a file's bytes, :func:`decode_index` checks and
reads one back.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import NamedTuple

from shaledb.engine.checksum import CRC, crc32c
from shaledb.engine.hashlog.records import FORMAT_VERSION, RawRecord, Record
from shaledb.errors import CorruptionError

INDEX_MAGIC = b"SHLGINDX"
#: ``magic | format_version u16 | reserved u16 | count u32 | file_id u64 | covers u64
#: | min_seq u64 | max_seq u64``.
INDEX_HEADER = struct.Struct("<8sHHIQQQQ")
#: ``seq u64 | offset u64 | length u32 | flags u8 | key_len u32 | expire_ms u64``, then the key.
ITEM = struct.Struct("<QQIBIQ")
_pack_item = ITEM.pack


class IndexFile(NamedTuple):
    """An index file read back."""

    file_id: int
    covers: int
    min_seq: int
    max_seq: int
    #: In :class:`~shaledb.engine.hashlog.records.Record`'s field order.
    records: list[RawRecord]
    #: The encoded items, to carry on from (the active segment's index grows).
    items: bytes


class IndexItems:
    """The encoded items of one segment's records, in file order. Not thread-safe."""

    __slots__ = ("count", "max_seq", "min_seq", "parts")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.count = 0
        self.min_seq = 0
        self.max_seq = 0

    def add(
        self, seq: int, flags: int, key: bytes, expire_ms: int, offset: int, length: int
    ) -> None:
        self.parts.append(_pack_item(seq, offset, length, flags, len(key), expire_ms) + key)
        self.count += 1
        if not self.min_seq or seq < self.min_seq:
            self.min_seq = seq
        self.max_seq = max(self.max_seq, seq)

    def add_records(self, records: Iterable[Record]) -> None:
        for r in records:
            self.add(r.seq, r.flags, r.key, r.expire_ms, r.offset, r.length)

    def add_encoded(self, items: bytes, count: int, min_seq: int, max_seq: int) -> None:
        """Carry on from the items of an index file read back."""
        self.parts.append(items)
        self.count += count
        if min_seq and (not self.min_seq or min_seq < self.min_seq):
            self.min_seq = min_seq
        self.max_seq = max(self.max_seq, max_seq)


def encode_index(file_id: int, covers: int, items: IndexItems) -> bytes:
    """The bytes of the index file describing ``covers`` bytes of data file ``file_id``."""
    head = INDEX_HEADER.pack(
        INDEX_MAGIC, FORMAT_VERSION, 0, items.count, file_id, covers, items.min_seq, items.max_seq
    )
    body = b"".join([head, *items.parts])
    return body + CRC.pack(crc32c(body))


def decode_index(data: bytes, path: str) -> IndexFile:
    """Check and read an index file.

    Raises:
        CorruptionError: wrong magic or version, a bad CRC, or items that do not parse.
    """
    if len(data) < INDEX_HEADER.size + CRC.size or data[:8] != INDEX_MAGIC:
        raise CorruptionError(f"{path}: not a hash-log index file", path, 0)
    (crc,) = CRC.unpack_from(data, len(data) - CRC.size)
    if crc32c(memoryview(data)[: -CRC.size]) != crc:
        raise CorruptionError(f"{path}: index file checksum mismatch", path, len(data) - CRC.size)
    _, version, _, count, file_id, covers, min_seq, max_seq = INDEX_HEADER.unpack_from(data, 0)
    if version != FORMAT_VERSION:
        raise CorruptionError(
            f"{path}: index format version {version}; this version reads {FORMAT_VERSION}",
            path,
            8,
        )
    records: list[RawRecord] = []
    append = records.append
    unpack = ITEM.unpack_from
    size = ITEM.size
    pos, end = INDEX_HEADER.size, len(data) - CRC.size
    try:
        for _ in range(count):
            seq, offset, length, flags, klen, expire_ms = unpack(data, pos)
            pos += size
            append((seq, flags, data[pos : pos + klen], expire_ms, offset, length))
            pos += klen
    except struct.error:
        pos = end + 1
    if pos != end:
        raise CorruptionError(f"{path}: index items do not match their count", path, pos)
    items = data[INDEX_HEADER.size : end]
    return IndexFile(file_id, covers, min_seq, max_seq, records, items)
