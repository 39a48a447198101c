"""``shaledb info``: an offline, read-only summary of a data directory.

For a hash-log directory it lists the segments, the index files and the catalog's
tables (counting keys would mean reading every index file; the open store has them).

It reads CURRENT, the manifest and the live WALs and writes nothing, and it takes no
lock: so it also works on a directory a server has open. That is safe because every
file it reads is either replaced atomically (CURRENT) or only appended to (the
manifest, the WAL), and a torn tail is read as the end; a compaction or flush that
changes the live set meanwhile is seen by CURRENT changing, and the read starts over.

Per-table counts come from the manifest, never from reading tables: an SST file whose
smallest and largest keys lie in one table counts wholly to it; a table that shares a
file with others shows "at least" what its own files hold. They count SST entries
(overwritten versions and deletions included, until compaction drops them), plus the
table's writes in the WAL.
"""

from __future__ import annotations

import struct
import sys
from collections import Counter
from dataclasses import dataclass, field

import click

from shaledb.cli.exit_codes import EXIT_FAILED
from shaledb.cli.progress import show_bytes, show_entries
from shaledb.engine import filenames
from shaledb.engine.detect import detect_engine
from shaledb.engine.filenames import FileKind
from shaledb.engine.fs import FileSystem
from shaledb.engine.hashlog.layout import Layout, read_catalog
from shaledb.engine.manifest import read_current
from shaledb.engine.recovery import replay_wals
from shaledb.errors import ShaleDBError, StorageError
from shaledb.keyspace import table_id_of

#: Reads of a directory whose live set keeps changing before info gives up.
_ATTEMPTS = 5


@dataclass
class LevelSummary:
    files: int = 0
    bytes: int = 0
    entries: int = 0


@dataclass
class DirectorySummary:
    """What a directory holds, from its manifest and live WALs.

    ``tables`` maps ``namespace:table`` to ``(entries, exact)``: exact is False when
    the table shares an SST file with other tables, and entries is then a lower bound.
    """

    directory: str
    engine: str
    last_seq: int
    wal_files: int
    wal_bytes: int
    wal_entries: int
    levels: dict[int, LevelSummary] = field(default_factory=dict)
    tables: dict[str, tuple[int, bool]] = field(default_factory=dict)

    @property
    def sst_files(self) -> int:
        return sum(level.files for level in self.levels.values())

    @property
    def sst_bytes(self) -> int:
        return sum(level.bytes for level in self.levels.values())

    @property
    def sst_entries(self) -> int:
        return sum(level.entries for level in self.levels.values())


def engine_of(fs: FileSystem, directory: str) -> str | None:
    """The engine whose database ``directory`` holds; None when it holds none.

    Raises:
        InvalidArgumentError: the directory holds files of neither engine.
    """
    return detect_engine(directory, fs)


@dataclass
class HashLogSummary:
    """What a hash-log directory holds, from its file sizes and its catalog."""

    directory: str
    segments: int
    data_bytes: int
    index_files: int
    index_bytes: int
    tables: list[str] = field(default_factory=list)


def _summarize_hashlog(fs: FileSystem, directory: str) -> HashLogSummary:
    layout = Layout(directory)
    numbers = layout.segment_numbers(fs)
    indexes = [layout.index_path(n) for n in numbers if fs.exists(layout.index_path(n))]
    catalog = read_catalog(fs, layout) or {"namespaces": {"default": {"default": 0}}}
    return HashLogSummary(
        directory=directory,
        segments=len(numbers),
        data_bytes=sum(fs.size(layout.segment_path(n)) for n in numbers),
        index_files=len(indexes),
        index_bytes=sum(fs.size(path) for path in indexes),
        tables=[
            f"{ns}:{name}"
            for ns, tables in sorted(catalog.get("namespaces", {}).items())
            for name in sorted(tables)
        ],
    )


def describe_hashlog(summary: HashLogSummary) -> list[str]:
    """The lines ``shaledb info`` prints for a hash-log directory."""
    return [
        f"directory: {summary.directory}",
        "engine: hashlog",
        f"data segments: {summary.segments}, {show_bytes(summary.data_bytes)} "
        "(live and dead records until a merge)",
        f"index files: {summary.index_files}, {show_bytes(summary.index_bytes)}",
        "tables (key counts are in memory only when the store is open):",
        *(f"  {name}" for name in summary.tables),
    ]


def summarize(
    directory: str, fs: FileSystem | None = None
) -> DirectorySummary | HashLogSummary | None:
    """Summarize ``directory`` without a lock; None when it holds no database.

    Raises:
        CorruptionError: CURRENT, the manifest or a live WAL is damaged.
        StorageError: the directory cannot be read, or kept changing under the read.
    """
    fs = fs or FileSystem()
    if not fs.exists(directory):
        raise StorageError(f"{directory} does not exist")
    current = filenames.path(directory, filenames.CURRENT)
    last_error: ShaleDBError | None = None
    for _ in range(_ATTEMPTS):
        engine = engine_of(fs, directory)
        if engine is None:
            return None
        if engine == "hashlog":
            return _summarize_hashlog(fs, directory)
        before = fs.read_all(current)
        try:
            summary = _summarize(fs, directory, engine)
        except ShaleDBError as exc:  # a file removed by a flush or compaction meanwhile
            last_error = exc
        else:
            if fs.read_all(current) == before:
                return summary
        if fs.read_all(current) == before and last_error is not None:
            raise last_error  # the live set did not change: the damage is real
    raise StorageError(f"{directory} kept changing while it was read: {last_error}")


def _summarize(fs: FileSystem, directory: str, engine: str) -> DirectorySummary | None:
    state = read_current(fs, directory)
    if state is None:
        return None
    wal_numbers = [
        parsed[1]
        for name in fs.list_dir(directory)
        if (parsed := filenames.parse(name)) and parsed[0] is FileKind.WAL
    ]
    live = [n for n in wal_numbers if n >= state.log_number]
    mem, last_seq = replay_wals(fs, directory, state, wal_numbers)
    summary = DirectorySummary(
        directory=directory,
        engine=engine,
        last_seq=last_seq,
        wal_files=len(live),
        wal_bytes=sum(fs.size(filenames.path(directory, filenames.wal_name(n))) for n in live),
        wal_entries=len(mem),
    )
    exact: Counter[int] = Counter()
    shared: list[tuple[int, int]] = []
    for level, table in state.tables.values():
        summary.levels.setdefault(level, LevelSummary())
        into = summary.levels[level]
        into.files += 1
        into.bytes += table.size
        into.entries += table.entries
        lo, hi = _table_id(table.smallest), _table_id(table.largest)
        if lo == hi and lo is not None:
            exact[lo] += table.entries
        else:
            shared.append((lo if lo is not None else 0, hi if hi is not None else 1 << 32))
    for key in mem.sorted_keys():
        exact[_table_id(key) or 0] += 1
    catalog = state.catalog or {"namespaces": {"default": {"default": 0}}}
    for ns, tables in sorted(catalog.get("namespaces", {}).items()):
        for name, table_id in sorted(tables.items()):
            whole = not any(lo <= int(table_id) <= hi for lo, hi in shared)
            summary.tables[f"{ns}:{name}"] = (exact[int(table_id)], whole)
    return summary


def _table_id(key: bytes) -> int | None:
    """The table id of ``key``; None for a key too short for its prefix."""
    try:
        return table_id_of(key)
    except (IndexError, struct.error):
        return None


def describe(summary: DirectorySummary) -> list[str]:
    """The lines ``shaledb info`` prints for ``summary``."""
    lines = [
        f"directory: {summary.directory}",
        f"engine: {summary.engine}",
        f"last sequence: {summary.last_seq:,}",
        f"WAL: {summary.wal_files} files, {show_bytes(summary.wal_bytes)}, "
        f"{show_entries(summary.wal_entries)} not yet in an SST file",
        f"SST files: {summary.sst_files}, {show_bytes(summary.sst_bytes)}, "
        f"{show_entries(summary.sst_entries)}",
    ]
    for level, stats in sorted(summary.levels.items()):
        lines.append(
            f"  level {level}: {stats.files} files, {show_bytes(stats.bytes)}, "
            f"{show_entries(stats.entries)}"
        )
    lines.append("tables (entries on disk, overwritten and deleted ones until compacted):")
    for name, (entries, whole) in summary.tables.items():
        count = f"{entries:,}" if whole else f"at least {entries:,} (shares SST files)"
        lines.append(f"  {name}: {count}")
    return lines


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
def info(directory: str) -> None:
    """Summarize DIRECTORY offline and read-only, even while a server has it open."""
    try:
        summary = summarize(directory)
    except ShaleDBError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    if summary is None:
        click.echo(
            f"error: {directory} holds no database "
            "(neither an LSM CURRENT nor a hash-log HASHLOG file)",
            err=True,
        )
        sys.exit(EXIT_FAILED)
    lines = describe_hashlog(summary) if isinstance(summary, HashLogSummary) else describe(summary)
    for line in lines:
        click.echo(line)
