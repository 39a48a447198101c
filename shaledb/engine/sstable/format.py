"""The SSTable footer and block handles: one symmetric codec (docs/format.md, "SSTables").

    data block 0 | ... | data block n-1 | filter block | index block | footer (48 bytes)

The footer is ``index_offset u64 | index_size u32 | filter_offset u64 | filter_size u32 |
entry_count u64 | format_version u32 | footer_crc u32 | magic u64``, the CRC covering
the 36 bytes before it. A block handle (the value of an index entry) is
``offset u64 | size u32``. Sizes exclude the block trailer. No I/O here.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from shaledb.engine.checksum import crc32c
from shaledb.errors import CorruptionError

MAGIC = 0x5348414C45535354  # "SHALESST"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<QIQIQI")
_TAIL = struct.Struct("<IQ")
FOOTER_SIZE = _HEAD.size + _TAIL.size  # 48
HANDLE = struct.Struct("<QI")


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


class Footer(NamedTuple):
    """The fixed-size end of every table."""

    index_handle: BlockHandle
    filter_handle: BlockHandle
    entries: int

    def encode(self) -> bytes:
        head = _HEAD.pack(
            self.index_handle.offset,
            self.index_handle.size,
            self.filter_handle.offset,
            self.filter_handle.size,
            self.entries,
            FORMAT_VERSION,
        )
        return head + _TAIL.pack(crc32c(head), MAGIC)

    @classmethod
    def decode(cls, raw: bytes, path: str = "", at: int = 0) -> Footer:
        """The footer in ``raw`` (found at offset ``at`` of ``path``).

        Raises:
            CorruptionError: truncated, bad magic, bad checksum or unknown version.
        """
        if len(raw) != FOOTER_SIZE:
            raise CorruptionError(f"{path}: footer at offset {at} is truncated", path, at)
        head = raw[: _HEAD.size]
        crc, magic = _TAIL.unpack_from(raw, _HEAD.size)
        if magic != MAGIC:
            raise CorruptionError(f"{path}: footer at offset {at} has a bad magic number", path, at)
        if crc32c(head) != crc:
            raise CorruptionError(f"{path}: footer at offset {at} fails its checksum", path, at)
        index_off, index_size, filter_off, filter_size, entries, version = _HEAD.unpack(head)
        if version != FORMAT_VERSION:
            raise CorruptionError(
                f"{path}: format version {version} is not supported "
                f"(this build reads {FORMAT_VERSION})",
                path,
                at,
            )
        return cls(
            BlockHandle(index_off, index_size), BlockHandle(filter_off, filter_size), entries
        )
