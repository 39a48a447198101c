"""Offline verification of a data directory: every checksum of every live file.

Used by ``shaledb check``. Takes the directory lock, so it never races a writer. A
hash-log directory (:mod:`shaledb.engine.detect`) is checked by the hash-log engine's
own ``check_hashlog``; both reports offer :class:`CheckResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from shaledb.engine import filenames
from shaledb.engine.batch import decode_batch
from shaledb.engine.block_cache import BlockCache
from shaledb.engine.detect import HASHLOG, detect_engine
from shaledb.engine.filenames import FileKind
from shaledb.engine.fs import FileSystem
from shaledb.engine.manifest import read_current
from shaledb.engine.record_log import WAL_BATCH, read_records, salvage_records
from shaledb.engine.recovery import live_wals, missing_current_damage, replay_wals
from shaledb.engine.sstable import SSTable
from shaledb.errors import CorruptionError, StorageError


class CheckResult(Protocol):
    """What a check of either engine reports."""

    @property
    def healthy(self) -> bool:
        """True when no damage was found."""
        ...

    @property
    def damage(self) -> Sequence[str]:
        """One message per damaged place, naming the file and offset."""
        ...

    @property
    def notes(self) -> Sequence[str]:
        """Findings that are not damage (a torn tail that the next open drops...)."""
        ...

    @property
    def summary(self) -> str:
        """One line: what was read (files, entries, records)."""
        ...


@dataclass
class CheckReport:
    """What a check found. ``damage`` lists one message per damaged place (file and offset)."""

    damage: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: int = 0
    table_entries: int = 0
    wal_records: int = 0

    @property
    def healthy(self) -> bool:
        return not self.damage

    @property
    def summary(self) -> str:
        return (
            f"{self.tables} SST files, {self.table_entries} SST entries, "
            f"{self.wal_records} WAL records"
        )


def check_directory(directory: str, fs: FileSystem | None = None) -> CheckResult:
    """Verify every live file in ``directory``, of either engine.

    Raises:
        LockedError: another process has the database open.
        StorageError: the directory cannot be read.
        InvalidArgumentError: the directory holds files of neither engine.
    """
    fs = fs or FileSystem()
    if not fs.exists(filenames.path(directory, filenames.CURRENT)) and not fs.exists(directory):
        raise StorageError(f"{directory} does not exist")
    if detect_engine(directory, fs) == HASHLOG:
        from shaledb.engine.hashlog import check_hashlog

        return check_hashlog(directory, fs=fs)
    lock = fs.lock(filenames.path(directory, filenames.LOCK))
    try:
        return _check(directory, fs)
    finally:
        lock.release()


def _check(directory: str, fs: FileSystem) -> CheckReport:
    report = CheckReport()
    try:
        state = read_current(fs, directory)
    except CorruptionError as exc:
        report.damage.append(str(exc))
        return report
    if state is None:
        missing = missing_current_damage(fs, directory, fs.list_dir(directory))
        if missing is None:
            report.notes.append(f"{directory} holds no database (no CURRENT)")
        else:
            report.damage.append(str(missing))
        return report
    cache = BlockCache(0)
    for _, rec in sorted(state.tables.values(), key=lambda t: t[1].number):
        path = filenames.path(directory, filenames.table_name(rec.number))
        report.tables += 1
        if not fs.exists(path):
            manifest = filenames.path(directory, state.name)
            report.damage.append(
                f"{manifest}: lists SST file {rec.number}, but {path} is missing: the "
                "manifest lost the edits that removed it or the SST file was deleted"
            )
            continue
        if fs.size(path) != rec.size:
            report.damage.append(f"{path}: {fs.size(path)} bytes, the manifest recorded {rec.size}")
        try:
            entries, damage = SSTable(fs, path, rec.number, cache).salvage()
        except CorruptionError as exc:
            report.damage.append(str(exc))
            continue
        report.table_entries += len(entries)
        report.damage.extend(str(d) for d in damage)
    numbered = [p for p in map(filenames.parse, fs.list_dir(directory)) if p is not None]
    wal_numbers = [n for kind, n in numbered if kind is FileKind.WAL]
    for path, _size, may_be_torn in live_wals(fs, directory, state.log_number, wal_numbers):
        data = fs.read_all(path)
        try:
            records, end = read_records(
                data, path, may_be_torn, WAL_BATCH, gaps_may_be_unwritten=may_be_torn
            )
            if end < len(data):
                report.notes.append(
                    f"{path}: torn write of {len(data) - end} bytes at offset {end} "
                    "(dropped when the database opens)"
                )
        except CorruptionError as exc:
            report.damage.append(str(exc))
            records, _ = salvage_records(data, WAL_BATCH)
        for record in records:
            try:
                decode_batch(record.payload, path, record.offset)
            except CorruptionError as exc:
                report.damage.append(str(exc))
        report.wal_records += len(records)
    if not report.damage:
        # The checks the open makes across files: the oldest live WAL exists, sequence
        # numbers run on without a gap and reach what the manifest recorded.
        try:
            replay_wals(fs, directory, state, wal_numbers)
        except CorruptionError as exc:
            report.damage.append(str(exc))
    if state.torn_at is not None:
        report.notes.append(
            f"{filenames.path(directory, state.name)}: ends in a torn edit at offset "
            f"{state.torn_at} (dropped when the database opens)"
        )
    listed = set(state.tables)
    for kind, number in numbered:
        if kind is FileKind.TABLE and number not in listed:
            report.notes.append(
                f"{filenames.path(directory, filenames.table_name(number))}: not listed in "
                "the manifest (left by a flush or compaction that did not finish); removed "
                "on open, or moved to lost/ when the manifest ends in damage"
            )
    return report
