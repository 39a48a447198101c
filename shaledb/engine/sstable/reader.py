"""Reading one SSTable: point lookups, ranges and columns (docs/format.md, "SSTables").

The footer, index and bloom filter are loaded when the table is opened; data blocks
come through the shared block cache. Damage anywhere raises
:class:`~shaledb.errors.CorruptionError` naming the file, the offset and the part.
"""

from __future__ import annotations

import weakref
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from shaledb.engine import block as blocks
from shaledb.engine import bloom
from shaledb.engine.base import RawEntry, RawFound
from shaledb.engine.block import TRAILER_SIZE, Block
from shaledb.engine.block_cache import BlockCache
from shaledb.engine.fs import FileSystem, RandomAccessFile
from shaledb.engine.sstable.format import (
    MAX_FOOTER_SIZE,
    MIN_FOOTER_SIZE,
    UNKNOWN_LEVEL,
    UNKNOWN_SEQS,
    Footer,
    decode_handles,
)
from shaledb.errors import CorruptionError

if TYPE_CHECKING:
    from shaledb.engine.table_cache import TableCache

#: Index keys per fence (see ``_Parts.fences``).
FENCE_STEP = 32


class _Parts(NamedTuple):
    """What a loaded table keeps in memory. Replaced whole, so a reader that took it
    keeps a consistent set (and the file open) even if the table is unloaded meanwhile."""

    file: RandomAccessFile
    last_keys: list[bytes]
    offsets: list[int]
    sizes: list[int]
    #: The filter's words and their count (None: no filter), probed inline by ``get``.
    filter_words: Sequence[int] | None
    filter_nwords: int
    #: The block cache's key of each data block, made once instead of once per read.
    cache_keys: list[tuple[int, int]]
    #: Every ``FENCE_STEP``-th of ``last_keys``: a scan bisects these first, then a
    #: stretch of ``last_keys``, so most of its probes meet keys already in the CPU cache.
    fences: list[bytes]


class SSTable:
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
        #: Bounds of the sequence numbers of the writes the table holds (footer v2).
        self.seq_range = UNKNOWN_SEQS
        #: The level the table was written for (not where it is now: moves keep files).
        self.written_level = UNKNOWN_LEVEL
        self._fs = fs
        self._cache = cache
        self._open_tables = open_tables
        self._blocks = cache.blocks
        self._loaded: _Parts | None = None
        #: Set by every read; the table cache gives a flagged table a second chance.
        self.referenced = False
        #: The loaded filter's words and their count; None while the table is unloaded
        #: or when it has no filter. :meth:`Version.get` probes it inline, so a table
        #: that does not hold the key costs a read no call.
        self.filter: tuple[Sequence[int], int] | None = None
        self._parts()  # load now: damage is reported when the table is opened

    def _parts(self) -> _Parts:
        loaded = self._loaded
        if loaded is None:
            loaded = self._loaded = self._load()
            words = loaded.filter_words
            self.filter = None if words is None else (words, loaded.filter_nwords)
            if self._open_tables is not None:
                self._open_tables.admit(self)
        else:
            self.referenced = True
        return loaded

    def delete_when_unused(self, fs: FileSystem) -> None:
        """Remove the file once no reader holds this table any more.

        A compaction's inputs leave the version at once, but a scan or a get that took
        the old state may still read them; the file goes with the last reference
        (reference counting, as versions are in LevelDB), never under a reader.
        """
        weakref.finalize(self, fs.remove, self.path)

    def unload(self) -> None:
        """Drop the index, filter and file (closed once no reader holds them)."""
        self.filter = None
        self._loaded = None

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def _load(self) -> _Parts:
        path = self.path
        file = self._fs.open_read(path)
        try:
            return self._load_from(file)
        except BaseException:
            file.close()
            raise

    def _load_from(self, file: RandomAccessFile) -> _Parts:
        path = self.path
        size = file.size
        if size < MIN_FOOTER_SIZE:
            raise CorruptionError(
                f"{path}: file of {size} bytes is too short for a footer", path, 0
            )
        tail = min(size, MAX_FOOTER_SIZE)
        footer = Footer.decode(file.read(size - tail, tail), path, size)
        self.entries = footer.entries
        self.seq_range = footer.seq_range
        self.written_level = footer.level
        index_off, index_size = footer.index_handle
        index = Block(self._read_block(file, index_off, index_size, "index block"), path, index_off)
        last_keys, _, raw_handles = index.columns(0, len(index))
        offsets, sizes = decode_handles(raw_handles, path, index_off)
        table_filter = None
        filter_off, filter_size = footer.filter_handle
        if filter_size:
            try:
                table_filter = bloom.BloomFilter(
                    self._read_block(file, filter_off, filter_size, "filter block")
                )
            except ValueError as exc:
                raise CorruptionError(
                    f"{path}: filter block at offset {filter_off}: {exc}", path, filter_off
                ) from None
        number = self.number
        last_keys = index.keys
        return _Parts(
            file,
            last_keys,
            offsets,
            sizes,
            None if table_filter is None else table_filter.words,
            1 if table_filter is None else table_filter.nwords,
            [(number, offset) for offset in offsets],
            last_keys[FENCE_STEP - 1 :: FENCE_STEP],
        )

    def _read_block(self, file: RandomAccessFile, offset: int, size: int, part: str) -> bytes:
        raw = file.read(offset, size + TRAILER_SIZE)
        if len(raw) != size + TRAILER_SIZE:
            raise CorruptionError(
                f"{self.path}: {part} at offset {offset} is truncated", self.path, offset
            )
        return blocks.unseal(raw, self.path, offset, part)

    def _block(self, parts: _Parts, i: int, fill_cache: bool = True) -> Block:
        """Data block ``i``, from the cache or the file, searched in place (no key list
        for scans either: at a million keys the lists kept the working set out of the
        cache, and a miss costs more than every in-place search of a scan)."""
        offset = parts.offsets[i]
        key = parts.cache_keys[i]
        block = self._cache.get(key)
        if block is None:
            contents = self._read_block(parts.file, offset, parts.sizes[i], "data block")
            block = Block(contents, self.path, offset)
            if fill_cache:
                self._cache.put(key, block)
        return block

    def get(self, key: bytes, key_hashes: tuple[int, int] | None = None) -> RawFound | None:
        """The entry stored for ``key`` (tombstones included), or None.

        ``key_hashes``: the key's :func:`bloom.hashes`, when the caller has them already.
        """
        # The steps of _parts, the filter probe and the cache hit are inlined: this runs
        # once per table a point read reaches.
        parts = self._loaded
        if parts is None:
            parts = self._parts()
        self.referenced = True
        words = parts.filter_words
        if words is not None:
            word, bits = key_hashes or bloom.hashes(key)
            if words[word % parts.filter_nwords] & bits != bits:
                return None
        i = bisect_left(parts.last_keys, key)
        if i == len(parts.last_keys):
            return None
        block = self._blocks.get(parts.cache_keys[i])
        if block is None:
            block = self._block(parts, i)
        else:
            block.referenced = True
            self._cache.hits += 1
        return block.get(key)

    def iter_range(
        self, lo: bytes, hi: bytes | None, reverse: bool = False, fill_cache: bool = True
    ) -> Iterator[RawEntry]:
        """Entries with ``lo <= key < hi``, in order (tombstones and expired included)."""
        parts = self._parts()
        last_keys = parts.last_keys
        nblocks = len(last_keys)
        if not reverse:
            for i in range(bisect_left(last_keys, lo), nblocks):
                block = self._block(parts, i, fill_cache)
                yield from block.iter_from(block.lower_bound(lo), hi)
                if hi is not None and last_keys[i] >= hi:
                    return
            return
        start = nblocks - 1 if hi is None else min(bisect_left(last_keys, hi), nblocks - 1)
        for i in range(start, -1, -1):
            block = self._block(parts, i, fill_cache)
            top = len(block) - 1 if hi is None else block.lower_bound(hi) - 1
            yield from block.iter_down(top, lo)
            if i > 0 and last_keys[i - 1] < lo:
                return

    def first_entries(self, lo: bytes, hi: bytes | None, reverse: bool, n: int) -> list[RawEntry]:
        """The first ``n`` entries of :meth:`iter_range` as a list: only the blocks and
        the entries of them that it returns are decoded (a short scan's source).

        The steps of _parts are inlined, as in :meth:`get`: a short scan runs this once
        per table it reads, and most take a few entries of one block.
        """
        parts = self._loaded
        if parts is None:
            parts = self._parts()
        self.referenced = True
        last_keys = parts.last_keys
        nblocks = len(last_keys)
        if not reverse:
            i = bisect_left(parts.fences, lo) * FENCE_STEP
            i = bisect_left(last_keys, lo, i, min(i + FENCE_STEP, nblocks))
            if i == nblocks:
                return []
            out = self._block(parts, i).entries_from(lo, hi, n)
            # Short of n and the block ended below hi: the next blocks follow on.
            while len(out) < n and (hi is None or last_keys[i] < hi) and i + 1 < nblocks:
                i += 1
                block = self._block(parts, i)
                out += block.entries_from(None, hi, n - len(out))
            return out
        if hi is None:
            i = nblocks - 1
        else:
            i = bisect_left(parts.fences, hi) * FENCE_STEP
            i = min(bisect_left(last_keys, hi, i, min(i + FENCE_STEP, nblocks)), nblocks - 1)
        if i < 0:
            return []
        out = self._block(parts, i).entries_before(hi, lo, n)
        while len(out) < n and i > 0 and last_keys[i - 1] >= lo:
            i -= 1
            block = self._block(parts, i)
            out += block.entries_before(None, lo, n - len(out))
        return out

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
        return self._parts().filter_words is not None

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
            start = 0 if lo is None or i != first else block.lower_bound(lo)
            end = len(block) if hi is None else block.lower_bound(hi, start)
            if start < end:
                k, f, v = block.columns(start, end)
                keys += k
                flags += f
                values += v
            if hi is not None and last_keys[i] >= hi:
                break
        return keys, bytes(flags), values

    def salvage(self) -> tuple[list[RawEntry], list[CorruptionError]]:
        """Every entry of every block that checks out, and the damage met on the way."""
        entries: list[RawEntry] = []
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
