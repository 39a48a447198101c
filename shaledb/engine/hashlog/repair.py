"""Salvaging a damaged hash-log store (docs/format.md, "Hash-log engine", "Check and
repair").

Every record whose checksum holds is read (after damage the reader looks for the next
offset where one checks out); the newest record of each key wins and tombstones then
drop out. The survivors are written to new segments with their index files, made
durable, and only then are the old files kept aside in ``lost/``: the directory form
moves them there; the two-file form copies the old pair there before the new pair is
renamed over it. Nothing is unlinked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from shaledb.engine import filenames
from shaledb.engine.entry import TOMBSTONE
from shaledb.engine.fs import FileSystem
from shaledb.engine.hashlog import records
from shaledb.engine.hashlog.check import run_locked
from shaledb.engine.hashlog.layout import Layout, check_identity, encode_identity, read_catalog
from shaledb.engine.hashlog.merge import Output, put_in_place
from shaledb.engine.hashlog.records import HEADER_SIZE, KIND_APPEND, KIND_MERGE, Record
from shaledb.errors import CorruptionError, StorageError


@dataclass
class HashLogRepairReport:
    """What a repair kept, dropped and moved aside."""

    records_read: int = 0
    keys_kept: int = 0
    damaged_places: int = 0
    dropped: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return (
            f"{self.keys_kept:,} keys kept from {self.records_read:,} records; "
            f"{self.damaged_places} damaged place(s) dropped; "
            f"{len(self.moved)} file(s) kept in lost/"
        )


def repair_hashlog(
    path: str, index_path: str | None = None, fs: FileSystem | None = None
) -> HashLogRepairReport:
    """Rebuild the store at ``path`` (a directory, or a data file with ``index_path``)
    from every record that checks out.

    Raises:
        LockedError: another process has the store open.
        StorageError: the store does not exist, or a file operation failed (then the
            old files are all still in place).
    """
    return run_locked(path, index_path, fs, _repair)


def _salvage(
    fs: FileSystem, layout: Layout, report: HashLogRepairReport
) -> tuple[list[int], dict[bytes, tuple[Record, bytes]]]:
    """The segment numbers read, and the newest record of each key with its bytes."""
    numbers = layout.segment_numbers(fs)
    newest: dict[bytes, tuple[Record, bytes]] = {}
    for number in numbers:
        path = layout.segment_path(number)
        data = fs.read_all(path)
        try:
            records.decode_header(data, path)
        except CorruptionError as exc:
            report.dropped.append(f"{exc} (records after the header still read)")
        found, damage = records.salvage_records(data, HEADER_SIZE)
        report.damaged_places += len(damage)
        report.dropped.extend(f"{path}: damaged record at offset {at} dropped" for at in damage)
        report.records_read += len(found)
        for record in found:
            held = newest.get(record.key)
            if held is None or held[0].seq < record.seq:
                newest[record.key] = (record, data)
    return numbers, newest


def _repair(fs: FileSystem, layout: Layout) -> HashLogRepairReport:
    report = HashLogRepairReport()
    for temp in layout.temp_files(fs):
        fs.remove(temp)
    numbers, newest = _salvage(fs, layout, report)
    live = sorted((r for r, _ in newest.values() if not r.flags & TOMBSTONE), key=lambda r: r.seq)
    report.keys_kept = len(live)
    data_of = {r.key: d for r, d in newest.values()}
    if layout.pair is None:
        _write_directory(fs, layout, numbers, live, data_of, report)
    else:
        _write_two_files(fs, layout, live, data_of, report)
    return report


def _add_all(output: Output, live: list[Record], data_of: dict[bytes, bytes]) -> None:
    for r in live:
        output.add(r.key, data_of[r.key][r.offset : r.offset + r.length], r.flags, r.expire_ms)


def _write_directory(
    fs: FileSystem,
    layout: Layout,
    numbers: list[int],
    live: list[Record],
    data_of: dict[bytes, bytes],
    report: HashLogRepairReport,
) -> None:
    directory = layout.directory
    lost_dir = layout.lost_dir
    taken = set(fs.list_dir(lost_dir)) if fs.exists(lost_dir) else set()
    number = max([*numbers, 0]) + 1
    output = Output(fs, number, layout.segment_path(number), KIND_MERGE)
    _add_all(output, live, data_of)
    put_in_place(fs, layout, [output])
    # The repaired state is durable: now keep the inputs aside.
    aside = []
    for n in numbers:
        aside.append(filenames.segment_name(n))
        if fs.exists(layout.index_path(n)):
            aside.append(filenames.segment_index_name(n))
    for name in layout.orphan_index_names(fs):
        if name not in aside and name != filenames.segment_index_name(number):
            report.dropped.append(f"{name}: index file of a missing data segment, kept aside")
            aside.append(name)
    identity = filenames.path(directory, filenames.HASHLOG)
    identity_ok = True
    try:
        check_identity(fs.read_all(identity), identity)
    except (CorruptionError, StorageError):
        identity_ok = False
        if fs.exists(identity):
            aside.append(filenames.HASHLOG)
    try:
        read_catalog(fs, layout)
    except CorruptionError as exc:
        report.dropped.append(f"{exc} (the catalog is lost)")
        aside.append(layout.catalog_name)
    fs.make_dirs(lost_dir)
    for name in aside:
        kept = filenames.lost_name(name, taken)
        taken.add(kept)
        fs.rename(filenames.path(directory, name), filenames.path(lost_dir, kept))
        report.moved.append(kept)
    if not identity_ok:
        fs.write_atomic(directory, filenames.HASHLOG, encode_identity())
    fs.sync_dir(lost_dir)
    fs.sync_dir(directory)


def _write_two_files(
    fs: FileSystem,
    layout: Layout,
    live: list[Record],
    data_of: dict[bytes, bytes],
    report: HashLogRepairReport,
) -> None:
    assert layout.pair is not None
    data_path, index_path = layout.pair
    lost_dir = layout.lost_dir
    taken = set(fs.list_dir(lost_dir)) if fs.exists(lost_dir) else set()
    fs.make_dirs(lost_dir)
    # Copies first: the pair is replaced by renames, so the old bytes must be kept
    # elsewhere before.
    for old in (data_path, index_path):
        if fs.exists(old):
            kept = filenames.lost_name(os.path.basename(old), taken)
            taken.add(kept)
            fs.copy_file(old, filenames.path(lost_dir, kept))
            report.moved.append(kept)
    fs.sync_dir(lost_dir)
    output = Output(fs, 1, data_path, KIND_APPEND)
    _add_all(output, live, data_of)
    index = output.finish()
    index_temp = filenames.temp_name(index_path)
    fs.write_synced(index_temp, index)
    directory = layout.directory
    fs.rename(output.temp, data_path)
    fs.sync_dir(directory)
    fs.rename(index_temp, index_path)
    fs.sync_dir(directory)
