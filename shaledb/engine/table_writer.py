"""Writing new SSTables for flushes and compactions: numbering, building, cleanup.

A table written here is durable before it can be made live: :meth:`TableOutputs.finish`
fsyncs the file and :meth:`TableOutputs.outputs` fsyncs the directory once all of a
job's tables are written, before the caller logs the edit that lists them.

:class:`TableOutputs` is the part a worker process runs too (it numbers tables from
numbers the engine reserved and reports plain :class:`TableFile` records);
:class:`TableWriter` is the engine's, which numbers and opens tables through the
version set.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from shaledb.engine import filenames
from shaledb.engine.fs import FileSystem
from shaledb.engine.iterators import Columns
from shaledb.engine.memtable import MemTable
from shaledb.engine.sstable.builder import SSTableBuilder
from shaledb.engine.sstable.format import UNKNOWN_LEVEL, UNKNOWN_SEQS
from shaledb.engine.version import FileMeta
from shaledb.engine.version_edit import TableFile
from shaledb.engine.version_set import VersionSet
from shaledb.options import Options

T = TypeVar("T", bound=TableFile)


@dataclass(frozen=True)
class TableSettings:
    """What building tables needs of the options: a plain value, sent to workers."""

    block_size: int
    bloom_bits_per_key: int
    compression: str
    target_file_bytes: int

    @classmethod
    def of(cls, options: Options) -> TableSettings:
        return cls(
            options.block_size,
            options.bloom_bits_per_key,
            options.compression,
            options.target_file_bytes,
        )


class TableOutputs(Generic[T]):
    """Makes new tables in one directory, numbered by ``new_number``; ``adopt`` turns
    a finished table's record into what the caller keeps (the engine opens it).
    Thread-safe (each builder has one user)."""

    def __init__(
        self,
        fs: FileSystem,
        directory: str,
        settings: TableSettings,
        new_number: Callable[[], int],
        adopt: Callable[[TableFile], T],
    ) -> None:
        self._fs = fs
        self._directory = directory
        self.settings = settings
        self._new_number = new_number
        self._adopt = adopt
        #: Bytes written, by purpose ("flush", "compaction").
        self.bytes_written = {"flush": 0, "compaction": 0}

    def new(
        self, seq_range: tuple[int, int] = UNKNOWN_SEQS, level: int = UNKNOWN_LEVEL
    ) -> SSTableBuilder:
        """A builder for a table under a new file number, holding writes numbered in
        ``seq_range``, for ``level`` (both recorded in its footer)."""
        number = self._new_number()
        settings = self.settings
        return SSTableBuilder(
            self._fs,
            filenames.path(self._directory, filenames.table_name(number)),
            settings.block_size,
            settings.bloom_bits_per_key,
            settings.compression,
            number,
            seq_range,
            level,
        )

    def finish(self, builder: SSTableBuilder, purpose: str) -> T:
        """Finish ``builder`` (the file fsynced) and adopt the table it wrote."""
        info = builder.finish()
        return self.adopt(
            TableFile(builder.number, info.size, info.entries, info.smallest, info.largest),
            purpose,
        )

    def adopt(self, table: TableFile, purpose: str) -> T:
        """Count a finished, durable table as written for ``purpose`` and adopt it."""
        self.bytes_written[purpose] += table.size
        return self._adopt(table)

    @contextlib.contextmanager
    def outputs(
        self,
        finished: list[T],
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

    def write_columns(self, columns: Columns, seq_range: tuple[int, int]) -> T:
        """Write sorted, non-empty ``columns`` (a memtable's) to one new durable
        level-0 table holding the writes numbered in ``seq_range``."""
        finished: list[T] = []
        with self.outputs(finished, "flush", seq_range, 0) as new:
            builder = new()
            builder.add_columns(*columns)
            finished.append(self.finish(builder, "flush"))
        return finished[0]


class TableWriter(TableOutputs[FileMeta]):
    """The engine's tables: numbered by the version set, opened as they are adopted."""

    def __init__(
        self, fs: FileSystem, directory: str, options: Options, versions: VersionSet
    ) -> None:
        def open_table(table: TableFile) -> FileMeta:
            return versions.open_table(
                table.number, table.size, table.entries, table.smallest, table.largest
            )

        super().__init__(
            fs, directory, TableSettings.of(options), versions.new_file_number, open_table
        )
        self._versions = versions

    def flush_seqs(self, mem: MemTable) -> tuple[int, int]:
        """The sequence numbers of the writes in ``mem``, the next memtable to flush."""
        # Memtables are flushed oldest first, so this one's writes are numbered right
        # after the last flushed one's (the version set's flushed_seq).
        return self._versions.flushed_seq + 1, mem.last_seq

    def write_memtable(self, mem: MemTable) -> FileMeta | None:
        """Write a memtable to one new durable table; None when it is empty."""
        if not len(mem):
            return None
        return self.write_columns(mem.columns(), self.flush_seqs(mem))
