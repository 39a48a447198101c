"""Sorted String Tables: immutable sorted files of blocks (docs/format.md, "SSTables").

    data block 0 | ... | data block n-1 | filter block | index block | footer (48 bytes)

Every block carries a trailer with its CRC32C. The index block is a block whose keys
are the last key of each data block and whose values are ``offset u64 | size u32``.
The footer is ``index_offset u64 | index_size u32 | filter_offset u64 |
filter_size u32 | entry_count u64 | format_version u32 | footer_crc u32 | magic u64``,
the CRC covering the 36 bytes before it. Sizes exclude the 5-byte block trailer.
"""

from __future__ import annotations

import struct
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from operator import add, itemgetter
from typing import NamedTuple

from shaledb.engine import block as blocks
from shaledb.engine import bloom
from shaledb.engine.base import Entry, Found
from shaledb.engine.block import TRAILER_SIZE, Block
from shaledb.engine.block_cache import BlockCache
from shaledb.engine.checksum import crc32c
from shaledb.engine.fs import FileSystem, RandomAccessFile
from shaledb.errors import CorruptionError

_NINE = 9
_first = itemgetter(0)
_second = itemgetter(1)
_fourth = itemgetter(3)
MAGIC = 0x5348414C45535354  # "SHALESST"
FORMAT_VERSION = 1
FOOTER = struct.Struct("<QIQIQIIQ")
FOOTER_SIZE = FOOTER.size  # 48
_FOOTER_CRC_COVERS = 36
_HANDLE = struct.Struct("<QI")
_WRITE_BUFFER = 256 * 1024


@dataclass(frozen=True)
class TableInfo:
    """What a finished table holds; recorded in the manifest."""

    size: int
    entries: int
    smallest: bytes
    largest: bytes


class TableBuilder:
    """Writes one table from entries added in strictly increasing key order."""

    def __init__(
        self,
        fs: FileSystem,
        path: str,
        block_size: int,
        bloom_bits_per_key: int,
        compression: str = "none",
    ) -> None:
        """Start a table at ``path``; data blocks are compressed with ``compression``
        (``"none"`` or ``"lz4"``)."""
        self._compression = blocks.COMPRESSIONS[compression]
        self._file = fs.open_append(path, truncate_to=0)
        self.path = path
        self._block_size = block_size
        self._bloom_bits = bloom_bits_per_key
        self._offset = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._keys: list[bytes] = []
        self._flags = bytearray()
        self._values: list[bytes] = []
        self._block_bytes = 0
        self._all_keys: list[bytes] = []
        self._index_keys: list[bytes] = []
        self._index_values: list[bytes] = []
        self.entries = 0

    def add(self, key: bytes, flags: int, expire_ms: int, value: bytes) -> None:
        self._keys.append(key)
        self._flags.append(flags)
        stored = blocks.value_with_expiry(flags, expire_ms, value)
        self._values.append(stored)
        self._block_bytes += len(key) + len(stored) + 9
        self.entries += 1
        if self._block_bytes >= self._block_size:
            self._finish_block()

    def add_columns(self, keys: list[bytes], flags: bytes, stored: list[bytes]) -> None:
        """Add entries given as parallel columns; ``stored`` values carry their expiry prefix."""
        # cumulative[i]: bytes of the first i entries, 9 bytes of metadata each included.
        sizes = map(_NINE.__add__, map(add, map(len, keys), map(len, stored)))
        cumulative = list(accumulate(sizes, initial=0))
        n = len(keys)
        start = 0
        while start < n:
            # The first end at which the current block reaches its size, or all of the rest.
            room = self._block_size - self._block_bytes
            end = min(n, bisect_left(cumulative, cumulative[start] + room, start + 1))
            self._keys.extend(keys[start:end])
            self._flags += flags[start:end]
            self._values.extend(stored[start:end])
            self._block_bytes += cumulative[end] - cumulative[start]
            self.entries += end - start
            start = end
            if self._block_bytes >= self._block_size:
                self._finish_block()

    @property
    def file_size(self) -> int:
        """Bytes written so far (approximately the final size)."""
        return self._offset + self._block_bytes

    def _emit(self, contents: bytes, compression: int = blocks.COMPRESSION_NONE) -> tuple[int, int]:
        sealed = blocks.seal(contents, compression)
        offset = self._offset
        self._pending.append(sealed)
        self._pending_bytes += len(sealed)
        self._offset += len(sealed)
        if self._pending_bytes >= _WRITE_BUFFER:
            self._write_pending()
        return offset, len(sealed) - TRAILER_SIZE

    def _write_pending(self) -> None:
        self._file.write(b"".join(self._pending))
        self._pending = []
        self._pending_bytes = 0

    def _finish_block(self) -> None:
        if not self._keys:
            return
        contents = blocks.encode(self._keys, bytes(self._flags), self._values)
        handle = self._emit(contents, self._compression)
        self._index_keys.append(self._keys[-1])
        self._index_values.append(_HANDLE.pack(*handle))
        self._all_keys.extend(self._keys)
        self._keys, self._flags, self._values, self._block_bytes = [], bytearray(), [], 0

    def finish(self) -> TableInfo:
        """Write the filter, index and footer, fsync and close. Returns what was written."""
        self._finish_block()
        if not self._all_keys:
            raise ValueError("an SSTable needs at least one entry")
        filter_offset, filter_size = self._emit(bloom.build(self._all_keys, self._bloom_bits))
        index = blocks.encode(self._index_keys, bytes(len(self._index_keys)), self._index_values)
        index_offset, index_size = self._emit(index)
        head = struct.pack(
            "<QIQIQI",
            index_offset,
            index_size,
            filter_offset,
            filter_size,
            self.entries,
            FORMAT_VERSION,
        )
        self._pending.append(head + struct.pack("<IQ", crc32c(head), MAGIC))
        self._offset += FOOTER_SIZE
        self._write_pending()
        self._file.sync()
        self._file.close()
        return TableInfo(self._offset, self.entries, self._all_keys[0], self._all_keys[-1])

    def abandon(self) -> None:
        self._file.close()


class _Parts(NamedTuple):
    """What a loaded table keeps in memory. Replaced whole, so a reader that took it
    keeps a consistent set (and the file open) even if the table is unloaded meanwhile."""

    file: RandomAccessFile
    last_keys: list[bytes]
    offsets: list[int]
    sizes: list[int]
    filter: bloom.BloomFilter | None


class Table:
    """A reader of one table. Thread-safe.

    Its index, filter and open file are loaded when it is opened and stay until the
    table cache (when one is given) unloads them to stay within its bound; the next
    read loads them again.
    """

    def __init__(
        self,
        fs: FileSystem,
        path: str,
        number: int,
        cache: BlockCache,
        open_tables: TableCache | None = None,
    ) -> None:
        self.path = path
        self.number = number
        self.entries = 0
        self._fs = fs
        self._cache = cache
        self._open_tables = open_tables
        self._loaded: _Parts | None = None
        self._parts()  # load now: damage is reported when the table is opened

    def _parts(self) -> _Parts:
        loaded = self._loaded
        if loaded is None:
            loaded = self._loaded = self._load()
            if self._open_tables is not None:
                self._open_tables.admit(self)
        elif self._open_tables is not None:
            self._open_tables.touch(self)
        return loaded

    def unload(self) -> None:
        """Drop the index, filter and file (closed once no reader holds them)."""
        self._loaded = None

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def _load(self) -> _Parts:
        path = self.path
        file = self._fs.open_read(path)
        size = file.size
        if size < FOOTER_SIZE:
            raise CorruptionError(
                f"{path}: file of {size} bytes is too short for a footer", path, 0
            )
        footer_at = size - FOOTER_SIZE
        raw = file.read(footer_at, FOOTER_SIZE)
        (index_off, index_size, filter_off, filter_size, self.entries, version, crc, magic) = (
            FOOTER.unpack(raw)
        )
        if magic != MAGIC:
            raise CorruptionError(
                f"{path}: footer at offset {footer_at} has a bad magic number", path, footer_at
            )
        if crc32c(raw[:_FOOTER_CRC_COVERS]) != crc:
            raise CorruptionError(
                f"{path}: footer at offset {footer_at} fails its checksum", path, footer_at
            )
        if version != FORMAT_VERSION:
            raise CorruptionError(
                f"{path}: format version {version} is not supported "
                f"(this build reads {FORMAT_VERSION})",
                path,
                footer_at,
            )
        index = Block(self._read_block(file, index_off, index_size, "index block"), path, index_off)
        handles = [_HANDLE.unpack(index.entry(i)[2]) for i in range(len(index))]
        table_filter = None
        if filter_size:
            try:
                table_filter = bloom.BloomFilter(
                    self._read_block(file, filter_off, filter_size, "filter block")
                )
            except ValueError as exc:
                raise CorruptionError(
                    f"{path}: filter block at offset {filter_off}: {exc}", path, filter_off
                ) from None
        return _Parts(
            file, index.keys, [h[0] for h in handles], [h[1] for h in handles], table_filter
        )

    def _read_block(self, file: RandomAccessFile, offset: int, size: int, part: str) -> bytes:
        raw = file.read(offset, size + TRAILER_SIZE)
        if len(raw) != size + TRAILER_SIZE:
            raise CorruptionError(
                f"{self.path}: {part} at offset {offset} is truncated", self.path, offset
            )
        return blocks.unseal(raw, self.path, offset, part)

    def _block(self, parts: _Parts, i: int, fill_cache: bool = True) -> Block:
        offset = parts.offsets[i]
        key = (self.number, offset)
        block = self._cache.get(key)
        if block is None:
            contents = self._read_block(parts.file, offset, parts.sizes[i], "data block")
            block = Block(contents, self.path, offset)
            if fill_cache:
                self._cache.put(key, block)
        return block

    def get(self, key: bytes, key_hashes: tuple[int, int] | None = None) -> Found | None:
        """The entry stored for ``key`` (tombstones included), or None.

        ``key_hashes``: the key's :func:`bloom.hashes`, when the caller has them already.
        """
        parts = self._loaded
        if parts is None or self._open_tables is not None:
            parts = self._parts()
        if parts.filter is not None and not parts.filter.may_contain_hashed(
            key_hashes or bloom.hashes(key)
        ):
            return None
        i = bisect_left(parts.last_keys, key)
        if i == len(parts.last_keys):
            return None
        block = self._cache.get((self.number, parts.offsets[i]))
        if block is None:
            block = self._block(parts, i)
        keys = block.keys
        j = bisect_left(keys, key)
        if j < len(keys) and keys[j] == key:
            return block.entry(j)
        return None

    def iter_range(
        self, lo: bytes, hi: bytes | None, reverse: bool = False, fill_cache: bool = True
    ) -> Iterator[Entry]:
        """Entries with ``lo <= key < hi``, in order (tombstones and expired included)."""
        parts = self._parts()
        last_keys = parts.last_keys
        nblocks = len(last_keys)
        if not reverse:
            for i in range(bisect_left(last_keys, lo), nblocks):
                block = self._block(parts, i, fill_cache)
                yield from block.iter_from(bisect_left(block.keys, lo), hi)
                if hi is not None and last_keys[i] >= hi:
                    return
            return
        start = nblocks - 1 if hi is None else min(bisect_left(last_keys, hi), nblocks - 1)
        for i in range(start, -1, -1):
            block = self._block(parts, i, fill_cache)
            top = len(block.keys) - 1 if hi is None else bisect_left(block.keys, hi) - 1
            yield from block.iter_down(top, lo)
            if i > 0 and last_keys[i - 1] < lo:
                return

    @property
    def block_last_keys(self) -> list[bytes]:
        """The last key of each data block (the index keys)."""
        return self._parts().last_keys

    @property
    def block_offsets(self) -> list[int]:
        """Where each data block starts in the file."""
        return self._parts().offsets

    @property
    def has_filter(self) -> bool:
        return self._parts().filter is not None

    def columns_in(
        self, lo: bytes | None, hi: bytes | None
    ) -> tuple[list[bytes], bytes, list[bytes]]:
        """Entries with ``lo <= key < hi`` (None: unbounded) as columns, read past the cache."""
        keys: list[bytes] = []
        flags = bytearray()
        values: list[bytes] = []
        parts = self._parts()
        last_keys = parts.last_keys
        first = 0 if lo is None else bisect_left(last_keys, lo)
        for i in range(first, len(last_keys)):
            block = self._block(parts, i, fill_cache=False)
            start = 0 if lo is None or i != first else bisect_left(block.keys, lo)
            end = len(block.keys) if hi is None else bisect_left(block.keys, hi)
            if start < end:
                k, f, v = block.columns(start, end)
                keys += k
                flags += f
                values += v
            if hi is not None and last_keys[i] >= hi:
                break
        return keys, bytes(flags), values

    def salvage(self) -> tuple[list[Entry], list[CorruptionError]]:
        """Every entry of every block that checks out, and the damage met on the way."""
        entries: list[Entry] = []
        damage: list[CorruptionError] = []
        parts = self._parts()
        for i in range(len(parts.offsets)):
            try:
                block = self._block(parts, i, fill_cache=False)
            except CorruptionError as exc:
                damage.append(exc)
                continue
            entries.extend(block.iter_from(0, None))
        if not damage and len(entries) != self.entries:
            damage.append(
                CorruptionError(
                    f"{self.path}: footer counts {self.entries} entries, "
                    f"blocks hold {len(entries)}",
                    self.path,
                )
            )
        return entries, damage


class TableCache:
    """Bounds how many tables keep their index, filter and file loaded (LRU). Thread-safe."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.loads = 0
        self._tables: OrderedDict[int, Table] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tables)

    def admit(self, table: Table) -> None:
        """Record a table that just loaded; unload the least recently used beyond the bound."""
        with self._lock:
            self.loads += 1
            self._tables[table.number] = table
            self._tables.move_to_end(table.number)
            while len(self._tables) > self.capacity:
                _, victim = self._tables.popitem(last=False)
                victim.unload()

    def touch(self, table: Table) -> None:
        # Lock-free like the block cache: each call is atomic; a lost race re-admits.
        try:
            self._tables.move_to_end(table.number)
        except KeyError:
            if table.loaded:
                self.admit(table)

    def forget(self, number: int) -> None:
        """Stop tracking a deleted table."""
        with self._lock:
            self._tables.pop(number, None)
