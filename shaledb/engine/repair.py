"""Salvage a damaged data directory without destroying anything readable (``shaledb repair``).

The rule and its reasoning are in docs/format.md ("Repair"). In short, as LevelDB's
RepairDB: read every table file and every WAL on disk, keep every entry that checks
out, merge them newest first, write the result as new tables under a new manifest,
report what was dropped. The steps, each durable before the next:

1. read: the newest manifest that reads (CURRENT's, else any ``MANIFEST-*``, newest
   first), up to its first damage; every table and WAL; nothing is changed;
2. write the merged entries as new tables (``*.sst.tmp``, fsynced, renamed), fsync
   the directory;
3. write a new manifest listing only them and point CURRENT at it (atomic);
4. only then move every input, read or not, into ``lost/`` (nothing is unlinked).

A crash before step 3 leaves the old database as it was (plus unlisted copies, which
a second repair reads like any table); after it, the repaired one. Run repair again
after a crash during it: it is idempotent.

A hash-log directory (:mod:`shaledb.engine.detect`) is repaired by the hash-log
engine's own ``repair_hashlog``; both reports offer :class:`RepairResult`.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shaledb.engine import filenames
from shaledb.engine.base import RawEntry
from shaledb.engine.batch import decode_batch
from shaledb.engine.block_cache import BlockCache
from shaledb.engine.detect import HASHLOG, detect_engine
from shaledb.engine.entry import is_live
from shaledb.engine.filenames import FileKind
from shaledb.engine.fs import FileSystem
from shaledb.engine.iterators import merge
from shaledb.engine.manifest import ManifestWriter, current_name
from shaledb.engine.memtable import MemTable
from shaledb.engine.record_log import MANIFEST_EDIT, WAL_BATCH, salvage_records
from shaledb.engine.recovery import move_into_lost
from shaledb.engine.sstable import SSTable, SSTableBuilder
from shaledb.engine.sstable.format import UNKNOWN_LEVEL, UNKNOWN_SEQS
from shaledb.engine.version_edit import TableFile, VersionEdit
from shaledb.errors import CorruptionError, StorageError

# The catalog is the key space's concept (shaledb.keyspace), read here only to keep
# table ids from being reused: the engine itself never looks inside keys.
from shaledb.keyspace import table_id_of
from shaledb.options import Options

#: Where repair keeps its inputs once the repaired state is durable.
#: Tables whose ids are in the data but not in the catalog are listed here.
RECOVERED_NAMESPACE = "recovered"


class RepairResult(Protocol):
    """What a repair of either engine reports."""

    @property
    def dropped(self) -> Sequence[str]:
        """One message per record, block or file that could not be kept."""
        ...

    @property
    def summary(self) -> str:
        """One line: what the repaired database holds."""
        ...


@dataclass
class RepairReport:
    """What repair kept, what it had to drop, and what it moved into ``lost/``."""

    lost: list[str] = field(default_factory=list)
    entries_kept: int = 0
    tables_written: int = 0
    moved: list[str] = field(default_factory=list)

    @property
    def dropped(self) -> list[str]:
        """:attr:`lost`, under the name both engines' reports share."""
        return self.lost

    @property
    def summary(self) -> str:
        return f"kept {self.entries_kept:,} entries in {self.tables_written} SST files"


@dataclass
class _Base:
    """What the newest readable manifest says, up to its first damage."""

    name: str = ""
    levels: dict[int, int] = field(default_factory=dict)  # table number -> level
    removed: set[int] = field(default_factory=set)  # tables an edit made obsolete
    log_number: int = 0
    next_file: int = 1
    last_seq: int = 0
    catalog: dict[str, Any] | None = None


@dataclass
class _Source:
    """One input read whole: a table, or the writes of one WAL."""

    name: str
    number: int
    entries: list[RawEntry]
    seqs: tuple[int, int]
    is_wal: bool = False
    level: int | None = None  # set for a table the manifest lists
    written_level: int = UNKNOWN_LEVEL  # the level its footer says it was written for


def repair_directory(
    directory: str, options: Options | None = None, fs: FileSystem | None = None
) -> RepairResult:
    """Rebuild ``directory``, of either engine, from everything readable.

    Raises:
        LockedError: the database is open elsewhere.
        StorageError: the directory cannot be read or written (nothing was lost:
            inputs move only once the repaired state is durable).
        InvalidArgumentError: the directory holds files of neither engine.
    """
    fs = fs or FileSystem()
    if detect_engine(directory, fs) == HASHLOG:
        from shaledb.engine.hashlog import repair_hashlog

        return repair_hashlog(directory, fs=fs)
    options = options or Options()
    lock = fs.lock(filenames.path(directory, filenames.LOCK))
    try:
        return _repair(directory, options, fs)
    finally:
        lock.release()


def _repair(directory: str, options: Options, fs: FileSystem) -> RepairReport:
    report = RepairReport()
    names = [n for n in fs.list_dir(directory) if not n.endswith(filenames.TEMP_SUFFIX)]
    lost_dir = filenames.path(directory, filenames.LOST_DIR)
    lost_names = fs.list_dir(lost_dir) if fs.exists(lost_dir) else []
    numbered = {n: p for n in names if (p := filenames.parse(n)) is not None}
    base = _read_base(fs, directory, names, report)
    sources = _read_sources(fs, directory, numbered, base, report)
    order = _newest_first(sources, base)
    last_seq = max(
        [base.last_seq]
        + [s.seqs[1] for s in sources if s.seqs != UNKNOWN_SEQS and s.seqs[1] < UNKNOWN_SEQS[1]]
    )
    on_disk = [p[1] for p in numbered.values()]
    on_disk += [p[1] for n in lost_names if (p := _parse_lost(n)) is not None]
    next_file = max(on_disk + [base.next_file, 0]) + 1
    added, next_file, ids = _write_tables(
        fs, directory, options, order, next_file, last_seq, report
    )
    catalog = _rebuilt_catalog(base.catalog, ids, report)
    manifest_number, log_number = next_file, next_file + 1
    inputs = [n for n in names if n in numbered and n != filenames.manifest_name(manifest_number)]
    snapshot = VersionEdit(
        added=added,
        log_number=log_number,
        next_file=log_number + 1,
        last_seq=last_seq,
        catalog=catalog,
        # Every write found is in the new tables, and no WAL is live: the next open
        # checks from here that no later write goes missing.
        flushed_seq=last_seq,
        # Should this repair be cut short before it moves them, the open moves them.
        repair_inputs=inputs,
    )
    # The new state is durable once this returns: manifest fsynced, CURRENT replaced.
    ManifestWriter(fs, directory, manifest_number, snapshot).close()
    _move_aside(fs, directory, lost_dir, inputs, report)
    return report


# -- step 1: reading -----------------------------------------------------------------------


def _read_base(fs: FileSystem, directory: str, names: list[str], report: RepairReport) -> _Base:
    """The newest manifest that reads, replayed up to its first damage."""
    try:
        named = current_name(fs, directory)
    except CorruptionError as exc:
        report.lost.append(f"CURRENT unusable, the newest readable manifest is used: {exc}")
        named = None
    manifests = sorted(
        (n for n in names if (p := filenames.parse(n)) and p[0] is FileKind.MANIFEST),
        key=lambda n: -int(n.split("-")[1]),
    )
    candidates = ([named] if named else []) + [m for m in manifests if m != named]
    chosen: _Base | None = None
    for name in candidates:
        base = _replay(fs, directory, name, report)
        if base is None:
            continue
        if chosen is None:
            chosen = base
        if chosen.catalog is None and base.catalog is not None:
            chosen.catalog = base.catalog  # an older manifest's catalog beats none
            report.lost.append(f"catalog taken from {name}")
        if chosen.catalog is not None:
            break
    if chosen is None:
        report.lost.append("no manifest reads: tables are ordered by their sequence ranges")
        return _Base()
    return chosen


def _replay(fs: FileSystem, directory: str, name: str, report: RepairReport) -> _Base | None:
    path = filenames.path(directory, name)
    try:
        records, damage = salvage_records(fs.read_all(path), MANIFEST_EDIT)
    except StorageError as exc:
        report.lost.append(str(exc))
        return None
    first_damage = damage[0] if damage else None
    base = _Base(name=name)
    count = 0
    for record in records:
        if first_damage is not None and record.offset > first_damage:
            break  # edits after damage apply to a state we do not know
        try:
            edit = VersionEdit.decode(record.payload, path, record.offset)
        except CorruptionError as exc:
            first_damage = record.offset
            report.lost.append(str(exc))
            break
        count += 1
        for _, number in edit.removed:
            base.levels.pop(number, None)
            base.removed.add(number)
        for level, table in edit.added:
            base.levels[table.number] = level
            base.removed.discard(table.number)
        base.log_number = edit.log_number if edit.log_number is not None else base.log_number
        base.next_file = edit.next_file if edit.next_file is not None else base.next_file
        base.last_seq = edit.last_seq if edit.last_seq is not None else base.last_seq
        if edit.catalog is not None:
            base.catalog = dict(edit.catalog)
    if first_damage is not None:
        report.lost.append(
            f"{path}: damaged at offset {first_damage}; the {count} edits before it are used"
        )
    return base if count else None


def _read_sources(
    fs: FileSystem,
    directory: str,
    numbered: dict[str, tuple[FileKind, int]],
    base: _Base,
    report: RepairReport,
) -> list[_Source]:
    sources: list[_Source] = []
    cache = BlockCache(0)
    for name, (kind, number) in sorted(numbered.items(), key=lambda item: item[1][1]):
        path = filenames.path(directory, name)
        if kind is FileKind.TABLE:
            if number in base.removed:
                report.lost.append(f"{path}: superseded by a compaction in {base.name}, not read")
                continue
            try:
                table = SSTable(fs, path, number, cache)
                entries, bad_blocks = table.salvage()
            except (CorruptionError, StorageError) as exc:
                report.lost.append(f"{path}: table unreadable: {exc}")
                continue
            report.lost.extend(f"{d} (block dropped)" for d in bad_blocks)
            level = base.levels.get(number)
            sources.append(
                _Source(name, number, entries, table.seq_range, False, level, table.written_level)
            )
        elif kind is FileKind.WAL:
            if number < base.log_number:
                report.lost.append(f"{path}: already in tables ({base.name}), not read")
                continue
            source = _read_wal(fs, path, name, number, report)
            if source is not None:
                sources.append(source)
    return sources


def _read_wal(
    fs: FileSystem, path: str, name: str, number: int, report: RepairReport
) -> _Source | None:
    try:
        records, damage = salvage_records(fs.read_all(path), WAL_BATCH)
    except StorageError as exc:
        report.lost.append(str(exc))
        return None
    report.lost.extend(f"{path}: damaged record at offset {off} dropped" for off in damage)
    mem = MemTable(number)
    lo, hi = UNKNOWN_SEQS[1], 0
    for record in records:
        try:
            seq, ops = decode_batch(record.payload, path, record.offset)
        except CorruptionError as exc:
            report.lost.append(str(exc))
            continue
        for flags, key, expire_ms, value in ops:
            mem.put(key, flags, expire_ms, value)
        lo, hi = min(lo, seq), max(hi, seq + len(ops) - 1)
    if not len(mem):
        return None
    return _Source(name, number, list(mem), (lo, hi), is_wal=True)


# -- precedence ----------------------------------------------------------------------------


def _after(a: _Source, b: _Source) -> bool:
    """Whether every write in ``a`` follows every write in ``b`` (known ranges only)."""
    return UNKNOWN_SEQS not in (a.seqs, b.seqs) and a.seqs[0] > b.seqs[1]


def _above_listed(source: _Source, listed: _Source) -> bool:
    """Whether an unlisted ``source`` takes precedence over the listed table ``listed``."""
    if source.is_wal or listed.seqs == UNKNOWN_SEQS:
        # WALs at or above the manifest's log number hold writes no listed table has;
        # a table from before sequence ranges is older than anything made after it.
        return True
    if _after(listed, source):
        return False
    if _after(source, listed):
        return True
    # Ranges overlap: the source is a compaction output made after the manifest's
    # last edit. Written for a level no deeper than the one the table is listed at,
    # it is newer (the listed table was its input, or moved down before it was made);
    # written deeper, the listed table holds the newer versions of the keys they share.
    # A listed repair output (no written level) holds the merge of everything before it.
    assert listed.level is not None
    if UNKNOWN_LEVEL in (source.written_level, listed.written_level):
        return False
    return source.written_level <= listed.level


def _unlisted_key(source: _Source) -> tuple[int, int, int]:
    """Newest first among sources the manifest does not list (see docs, "Repair")."""
    level = 0 if source.is_wal else source.written_level  # a WAL ranks as its flush would
    return (level, -source.seqs[1] if source.seqs != UNKNOWN_SEQS else 1, -source.number)


def _newest_first(sources: list[_Source], base: _Base) -> list[_Source]:
    """The sources in precedence order, newest first (docs/format.md, "Repair")."""
    listed = sorted(
        (s for s in sources if s.level is not None),
        key=lambda s: (s.level, -s.number),
    )
    # Among unlisted sources: by the level they were written for (a flush or a WAL,
    # level 0, is newer than everything made before it; a shallower output is newer
    # than a deeper one it overlaps), then the newest writes, then the newest file.
    unlisted = sorted((s for s in sources if s.level is None), key=_unlisted_key)
    # An unlisted source goes right below the last listed table it does not precede.
    below: list[list[_Source]] = [[] for _ in range(len(listed) + 1)]
    for source in unlisted:
        slot = 0
        for i, table in enumerate(listed):
            if not _above_listed(source, table):
                slot = i + 1
        below[slot].append(source)
    order = list(below[0])
    for table, group in zip(listed, below[1:]):
        order.append(table)
        order.extend(group)
    return order


# -- step 2: writing -----------------------------------------------------------------------


def _write_tables(
    fs: FileSystem,
    directory: str,
    options: Options,
    order: list[_Source],
    next_file: int,
    last_seq: int,
    report: RepairReport,
) -> tuple[list[tuple[int, TableFile]], int, set[int]]:
    """Merge ``order`` into new durable tables; ``(added, next file number, table ids)``."""
    now_ms = int(options.clock() * 1000)
    added: list[tuple[int, TableFile]] = []
    ids: set[int] = set()
    numbers = itertools.count(next_file)
    builder: SSTableBuilder | None = None
    temps: list[tuple[str, str]] = []
    sources: list[Iterator[RawEntry]] = [iter(s.entries) for s in order]
    for key, flags, expire_ms, value in merge(sources):
        if not is_live(flags, expire_ms, now_ms):
            continue  # every version is in this merge: nothing older can resurface
        ids.add(_table_id(key))
        if builder is None:
            final = filenames.path(directory, filenames.table_name(next(numbers)))
            temp = filenames.temp_name(final)
            temps.append((temp, final))
            builder = SSTableBuilder(
                fs,
                temp,
                options.block_size,
                options.bloom_bits_per_key,
                options.compression,
                int(final.rsplit("/", 1)[-1].split(".")[0]),
                (0, last_seq),
                # Not a level: the merge of everything before it. An unlisted input
                # whose range overlaps it never takes precedence over it (a repair
                # that runs again after a crash during this one).
                UNKNOWN_LEVEL,
            )
        builder.add(key, flags, expire_ms, value)
        report.entries_kept += 1
        if builder.file_size >= options.target_file_bytes:
            added.append(_finish(builder))
            builder = None
    if builder is not None:
        added.append(_finish(builder))
    for temp, final in temps:
        fs.rename(temp, final)
    fs.sync_dir(directory)
    report.tables_written = len(added)
    return added, next(numbers), ids


def _finish(builder: SSTableBuilder) -> tuple[int, TableFile]:
    info = builder.finish()
    return 1, TableFile(builder.number, info.size, info.entries, info.smallest, info.largest)


def _table_id(key: bytes) -> int:
    try:
        return table_id_of(key)
    except (IndexError, struct.error):  # a key too short for its prefix
        return 0


def _rebuilt_catalog(
    catalog: dict[str, Any] | None, ids: set[int], report: RepairReport
) -> dict[str, Any]:
    """The catalog to keep: ids never reused, every id in the data reachable by a name."""
    if catalog is None:
        report.lost.append(
            "catalog of namespaces and tables unreadable: the default table keeps its "
            f"data; other tables' data is kept under namespace {RECOVERED_NAMESPACE!r}"
        )
        catalog = {"version": 1, "next_id": 1, "namespaces": {"default": {"default": 0}}}
    catalog = dict(catalog)
    namespaces = {ns: dict(tables) for ns, tables in catalog.get("namespaces", {}).items()}
    dropped = list(catalog.get("dropped", []))
    known = {int(i) for tables in namespaces.values() for i in tables.values()} | set(dropped)
    for table_id in sorted(ids - known):
        recovered = namespaces.setdefault(RECOVERED_NAMESPACE, {})
        name = f"table_{table_id}"
        while name in recovered:
            name += "_"
        recovered[name] = table_id
        report.lost.append(
            f"entries of table id {table_id} are in no catalog entry: kept as "
            f"{RECOVERED_NAMESPACE}:{name}"
        )
    catalog["namespaces"] = namespaces
    catalog["dropped"] = dropped
    catalog["next_id"] = max([int(catalog.get("next_id", 1))] + [i + 1 for i in ids | known])
    return catalog


# -- step 4: keeping the inputs aside ------------------------------------------------------


_parse_lost = filenames.parse_lost


def _move_aside(
    fs: FileSystem, directory: str, lost_dir: str, inputs: list[str], report: RepairReport
) -> None:
    if not inputs:
        return
    report.moved.extend(move_into_lost(fs, directory, inputs))
    report.lost.append(
        f"{len(inputs)} input files moved into {lost_dir} (delete it once satisfied)"
    )
