"""The SSTable footer and block handles: one symmetric codec (docs/format.md, "SSTables").

    data block 0 | ... | data block n-1 | filter block | index block | footer

Footer version 2 (68 bytes, written now) is ``index_offset u64 | index_size u32 |
filter_offset u64 | filter_size u32 | entry_count u64 | smallest_seq u64 |
largest_seq u64 | level u32 | format_version u32 | footer_crc u32 | magic u64``;
version 1 (48 bytes, still read) lacks the sequence range and the level. Both end in
the same 16 bytes (version, CRC, magic), so a reader finds the version before it knows
the size; the CRC covers every byte before it. A block handle (the value of an index entry) is
``offset u64 | size u32``. Sizes exclude the block trailer. No I/O here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import NamedTuple

from shaledb.engine.checksum import crc32c
from shaledb.errors import CorruptionError

MAGIC = 0x5348414C45535354  # "SHALESST"
FORMAT_VERSION = 2
#: The fields before ``format_version``, by version.
_HEADS = {1: struct.Struct("<QIQIQ"), 2: struct.Struct("<QIQIQQQI")}
#: ``format_version u32 | footer_crc u32 | magic u64``: the same in every version.
_TAIL = struct.Struct("<IIQ")
_VERSION = struct.Struct("<I")
_CRC_MAGIC = struct.Struct("<IQ")
_SIZES = {version: head.size + _TAIL.size for version, head in _HEADS.items()}
FOOTER_SIZE = _SIZES[FORMAT_VERSION]  # 68: the footer this build writes
FOOTER_V1_SIZE = _SIZES[1]  # 48
MIN_FOOTER_SIZE = min(_SIZES.values())
MAX_FOOTER_SIZE = max(_SIZES.values())
HANDLE = struct.Struct("<QI")
#: The sequence range of a table written before ranges were recorded: it may hold any.
UNKNOWN_SEQS = (0, 2**64 - 1)
#: The level of a table written before levels were recorded.
UNKNOWN_LEVEL = 2**32 - 1


def seq_hull(ranges: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """The smallest range covering ``ranges`` (a compaction output's, from its inputs')."""
    pairs = list(ranges)
    if not pairs:
        return UNKNOWN_SEQS
    return min(lo for lo, _ in pairs), max(hi for _, hi in pairs)


class BlockHandle(NamedTuple):
    """Where a block lies in its file."""

    offset: int
    size: int

    def encode(self) -> bytes:
        return HANDLE.pack(self.offset, self.size)

    @classmethod
    def decode(cls, raw: bytes, path: str = "", at: int = 0) -> BlockHandle:
        if len(raw) != HANDLE.size:
            raise CorruptionError(
                f"{path}: index entry at offset {at} holds {len(raw)} bytes, "
                f"a block handle is {HANDLE.size}",
                path,
                at,
            )
        return cls(*HANDLE.unpack(raw))


def decode_handles(raws: list[bytes], path: str = "", at: int = 0) -> tuple[list[int], list[int]]:
    """The offsets and the sizes of the block handles ``raws`` (an index block's
    values), decoded in one C call instead of one per handle: a table's index has one
    handle per 4 KiB of data, and every table a flush or compaction adds is opened.

    Raises:
        CorruptionError: a handle has the wrong size.
    """
    size = HANDLE.size
    for raw in raws:
        if len(raw) != size:
            BlockHandle.decode(raw, path, at)  # raises, with its message
    if not raws:
        return [], []
    offsets, sizes = zip(*HANDLE.iter_unpack(b"".join(raws)))
    return list(offsets), list(sizes)


class Footer(NamedTuple):
    """The fixed-size end of every table.

    ``smallest_seq``/``largest_seq`` bound the sequence numbers of the writes the table
    holds and ``level`` is the level it was written for (version 1 tables read back
    as :data:`UNKNOWN_SEQS` and :data:`UNKNOWN_LEVEL`). Entries carry no
    sequence numbers of their own; ``repair`` orders tables by these bounds.
    """

    index_handle: BlockHandle
    filter_handle: BlockHandle
    entries: int
    smallest_seq: int = UNKNOWN_SEQS[0]
    largest_seq: int = UNKNOWN_SEQS[1]
    level: int = UNKNOWN_LEVEL

    @property
    def seq_range(self) -> tuple[int, int]:
        return self.smallest_seq, self.largest_seq

    def encode(self) -> bytes:
        """The footer in the current format version."""
        head = _HEADS[FORMAT_VERSION].pack(
            self.index_handle.offset,
            self.index_handle.size,
            self.filter_handle.offset,
            self.filter_handle.size,
            self.entries,
            self.smallest_seq,
            self.largest_seq,
            self.level,
        ) + _VERSION.pack(FORMAT_VERSION)
        return head + _CRC_MAGIC.pack(crc32c(head), MAGIC)

    @classmethod
    def decode(cls, raw: bytes, path: str = "", file_size: int | None = None) -> Footer:
        """The footer at the end of ``raw``, the last bytes of ``path`` (at least
        :data:`MAX_FOOTER_SIZE` of them when the file is that long), whose size is
        ``file_size`` (default ``len(raw)``), for the offsets in messages.

        Raises:
            CorruptionError: truncated, bad magic, bad checksum or unknown version.
        """
        end = len(raw) if file_size is None else file_size
        if len(raw) < MIN_FOOTER_SIZE:
            at = max(0, end - MIN_FOOTER_SIZE)
            raise CorruptionError(f"{path}: footer at offset {at} is truncated", path, at)
        version, crc, magic = _TAIL.unpack_from(raw, len(raw) - _TAIL.size)
        at = end - MIN_FOOTER_SIZE
        if magic != MAGIC:
            raise CorruptionError(f"{path}: footer at offset {at} has a bad magic number", path, at)
        head_format = _HEADS.get(version)
        if head_format is None:
            raise CorruptionError(
                f"{path}: format version {version} is not supported "
                f"(this build reads {', '.join(map(str, sorted(_HEADS)))})",
                path,
                at,
            )
        size = _SIZES[version]
        at = end - size
        if len(raw) < size:
            raise CorruptionError(f"{path}: footer at offset {max(0, at)} is truncated", path, 0)
        footer = raw[len(raw) - size :]
        if crc32c(footer[: head_format.size + 4]) != crc:
            raise CorruptionError(f"{path}: footer at offset {at} fails its checksum", path, at)
        fields = head_format.unpack_from(footer)
        index_off, index_size, filter_off, filter_size, entries = fields[:5]
        extra = fields[5:] if version >= 2 else (*UNKNOWN_SEQS, UNKNOWN_LEVEL)
        return cls(
            BlockHandle(index_off, index_size),
            BlockHandle(filter_off, filter_size),
            entries,
            *extra,
        )
