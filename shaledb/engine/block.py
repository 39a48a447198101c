"""SSTable blocks: the codec of data and index blocks and of the block trailer.

Format in docs/format.md ("Blocks"). A block's contents are

    keys blob | values blob | flags u8[n] | key_ends u32[n] | value_ends u32[n] | n u32

``key_ends[i]`` is where key i ends in the keys blob, ``value_ends[i]`` where value
i ends in the values blob. A value of an entry with HAS_TTL starts with its
``expire_ms`` (u64). Offset arrays instead of per-entry length prefixes let one
``struct`` call decode all of a block's offsets: decoding costs a few C calls plus
one slice per key, not a Python loop over varints.

On disk every block is followed by a 5-byte trailer, ``compression u8 | crc32c u32``,
the CRC covering the contents and the compression byte.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import accumulate, repeat

from shaledb.engine.base import RawEntry, RawFound
from shaledb.engine.checksum import CRC, crc32c
from shaledb.engine.entry import EXPIRY, HAS_TTL
from shaledb.errors import CorruptionError

TRAILER = struct.Struct("<BI")
TRAILER_SIZE = TRAILER.size  # 5
COMPRESSION_NONE = 0
COMPRESSION_LZ4 = 1
#: Compression names as options give them.
COMPRESSIONS = {"none": COMPRESSION_NONE, "lz4": COMPRESSION_LZ4}

try:
    import lz4.block as _lz4
except ImportError:  # pragma: no cover - lz4 is a dependency; tolerated for reading plain tables
    _lz4 = None  # type: ignore[assignment]
_COUNT = struct.Struct("<I")
#: The most LZ4 expands its input (each byte of a match run stands for up to 255).
_LZ4_MAX_RATIO = 255


def encode(keys: Sequence[bytes], flags: bytes, values: Sequence[bytes]) -> bytes:
    """Block contents for entries already in key order (``values`` with expiry prefixes)."""
    n = len(keys)
    return b"".join(
        (
            b"".join(keys),
            b"".join(values),
            flags,
            struct.pack(f"<{n}I", *accumulate(map(len, keys))),
            struct.pack(f"<{n}I", *accumulate(map(len, values))),
            _COUNT.pack(n),
        )
    )


def seal(contents: bytes, compression: int = COMPRESSION_NONE) -> bytes:
    """The block as written to the file: payload plus trailer.

    With ``COMPRESSION_LZ4`` the payload is the LZ4 block (its first 4 bytes the
    uncompressed size) when that saves at least an eighth; otherwise the contents are
    stored as they are, marked ``COMPRESSION_NONE``.
    """
    if compression == COMPRESSION_LZ4 and _lz4 is not None:
        packed = _lz4.compress(contents, store_size=True)
        if len(packed) <= len(contents) - len(contents) // 8:
            contents = packed
        else:
            compression = COMPRESSION_NONE
    else:
        compression = COMPRESSION_NONE
    tag = bytes((compression,))
    return contents + tag + CRC.pack(crc32c(contents + tag))


def unseal(raw: bytes, path: str, offset: int, part: str) -> bytes:
    """The contents of a block read with its trailer; CorruptionError if it does not check out."""
    if len(raw) < TRAILER_SIZE:
        raise CorruptionError(f"{path}: {part} at offset {offset} is truncated", path, offset)
    compression, crc = TRAILER.unpack_from(raw, len(raw) - TRAILER_SIZE)
    body = memoryview(raw)[: len(raw) - 4]
    if crc32c(body) != crc:
        raise CorruptionError(f"{path}: {part} at offset {offset} fails its checksum", path, offset)
    payload = raw[: len(raw) - TRAILER_SIZE]
    if compression == COMPRESSION_NONE:
        return payload
    if compression == COMPRESSION_LZ4:
        if _lz4 is None:
            raise CorruptionError(
                f"{path}: {part} at offset {offset} is LZ4-compressed and the lz4 package "
                "is not installed (pip install lz4)",
                path,
                offset,
            )
        # The stored size is checked before anything is allocated: LZ4 expands a byte
        # to at most 255, so a larger claim is damage (that passed its checksum).
        claimed = _COUNT.unpack_from(payload)[0] if len(payload) >= _COUNT.size else 0
        if claimed > _LZ4_MAX_RATIO * len(payload):
            raise CorruptionError(
                f"{path}: {part} at offset {offset} claims {claimed} bytes uncompressed "
                f"from {len(payload)}, more than LZ4 can expand to",
                path,
                offset,
            )
        try:
            return bytes(_lz4.decompress(payload))
        except Exception as exc:  # the codec raises its own error types
            raise CorruptionError(
                f"{path}: {part} at offset {offset} does not decompress: {exc}", path, offset
            ) from None
    raise CorruptionError(
        f"{path}: {part} at offset {offset} has unknown compression {compression}",
        path,
        offset,
    )


class Block:
    """A decoded block: its keys as a list, values decoded on demand."""

    __slots__ = ("keys", "_buf", "_flags", "_value_ends", "_values_start")

    def __init__(self, contents: bytes, path: str = "", offset: int = 0) -> None:
        try:
            size = len(contents)
            (n,) = _COUNT.unpack_from(contents, size - 4)
            meta = size - 4 - 9 * n
            if meta < 0:
                raise ValueError(f"entry count {n} does not fit in {size} bytes")
            key_ends = struct.unpack_from(f"<{n}I", contents, meta + n)
            value_ends = struct.unpack_from(f"<{n}I", contents, meta + 5 * n)
            values_start = key_ends[-1] if n else 0
            if n and values_start + value_ends[-1] != meta:
                raise ValueError("offsets do not match the block size")
        except (struct.error, ValueError) as exc:
            raise CorruptionError(
                f"{path}: block at offset {offset} does not decode: {exc}", path, offset
            ) from None
        self._buf = contents
        self._flags = contents[meta : meta + n]
        self._value_ends = value_ends
        self._values_start = values_start
        starts = (0, *key_ends[:-1])
        self.keys = [contents[a:b] for a, b in zip(starts, key_ends)]

    def __len__(self) -> int:
        return len(self.keys)

    def entry(self, i: int) -> RawFound:
        """``(flags, expire_ms, value)`` of entry ``i``."""
        start = self._values_start + (self._value_ends[i - 1] if i else 0)
        end = self._values_start + self._value_ends[i]
        flags = self._flags[i]
        if flags & HAS_TTL:
            return (
                flags,
                EXPIRY.unpack_from(self._buf, start)[0],
                self._buf[start + EXPIRY.size : end],
            )
        return flags, 0, self._buf[start:end]

    def get(self, key: bytes) -> RawFound | None:
        keys = self.keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            return self.entry(i)
        return None

    def iter_from(self, i: int, hi: bytes | None) -> Iterator[RawEntry]:
        """Entries from index ``i`` upward while ``key < hi``."""
        end = len(self.keys) if hi is None else bisect_left(self.keys, hi, i)
        return self._entries(i, end, False)

    def iter_down(self, i: int, lo: bytes) -> Iterator[RawEntry]:
        """Entries from index ``i`` downward while ``key >= lo``."""
        start = bisect_left(self.keys, lo, 0, i + 1) if i >= 0 else 0
        return self._entries(start, i + 1, True)

    def _entries(self, i: int, j: int, reverse: bool) -> Iterator[RawEntry]:
        if i >= j:
            return iter(())
        keys, flags, values = self.columns(i, j)
        if any(map(HAS_TTL.__and__, flags)):
            entries: Iterator[RawEntry] = (
                (k, f, *_split_expiry(v)) if f & HAS_TTL else (k, f, 0, v)
                for k, f, v in zip(keys, flags, values)
            )
            return reversed(list(entries)) if reverse else entries
        if reverse:
            return zip(reversed(keys), reversed(flags), repeat(0), reversed(values))
        return zip(keys, flags, repeat(0), values)

    def columns(self, i: int, j: int) -> tuple[list[bytes], bytes, list[bytes]]:
        """Entries ``i`` to ``j - 1`` as ``(keys, flags, stored values)``; a stored value keeps
        its expiry prefix. Slices and one comprehension: no per-entry method call."""
        ends = self._value_ends
        base = self._values_start
        buf = self._buf
        starts = ((ends[i - 1] if i else 0), *ends[i : j - 1])
        values = [buf[base + a : base + b] for a, b in zip(starts, ends[i:j])]
        return self.keys[i:j], self._flags[i:j], values

    def memory_bytes(self) -> int:
        """Approximate memory held, for the block cache's accounting."""
        return len(self._buf) + 48 * len(self.keys) + 64


def _split_expiry(stored: bytes) -> tuple[int, bytes]:
    return EXPIRY.unpack_from(stored)[0], stored[EXPIRY.size :]


def value_with_expiry(flags: int, expire_ms: int, value: bytes) -> bytes:
    """The stored form of a value: prefixed by its expiry when it has one."""
    return EXPIRY.pack(expire_ms) + value if flags & HAS_TTL else value
