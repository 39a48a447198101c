"""Salvage a damaged data directory: keep everything that checks out, drop the rest.

Used by ``shaledb repair``. Entries are gathered from every readable block of every
table and every valid WAL record, merged newest first, and written as new tables
under a new manifest; CURRENT then switches to it atomically and the old files go.
A crash during repair leaves the old database in place (CURRENT still names it).

Precedence when versions of a key disagree: WAL records (newest first by log number)
win over tables; tables follow the manifest's order (level 0 newest first, then by
level). Without a readable manifest, tables are ordered by file number, newest
first, which is right except for tables a compaction wrote while newer level-0
tables existed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from shaledb.engine import filenames
from shaledb.engine.batch import decode_batch
from shaledb.engine.block_cache import BlockCache
from shaledb.engine.entry import RawEntry, is_live
from shaledb.engine.filenames import FileKind
from shaledb.engine.fs import FileSystem
from shaledb.engine.iterators import merge
from shaledb.engine.manifest import ManifestWriter, read_current
from shaledb.engine.memtable import MemTable
from shaledb.engine.record_log import WAL_BATCH, salvage_records
from shaledb.engine.sstable import SSTable, SSTableBuilder
from shaledb.engine.version_edit import TableFile, VersionEdit
from shaledb.errors import CorruptionError, StorageError
from shaledb.options import Options, wall_clock


@dataclass
class RepairReport:
    """What repair kept and what it had to drop."""

    lost: list[str] = field(default_factory=list)
    entries_kept: int = 0
    tables_written: int = 0


def repair_directory(
    directory: str, options: Options | None = None, fs: FileSystem | None = None
) -> RepairReport:
    """Rebuild ``directory`` from what is readable. Raises LockedError if it is open elsewhere."""
    fs = fs or FileSystem()
    options = options or Options()
    lock = fs.lock(filenames.path(directory, filenames.LOCK))
    try:
        return _repair(directory, options, fs)
    finally:
        lock.release()


def _repair(directory: str, options: Options, fs: FileSystem) -> RepairReport:
    report = RepairReport()
    names = fs.list_dir(directory)
    numbered = [p for p in map(filenames.parse, names) if p is not None]
    try:
        state = read_current(fs, directory)
    except CorruptionError as exc:
        report.lost.append(f"manifest unreadable, table order taken from file numbers: {exc}")
        state = None
    if state is not None:
        records = sorted(
            state.tables.values(), key=lambda t: (t[0], -t[1].number if t[0] == 0 else 0)
        )
        table_numbers = [t.number for _, t in records]
        log_number, catalog, last_seq = state.log_number, state.catalog, state.last_seq
    else:
        table_numbers = sorted((n for k, n in numbered if k is FileKind.TABLE), reverse=True)
        log_number, catalog, last_seq = 0, None, 0
    mem = MemTable(0)
    for number in sorted(n for k, n in numbered if k is FileKind.WAL and n >= log_number):
        path = filenames.path(directory, filenames.wal_name(number))
        wal_records, damage = salvage_records(fs.read_all(path))
        report.lost.extend(f"{path}: damaged record at offset {off} dropped" for off in damage)
        for _off, record_type, payload in wal_records:
            if record_type != WAL_BATCH:
                continue
            try:
                seq, ops = decode_batch(payload, path)
            except CorruptionError as exc:
                report.lost.append(str(exc))
                continue
            for flags, key, expire_ms, value in ops:
                mem.put(key, flags, expire_ms, value)
            last_seq = max(last_seq, seq + len(ops) - 1)
    sources: list[Iterator[RawEntry]] = [iter(mem)]
    cache = BlockCache(0)
    for number in table_numbers:
        path = filenames.path(directory, filenames.table_name(number))
        try:
            entries, bad_blocks = SSTable(fs, path, number, cache).salvage()
        except (CorruptionError, StorageError) as exc:
            report.lost.append(f"{path}: table unreadable, dropped: {exc}")
            continue
        report.lost.extend(str(d) + " (block dropped)" for d in bad_blocks)
        sources.append(iter(entries))
    next_file = max([n + 1 for _, n in numbered] + [1])
    now_ms = int(wall_clock() * 1000)
    added: list[tuple[int, TableFile]] = []
    builder: SSTableBuilder | None = None
    for key, flags, expire_ms, value in merge(sources):
        if not is_live(flags, expire_ms, now_ms):
            continue  # everything is in this merge: nothing older can resurface
        if builder is None:
            number, next_file = next_file, next_file + 1
            builder = SSTableBuilder(
                fs,
                filenames.path(directory, filenames.table_name(number)),
                options.block_size,
                options.bloom_bits_per_key,
                options.compression,
            )
        builder.add(key, flags, expire_ms, value)
        report.entries_kept += 1
        if builder.file_size >= options.target_file_bytes:
            added.append(_finish(builder, number))
            builder = None
    if builder is not None:
        added.append(_finish(builder, number))
    report.tables_written = len(added)
    manifest_number, log_after = next_file, next_file + 1
    snapshot = VersionEdit(
        added=added,
        log_number=log_after,
        next_file=log_after + 1,
        last_seq=last_seq,
        catalog=catalog,
    )
    manifest = ManifestWriter(fs, directory, manifest_number, snapshot)
    manifest.close()
    keep = {filenames.table_name(t.number) for _, t in added} | {
        manifest.name,
        filenames.LOCK,
        filenames.CURRENT,
    }
    for name in names:
        if name not in keep and (
            filenames.parse(name) is not None or name.endswith(filenames.TEMP_SUFFIX)
        ):
            fs.remove(filenames.path(directory, name))
    if catalog is None and state is None:
        report.lost.append(
            "catalog of namespaces and tables unreadable; named tables' data "
            "is kept but only the default table is listed"
        )
    return report


def _finish(builder: SSTableBuilder, number: int) -> tuple[int, TableFile]:
    info = builder.finish()
    return 1, TableFile(number, info.size, info.entries, info.smallest, info.largest)
