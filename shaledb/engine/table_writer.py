"""Writing new SSTables for flushes and compactions: numbering, building, cleanup.

A table written here is durable before it can be made live: :meth:`TableWriter.finish`
fsyncs the file and :meth:`TableWriter.outputs` fsyncs the directory once all of a
job's tables are written, before the caller logs the edit that lists them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from shaledb.engine import filenames
from shaledb.engine.fs import FileSystem
from shaledb.engine.memtable import MemTable
from shaledb.engine.sstable.builder import SSTableBuilder
from shaledb.engine.sstable.format import UNKNOWN_LEVEL, UNKNOWN_SEQS
from shaledb.engine.version import FileMeta
from shaledb.engine.version_set import VersionSet
from shaledb.options import Options


class TableWriter:
    """Makes new tables in one directory. Thread-safe (each builder has one user)."""

    def __init__(
        self, fs: FileSystem, directory: str, options: Options, versions: VersionSet
    ) -> None:
        self._fs = fs
        self._directory = directory
        self._options = options
        self._versions = versions
        #: Bytes written, by purpose ("flush", "compaction").
        self.bytes_written = {"flush": 0, "compaction": 0}

    def new(
        self, seq_range: tuple[int, int] = UNKNOWN_SEQS, level: int = UNKNOWN_LEVEL
    ) -> SSTableBuilder:
        """A builder for a table under a new file number, holding writes numbered in
        ``seq_range``, for ``level`` (both recorded in its footer)."""
        number = self._versions.new_file_number()
        opts = self._options
        return SSTableBuilder(
            self._fs,
            filenames.path(self._directory, filenames.table_name(number)),
            opts.block_size,
            opts.bloom_bits_per_key,
            opts.compression,
            number,
            seq_range,
            level,
        )

    def finish(self, builder: SSTableBuilder, purpose: str) -> FileMeta:
        """Finish ``builder`` (the file fsynced) and open the table it wrote."""
        info = builder.finish()
        self.bytes_written[purpose] += info.size
        return self._versions.open_table(
            builder.number, info.size, info.entries, info.smallest, info.largest
        )

    @contextlib.contextmanager
    def outputs(
        self,
        finished: list[FileMeta],
        purpose: str,
        seq_range: tuple[int, int] = UNKNOWN_SEQS,
        level: int = UNKNOWN_LEVEL,
    ) -> Iterator[Callable[[], SSTableBuilder]]:
        """A block that makes tables: it yields :meth:`new`; the caller appends each
        finished table to ``finished``. On leaving normally the directory is fsynced;
        on an exception every table of the block, finished or not, is removed."""
        started: list[SSTableBuilder] = []

        def new() -> SSTableBuilder:
            builder = self.new(seq_range, level)
            started.append(builder)
            return builder

        try:
            yield new
            if finished:
                self._fs.sync_dir(self._directory)
        except BaseException:
            for builder in started:
                builder.abandon()
                self._fs.remove(builder.path)
            raise

    def write_memtable(self, mem: MemTable) -> FileMeta | None:
        """Write a memtable to one new durable table; None when it is empty."""
        # Memtables are flushed oldest first, so this one's writes are numbered right
        # after the last flushed one's (the version set's flushed_seq).
        seq_range = (self._versions.flushed_seq + 1, mem.last_seq)
        if not len(mem):
            return None
        finished: list[FileMeta] = []
        with self.outputs(finished, "flush", seq_range, 0) as new:
            builder = new()
            builder.add_columns(*mem.columns())
            finished.append(self.finish(builder, "flush"))
        return finished[0]
