"""Opening a data directory: what the engine does with the files it finds.

:func:`recover` runs the steps in order (docs/architecture.md, "Recovery path"; what
each kind of damage does is in docs/format.md): replay the manifest; replay the WALs
it does not cover into a memtable; write that to a level-0 table, so no write is ever
replayed twice; start a new WAL and a new manifest; delete what is not live.
"""

from __future__ import annotations

from typing import NamedTuple

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


class LiveSet(NamedTuple):
    """What an open database needs after recovery: everything else may go."""

    tables: set[int]
    log_number: int
    manifest_name: str


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
        if state.repair_inputs:
            _finish_repair(fs, directory, state)
    numbered = [p for p in map(filenames.parse, fs.list_dir(directory)) if p is not None]
    versions.recover(state, [n for _, n in numbered])
    wal_numbers = [n for k, n in numbered if k is FileKind.WAL]
    mem, versions.last_seq = replay_wals(fs, directory, state, wal_numbers)
    replayed = tables.write_memtable(mem)
    wal_number = versions.new_file_number()
    wal = WriteAheadLog(
        fs, filenames.path(directory, filenames.wal_name(wal_number)), options.fsync
    )
    try:
        fs.sync_dir(directory)
        versions.start(replayed, wal_number)
        live = LiveSet(versions.current.numbers(), wal_number, versions.manifest_name)
        remove_obsolete(fs, directory, state, live)
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
    damage = missing_current_damage(fs, directory, names)
    if damage is not None:
        raise damage
    for name in names:
        if filenames.parse(name) is not None:
            fs.remove(filenames.path(directory, name))


def missing_current_damage(
    fs: FileSystem, directory: str, names: list[str]
) -> CorruptionError | None:
    """What it means that ``directory`` (holding ``names``) has no CURRENT: None when
    its numbered files, if any, are only the leftovers of a first open that crashed;
    else the error naming the files a new database would silently lose."""
    leftovers = [n for n in names if filenames.parse(n) is not None]
    if not leftovers or _only_empty_start(fs, directory, leftovers):
        return None
    return CorruptionError(
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


def _finish_repair(fs: FileSystem, directory: str, state: ManifestState) -> None:
    """Move into ``lost/`` the inputs of the repair that wrote ``state`` that are still
    here: the repair was cut short after its new state was durable and before it moved
    them (docs/format.md, "Repair"). None of them is live in ``state``."""
    left = []
    for name in state.repair_inputs or ():
        parsed = filenames.parse(name)
        if parsed is None or name == state.name:
            continue
        kind, number = parsed
        live = (kind is FileKind.TABLE and number in state.tables) or (
            kind is FileKind.WAL and number >= state.log_number
        )
        if not live and fs.exists(filenames.path(directory, name)):
            left.append(name)
    if left:
        move_into_lost(fs, directory, left)


def move_into_lost(fs: FileSystem, directory: str, names: list[str]) -> list[str]:
    """Rename the files ``names`` of ``directory`` into its ``lost/`` (``NAME~N`` when
    the name is taken there), then fsync both directories; the names they got."""
    lost = filenames.path(directory, filenames.LOST_DIR)
    fs.make_dirs(lost)
    fs.sync_dir(directory)
    taken = set(fs.list_dir(lost))
    moved = []
    for name in names:
        target = filenames.lost_name(name, taken)
        taken.add(target)
        fs.rename(filenames.path(directory, name), filenames.path(lost, target))
        moved.append(target)
    fs.sync_dir(lost)
    fs.sync_dir(directory)
    return moved


class LiveWal(NamedTuple):
    """A WAL the manifest does not cover: its path, size and whether its tail may be torn."""

    path: str
    size: int
    may_be_torn: bool


def live_wals(
    fs: FileSystem, directory: str, log_number: int, wal_numbers: list[int]
) -> list[LiveWal]:
    """The WALs numbered ``>= log_number``, oldest first. Only the last one holding any
    bytes may end in a torn write: an older one was fsynced when it was rotated out, and
    an empty one after it is a new log made by an open that did not finish."""
    paths = [
        filenames.path(directory, filenames.wal_name(n))
        for n in sorted(n for n in wal_numbers if n >= log_number)
    ]
    sizes = [fs.size(path) for path in paths]
    last_written = max((i for i, size in enumerate(sizes) if size), default=-1)
    return [LiveWal(p, size, i == last_written) for i, (p, size) in enumerate(zip(paths, sizes))]


def replay_wals(
    fs: FileSystem, directory: str, state: ManifestState, wal_numbers: list[int]
) -> tuple[MemTable, int]:
    """The writes of the WALs the manifest ``state`` does not cover, in one memtable,
    and the last sequence number (at least the manifest's).

    What is checked, so that a WAL cut short, emptied or deleted never goes unnoticed:
    the WAL numbered ``log_number`` exists; only the WAL :func:`live_wals` allows may
    end in a torn write; the sequence numbers
    run on without a gap from the manifest's ``flushed_seq`` through every log; and
    they reach the manifest's ``last_seq`` (the log is made durable before each edit).

    Raises:
        CorruptionError: a check fails, or a WAL is damaged other than a torn tail.
    """
    mem = MemTable(0)
    wals = live_wals(fs, directory, state.log_number, wal_numbers)
    # Checks that need the flushed_seq and the durable-before-edit rule of this version.
    checked = state.flushed_seq is not None
    # The WAL the manifest names is created (and the directory fsynced) before the
    # edit that names it, and removed only once an edit names a later one: missing, it
    # was lost with the writes it held after the manifest's last edit. The exception is
    # a repaired directory, whose manifest names a log not made yet.
    unflushed = checked and state.last_seq > (state.flushed_seq or 0)
    missing = filenames.path(directory, filenames.wal_name(state.log_number))
    if state.log_number and ((wals and wals[0].path != missing) or (not wals and unflushed)):
        raise CorruptionError(
            f"{missing}: missing, yet manifest {state.name} names it the oldest live log; "
            f"its writes are lost{_lost_edits_hint(directory, state)}",
            missing,
        )
    if state.log_number and not wals and checked and state.repair_inputs is None:
        raise CorruptionError(
            f"{missing}: missing, yet manifest {state.name} names it the live log: the "
            "writes made since the manifest's last edit, if there were any, are lost; "
            f"'shaledb repair {directory}' opens the database with what its tables hold",
            missing,
        )
    expected = (state.flushed_seq or 0) + 1
    last_seq = state.last_seq
    for path, size, may_be_torn in wals:
        if not size:
            continue
        records, _ = read_records(
            fs.read_all(path),
            path,
            tail_may_be_torn=may_be_torn,
            kind=WAL_BATCH,
            gaps_may_be_unwritten=may_be_torn,
        )
        for offset, _, payload in records:
            seq, ops = decode_batch(payload, path, offset)
            if checked and seq != expected:
                raise CorruptionError(
                    f"{path}: the record at offset {offset} holds sequence number {seq}, "
                    f"expected {expected}: writes {min(seq, expected)}.."
                    f"{max(seq, expected) - 1} are missing or out of place",
                    path,
                    offset,
                )
            for flags, key, expire_ms, value in ops:
                mem.put(key, flags, expire_ms, value)
            expected = seq + len(ops)
            last_seq = max(last_seq, expected - 1)
    if checked and expected - 1 < state.last_seq:
        where = wals[-1].path if wals else directory
        raise CorruptionError(
            f"{where}: the logs end at sequence number {expected - 1}, but manifest "
            f"{state.name} records writes up to {state.last_seq}: a WAL lost records",
            where,
        )
    mem.last_seq = last_seq
    return mem, last_seq


def _lost_edits_hint(directory: str, state: ManifestState) -> str:
    path = filenames.path(directory, state.name)
    if state.torn_at is not None:
        return (
            f" (the manifest {path} ends in damage at offset {state.torn_at}: "
            "it lost edits that were acted on; run 'shaledb repair')"
        )
    return f" (or the manifest {path} was truncated; run 'shaledb repair')"


def remove_obsolete(fs: FileSystem, directory: str, state: ManifestState, live: LiveSet) -> None:
    """Delete what is provably dead: WALs below the log number, other manifests, temp
    files, and tables no live edit lists.

    A table is provably dead only when the manifest ended cleanly: every edit that was
    acted on is then in it (the checks of :func:`replay_wals` and the version set hold).
    When the manifest ended in damage, unlisted tables are moved into ``lost/`` instead,
    for ``shaledb repair`` or a person to look at.
    """
    lost = filenames.path(directory, filenames.LOST_DIR)
    for name in fs.list_dir(directory):
        parsed = filenames.parse(name)
        path = filenames.path(directory, name)
        if name.endswith(filenames.TEMP_SUFFIX):
            fs.remove(path)
            continue
        if parsed is None:
            continue
        kind, number = parsed
        if kind is FileKind.TABLE:
            if number in live.tables:
                continue
            if state.torn_at is not None:
                fs.make_dirs(lost)
                taken = set(fs.list_dir(lost))
                fs.rename(path, filenames.path(lost, filenames.lost_name(name, taken)))
                continue
            fs.remove(path)
        elif (kind is FileKind.WAL and number < live.log_number) or (
            kind is FileKind.MANIFEST and name != live.manifest_name
        ):
            fs.remove(path)
    fs.sync_dir(directory)
