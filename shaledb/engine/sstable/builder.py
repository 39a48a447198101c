"""Writing one SSTable from entries in increasing key order (docs/format.md, "SSTables")."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate
from operator import add

from shaledb.engine import block as blocks
from shaledb.engine import bloom
from shaledb.engine.block import TRAILER_SIZE
from shaledb.engine.fs import FileSystem
from shaledb.engine.sstable.format import (
    FOOTER_SIZE,
    UNKNOWN_LEVEL,
    UNKNOWN_SEQS,
    BlockHandle,
    Footer,
)

#: Per-entry bytes of metadata in a block (flags u8, key end u32, value end u32).
_ENTRY_META = 9
#: Sealed blocks are written in chunks of about this many bytes.
_WRITE_BUFFER = 256 * 1024


@dataclass(frozen=True)
class TableInfo:
    """What a finished table holds; recorded in the manifest."""

    size: int
    entries: int
    smallest: bytes
    largest: bytes


class SSTableBuilder:
    """Writes one table from entries added in strictly increasing key order.

    Not thread-safe. :meth:`finish` fsyncs the file; the caller fsyncs the directory
    before the table is made live.
    """

    def __init__(
        self,
        fs: FileSystem,
        path: str,
        block_size: int,
        bloom_bits_per_key: int,
        compression: str = "none",
        number: int = 0,
        seq_range: tuple[int, int] = UNKNOWN_SEQS,
        level: int = UNKNOWN_LEVEL,
    ) -> None:
        """Start table ``number`` at ``path``; data blocks are compressed with
        ``compression`` (``"none"`` or ``"lz4"``). ``seq_range`` bounds the sequence
        numbers of the writes the table will hold and ``level`` the level it is written
        for (both recorded in the footer, for ``repair``)."""
        self.number = number
        self.seq_range = seq_range
        self.level = level
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
        self._block_bytes += len(key) + len(stored) + _ENTRY_META
        self.entries += 1
        if self._block_bytes >= self._block_size:
            self._finish_block()

    def add_columns(self, keys: list[bytes], flags: bytes, stored: list[bytes]) -> None:
        """Add entries given as parallel columns; ``stored`` values carry their expiry prefix."""
        # cumulative[i]: bytes of the first i entries, metadata included.
        sizes = map(_ENTRY_META.__add__, map(add, map(len, keys), map(len, stored)))
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

    def _emit(self, contents: bytes, compression: int = blocks.COMPRESSION_NONE) -> BlockHandle:
        sealed = blocks.seal(contents, compression)
        offset = self._offset
        self._pending.append(sealed)
        self._pending_bytes += len(sealed)
        self._offset += len(sealed)
        if self._pending_bytes >= _WRITE_BUFFER:
            self._write_pending()
        return BlockHandle(offset, len(sealed) - TRAILER_SIZE)

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
        self._index_values.append(handle.encode())
        self._all_keys.extend(self._keys)
        self._keys, self._flags, self._values, self._block_bytes = [], bytearray(), [], 0

    def finish(self) -> TableInfo:
        """Write the filter, index and footer, fsync and close. Returns what was written."""
        self._finish_block()
        if not self._all_keys:
            raise ValueError("an SSTable needs at least one entry")
        filter_handle = self._emit(bloom.build(self._all_keys, self._bloom_bits))
        index = blocks.encode(self._index_keys, bytes(len(self._index_keys)), self._index_values)
        index_handle = self._emit(index)
        footer = Footer(index_handle, filter_handle, self.entries, *self.seq_range, self.level)
        self._pending.append(footer.encode())
        self._offset += FOOTER_SIZE
        self._write_pending()
        self._file.sync()
        self._file.close()
        return TableInfo(self._offset, self.entries, self._all_keys[0], self._all_keys[-1])

    def abandon(self) -> None:
        """Close the unfinished file (the caller removes it)."""
        self._file.close()
