"""Opening a data directory: what the engine does with the files it finds.

:func:`recover` runs the steps in order (docs/architecture.md, "Recovery path"; what
each kind of damage does is in docs/format.md): replay the manifest; replay the WALs
it does not cover into a memtable; write that to a level-0 table, so no write is ever
replayed twice; start a new WAL and a new manifest; delete what is not live.
"""

from __future__ import annotations

from shaledb.engine import filenames
from shaledb.engine.batch import decode_batch
from shaledb.engine.filenames import FileKind
from shaledb.engine.fs import FileSystem
from shaledb.engine.manifest import ManifestState, current_name, read_manifest
from shaledb.engine.memtable import MemTable
from shaledb.engine.record_log import WAL_BATCH, read_records
from shaledb.engine.table_writer import TableWriter
from shaledb.engine.version_set import VersionSet
from shaledb.engine.wal import WriteAheadLog
from shaledb.errors import CorruptionError
from shaledb.options import Options


def recover(
    fs: FileSystem, directory: str, options: Options, versions: VersionSet, tables: TableWriter
) -> tuple[WriteAheadLog, MemTable]:
    """Bring ``directory`` to a state the engine can write to: a new WAL and memtable.

    Raises:
        CorruptionError: damage that recovery must not guess about.
        StorageError: the directory cannot be read or written.
    """
    name = current_name(fs, directory)
    if name is None:
        start_without_current(fs, directory, fs.list_dir(directory))
        state = ManifestState(name="")
    else:
        state = read_manifest(fs, directory, name)
    numbered = [p for p in map(filenames.parse, fs.list_dir(directory)) if p is not None]
    versions.recover(state, [n for _, n in numbered])
    wal_numbers = [n for k, n in numbered if k is FileKind.WAL]
    mem, versions.last_seq = replay_wals(
        fs, directory, state.log_number, wal_numbers, state.last_seq
    )
    replayed = tables.write_memtable(mem)
    wal_number = versions.new_file_number()
    wal = WriteAheadLog(
        fs, filenames.path(directory, filenames.wal_name(wal_number)), options.fsync
    )
    try:
        fs.sync_dir(directory)
        versions.start(replayed, wal_number)
        remove_obsolete(
            fs, directory, wal_number, versions.current.numbers(), versions.manifest_name
        )
    except BaseException:
        wal.close()
        raise
    return wal, MemTable(wal_number)


def start_without_current(fs: FileSystem, directory: str, names: list[str]) -> None:
    """Prepare a directory that has no CURRENT for a new database.

    Files left by a crash during the very first open (empty WALs, manifests holding
    neither a table nor a catalog) are removed.

    Raises:
        CorruptionError: database files exist that a new database would silently lose.
    """
    leftovers = [n for n in names if filenames.parse(n) is not None]
    if not leftovers:
        return
    if _only_empty_start(fs, directory, leftovers):
        for name in leftovers:
            fs.remove(filenames.path(directory, name))
        return
    raise CorruptionError(
        f"{directory}: CURRENT is missing but database files exist "
        f"({', '.join(leftovers[:5])}); run 'shaledb repair {directory}'",
        filenames.path(directory, filenames.CURRENT),
    )


def _only_empty_start(fs: FileSystem, directory: str, names: list[str]) -> bool:
    # A catalog means namespaces or tables were created, which a reset would lose; the
    # first snapshot has neither tables nor a catalog.
    for name in names:
        kind, _ = filenames.parse(name) or (None, 0)
        path = filenames.path(directory, name)
        if kind is FileKind.TABLE:
            return False
        if kind is FileKind.WAL and fs.size(path) > 0:
            return False
        if kind is FileKind.MANIFEST:
            manifest = fs.read_all(path)
            if b'"add"' in manifest or b'"catalog"' in manifest:
                return False
    return True


def replay_wals(
    fs: FileSystem, directory: str, log_number: int, wal_numbers: list[int], last_seq: int
) -> tuple[MemTable, int]:
    """The writes of the WALs numbered ``>= log_number`` in one memtable, and the last
    sequence number seen (at least ``last_seq``).

    Raises:
        CorruptionError: damage in a WAL other than a torn tail of the newest one.
    """
    mem = MemTable(0)
    live_wals = sorted(n for n in wal_numbers if n >= log_number)
    for i, number in enumerate(live_wals):
        path = filenames.path(directory, filenames.wal_name(number))
        data = fs.read_all(path)
        # Older logs were fsynced when they were rotated out: only the newest may be torn.
        records, _ = read_records(
            data, path, tail_may_be_torn=(i == len(live_wals) - 1), kind=WAL_BATCH
        )
        for record in records:
            seq, ops = decode_batch(record.payload, path, record.offset)
            for flags, key, expire_ms, value in ops:
                mem.put(key, flags, expire_ms, value)
            last_seq = max(last_seq, seq + len(ops) - 1)
    mem.last_seq = last_seq
    return mem, last_seq


def remove_obsolete(
    fs: FileSystem, directory: str, log_number: int, live_tables: set[int], manifest_name: str
) -> None:
    """Delete what is not live: older WALs, unreferenced tables, other manifests, temp files."""
    for name in fs.list_dir(directory):
        parsed = filenames.parse(name)
        if name.endswith(filenames.TEMP_SUFFIX) or (
            parsed is not None and _obsolete(parsed, name, log_number, live_tables, manifest_name)
        ):
            fs.remove(filenames.path(directory, name))


def _obsolete(
    parsed: tuple[FileKind, int],
    name: str,
    log_number: int,
    live_tables: set[int],
    manifest_name: str,
) -> bool:
    kind, number = parsed
    if kind is FileKind.WAL:
        return number < log_number
    if kind is FileKind.TABLE:
        return number not in live_tables
    return name != manifest_name
