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
import sys
from array import array
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
    """A block searched in place: its contents and a view of their offset arrays.

    Nothing is decoded up front; a lookup reads the offsets it needs and slices out
    the one value it returns, and a range decodes only its own entries. So a cached
    block costs its contents plus a few hundred bytes, not a Python object per key.

    Rejected alternative: decoding every key into a list when the block is read. A
    lookup is then one C bisect, but each read from the file pays a comprehension over
    the whole block, and a cached block holds about 60 bytes of objects per key, so at
    a million keys the working set no longer fits the cache. Scans were measured with
    such key lists too: the misses cost them more than the bisects saved (10-key scans
    over five tables: about 45 us instead of 35).
    """

    __slots__ = (
        "_buf",
        "_n",
        "_ends",
        "_flags_start",
        "_values_start",
        "_keys_end",
        "_plain",
        "referenced",
    )

    def __init__(self, contents: bytes, path: str = "", offset: int = 0) -> None:
        try:
            size = len(contents)
            (n,) = _COUNT.unpack_from(contents, size - 4)
            meta = size - 4 - 9 * n
            if meta < 0:
                raise ValueError(f"entry count {n} does not fit in {size} bytes")
            ends = _offsets(contents, meta + n, 2 * n)
            keys_end = ends[n - 1] if n else 0
            if n and keys_end + ends[2 * n - 1] != meta:
                raise ValueError("offsets do not match the block size")
        except (struct.error, ValueError) as exc:
            raise CorruptionError(
                f"{path}: block at offset {offset} does not decode: {exc}", path, offset
            ) from None
        self._buf = contents
        self._n: int = n
        #: key_ends then value_ends: ``_ends[i]`` ends key i, ``_ends[n + i]`` value i.
        self._ends = ends
        self._flags_start = meta
        self._values_start = keys_end
        self._keys_end = keys_end
        #: Set by the block cache on a hit; its eviction gives a flagged block a second chance.
        self.referenced = False
        #: No entry has an expiry: an entry's tuple is its slices and a 0 (see
        #: :meth:`entries_from`). Found with one C call: the flags without TTL removed.
        self._plain = not contents[meta : meta + n].translate(None, _WITHOUT_TTL)

    def __len__(self) -> int:
        return self._n

    @property
    def keys(self) -> list[bytes]:
        """Every key, decoded (for the index block and tests; lookups do not need it)."""
        ends = [0, *self._ends[: self._n].tolist()]
        buf = self._buf
        return [buf[a:b] for a, b in zip(ends, ends[1:])]

    def key(self, i: int) -> bytes:
        ends = self._ends
        return self._buf[(ends[i - 1] if i else 0) : ends[i]]

    def entry(self, i: int) -> RawFound:
        """``(flags, expire_ms, value)`` of entry ``i``."""
        ends = self._ends
        n = self._n
        base = self._values_start
        start = base + (ends[n + i - 1] if i else 0)
        end = base + ends[n + i]
        flags = self._buf[self._flags_start + i]
        if flags & HAS_TTL:
            return (
                flags,
                EXPIRY.unpack_from(self._buf, start)[0],
                self._buf[start + EXPIRY.size : end],
            )
        return flags, 0, self._buf[start:end]

    def find(self, key: bytes) -> int:
        """The index of ``key``, or -1 when the block does not hold it.

        The key's bytes are searched for in the keys blob (one C call), and a match
        counts only where a key starts and ends; a few false matches (keys that
        contain the key) and the search falls back to bisecting.
        """
        buf = self._buf
        ends = self._ends
        n = self._n
        stop = self._keys_end
        pos = buf.find(key, 0, stop)
        for _ in range(_FALSE_MATCHES):
            if pos < 0:
                return -1
            end = pos + len(key)
            i = bisect_left(ends, end, 0, n)
            if i < n and ends[i] == end and (ends[i - 1] if i else 0) == pos and end > pos:
                return i
            pos = buf.find(key, pos + 1, stop)
        i = self.lower_bound(key)
        return i if i < n and self.key(i) == key else -1

    def get(self, key: bytes) -> RawFound | None:
        """:meth:`entry` of :meth:`find` (None when the block does not hold ``key``),
        with the common case, the key's first match in the keys blob, inline: a point
        read's one call into the block."""
        buf = self._buf
        pos = buf.find(key, 0, self._keys_end)
        if pos < 0:
            return None
        ends = self._ends
        n = self._n
        end = pos + len(key)
        i = bisect_left(ends, end, 0, n)
        if not (i < n and ends[i] == end and (ends[i - 1] if i else 0) == pos and end > pos):
            i = self.find(key)  # a false match first: the general search
            if i < 0:
                return None
        start = self._values_start + (ends[n + i - 1] if i else 0)
        flags = buf[self._flags_start + i]
        if flags & HAS_TTL:
            return self.entry(i)
        return flags, 0, buf[start : self._values_start + ends[n + i]]

    def lower_bound(self, key: bytes, lo: int = 0, hi: int | None = None) -> int:
        """The first index in ``lo .. hi`` whose key is ``>= key`` (``hi`` if none)."""
        if hi is None:
            hi = self._n
        buf = self._buf
        ends = self._ends
        while lo < hi:
            mid = (lo + hi) >> 1
            if buf[(ends[mid - 1] if mid else 0) : ends[mid]] < key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def entries_from(self, lo: bytes | None, hi: bytes | None, n: int) -> list[RawEntry]:
        """At most ``n`` entries from the first key ``>= lo`` (None: the first key) while
        ``key < hi`` (None: unbounded), in order: a short scan's read of one block.

        A short scan runs this once per source, for a few entries.
        """
        buf = self._buf
        ends = self._ends
        count = self._n
        start = 0 if lo is None else self.lower_bound(lo)
        end = start + n
        if end > count:
            end = count
        if hi is not None and start < end:
            last = end - 1
            if buf[(ends[last - 1] if last else 0) : ends[last]] >= hi:
                # Usually only a few entries precede ``hi``: step over them.
                end = start
                while end < last and buf[(ends[end - 1] if end else 0) : ends[end]] < hi:
                    end += 1
        return self._tuples(start, end)

    def entries_before(self, hi: bytes | None, lo: bytes, n: int) -> list[RawEntry]:
        """At most ``n`` entries from the last key ``< hi`` (None: the last key) down
        while ``key >= lo``, in descending order: :meth:`entries_from` in reverse."""
        buf = self._buf
        ends = self._ends
        end = self._n if hi is None else self.lower_bound(hi)
        start = end - n if end > n else 0
        if start < end and buf[(ends[start - 1] if start else 0) : ends[start]] < lo:
            # Usually only a few entries are at or above ``lo``: step down over them.
            x = end
            while x - 1 > start and buf[ends[x - 2] : ends[x - 1]] >= lo:
                x -= 1
            start = x
        found = self._tuples(start, end)
        found.reverse()
        return found

    def _tuples(self, i: int, j: int) -> list[RawEntry]:
        """Entries ``i`` to ``j - 1`` as a list (:meth:`entries`).

        Without an expiry in the block, one loop over the offsets builds the tuples
        (each offset read once). Rejected alternative: :meth:`columns` and a zip, as
        long ranges decode; its dozen C calls cost more than the loop over the two or
        three entries a short scan takes from most blocks.
        """
        if i >= j:
            return []
        if not self._plain:
            return self.entries(i, j)
        buf = self._buf
        ends = self._ends
        n = self._n
        base = self._values_start
        flags = self._flags_start
        out: list[RawEntry] = []
        append = out.append
        key_start = ends[i - 1] if i else 0
        value_start = base + (ends[n + i - 1] if i else 0)
        for x in range(i, j):
            key_end = ends[x]
            value_end = base + ends[n + x]
            append((buf[key_start:key_end], buf[flags + x], 0, buf[value_start:value_end]))
            key_start = key_end
            value_start = value_end
        return out

    def iter_from(self, i: int, hi: bytes | None) -> Iterator[RawEntry]:
        """Entries from index ``i`` upward while ``key < hi``."""
        end = self._n if hi is None else self.lower_bound(hi, i)
        return self._entries(i, end, False)

    def iter_down(self, i: int, lo: bytes) -> Iterator[RawEntry]:
        """Entries from index ``i`` downward while ``key >= lo``."""
        start = self.lower_bound(lo, 0, i + 1) if i >= 0 else 0
        return self._entries(start, i + 1, True)

    def entries(self, i: int, j: int) -> list[RawEntry]:
        """Entries ``i`` to ``j - 1`` as a list, in order."""
        if i >= j:
            return []
        keys, flags, values = self.columns(i, j)
        if any(map(HAS_TTL.__and__, flags)):
            return [
                (k, f, *_split_expiry(v)) if f & HAS_TTL else (k, f, 0, v)
                for k, f, v in zip(keys, flags, values)
            ]
        return list(zip(keys, flags, repeat(0), values))

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
        its expiry prefix. Slices and comprehensions: no per-entry method call."""
        n = self._n
        ends = self._ends
        buf = self._buf
        # Offsets as a list first: iterating the memoryview itself is twice as slow.
        if i:
            key_ends = ends[i - 1 : j].tolist()
            value_ends = ends[n + i - 1 : n + j].tolist()
        else:
            key_ends = [0, *ends[0:j].tolist()]
            value_ends = [0, *ends[n : n + j].tolist()]
        keys = [buf[a:b] for a, b in zip(key_ends, key_ends[1:])]
        base = self._values_start
        values = [buf[base + a : base + b] for a, b in zip(value_ends, value_ends[1:])]
        flags = self._flags_start
        return keys, buf[flags + i : flags + j], values

    def memory_bytes(self) -> int:
        """Approximate memory held, for the block cache's accounting: the contents and
        the fixed objects around them."""
        return len(self._buf) + _BLOCK_OVERHEAD


#: Bytes a cached block holds beyond its contents: the block, its offsets view, the
#: cache's entry and key (tracemalloc over a table's 4,097 blocks read into the cache:
#: 593 bytes a block beyond its contents).
_BLOCK_OVERHEAD = 600
#: Matches of a key's bytes that are not a key before a lookup bisects instead.
_FALSE_MATCHES = 4
#: Every flag byte without HAS_TTL, deleted by ``bytes.translate`` to find the others.
_WITHOUT_TTL = bytes(b for b in range(256) if not b & HAS_TTL)


def _offsets(contents: bytes, start: int, count: int) -> memoryview:
    """``count`` u32 at ``start`` as a view of ints, without copying where the CPU is
    little-endian (the format's byte order)."""
    view = memoryview(contents)[start : start + 4 * count]
    if len(view) != 4 * count:
        raise ValueError("offsets run past the block")
    if sys.byteorder == "little":
        return view.cast("I")
    ends = array("I", view)  # pragma: no cover - the format is little-endian
    ends.byteswap()  # pragma: no cover
    return memoryview(ends)  # pragma: no cover


def _split_expiry(stored: bytes) -> tuple[int, bytes]:
    return EXPIRY.unpack_from(stored)[0], stored[EXPIRY.size :]


def value_with_expiry(flags: int, expire_ms: int, value: bytes) -> bytes:
    """The stored form of a value: prefixed by its expiry when it has one."""
    return EXPIRY.pack(expire_ms) + value if flags & HAS_TTL else value
