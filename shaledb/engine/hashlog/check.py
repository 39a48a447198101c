"""Offline verification of a hash-log store: every record's checksum, every index file
against the data (docs/format.md, "Hash-log engine", "Check and repair").

Read-only. Takes the store's lock, so it never races a writer (a store open in another
process raises :class:`~shaledb.errors.LockedError`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from shaledb.engine import filenames
from shaledb.engine.fs import FileSystem
from shaledb.engine.hashlog import records
from shaledb.engine.hashlog.index_file import decode_index
from shaledb.engine.hashlog.layout import Layout, check_identity, read_catalog
from shaledb.engine.hashlog.records import HEADER_SIZE, KIND_APPEND, RawRecord, Record
from shaledb.errors import CorruptionError, StorageError

T = TypeVar("T")


@dataclass
class HashLogCheckReport:
    """What a check found: one message per damaged place (file and offset)."""

    damage: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    segments: int = 0
    records: int = 0
    #: Index files that an open would not use (missing, stale, damaged): rebuilt then.
    index_files_rebuilt: int = 0

    @property
    def healthy(self) -> bool:
        return not self.damage

    @property
    def summary(self) -> str:
        noun = "data segment" if self.segments == 1 else "data segments"
        index = (
            "index files ok"
            if not self.index_files_rebuilt
            else f"{self.index_files_rebuilt} index file(s) to rebuild on open"
        )
        text = f"{self.segments} {noun}, {self.records:,} records, {index}"
        if self.damage:
            text += f", {len(self.damage)} damaged place(s)"
        return text


def layout_of(path: str, index_path: str | None) -> Layout:
    """The directory form for ``path`` alone, else the two-file form."""
    return Layout(path) if index_path is None else Layout.of_two_files(path, index_path)


def run_locked(
    path: str,
    index_path: str | None,
    fs: FileSystem | None,
    work: Callable[[FileSystem, Layout], T],
) -> T:
    """``work(fs, layout)`` on the existing store at ``path`` while holding its lock.

    Raises:
        LockedError: another process has the store open.
        StorageError: the store does not exist.
    """
    fs = fs or FileSystem()
    if not fs.exists(path):
        raise StorageError(f"{path} does not exist")
    layout = layout_of(path, index_path)
    lock = fs.lock(layout.lock_path)
    try:
        return work(fs, layout)
    finally:
        lock.release()


def check_hashlog(
    path: str, index_path: str | None = None, fs: FileSystem | None = None
) -> HashLogCheckReport:
    """Verify the store at ``path`` (a directory, or a data file with ``index_path``).

    Raises:
        LockedError: another process has the store open.
        StorageError: the store does not exist or cannot be read.
    """
    return run_locked(path, index_path, fs, _check)


def _check(fs: FileSystem, layout: Layout) -> HashLogCheckReport:
    report = HashLogCheckReport()
    if layout.pair is None:
        identity = filenames.path(layout.directory, filenames.HASHLOG)
        if not fs.exists(identity):
            report.damage.append(
                f"{identity}: missing (the store's identity file; repair writes a new one)"
            )
        else:
            try:
                check_identity(fs.read_all(identity), identity)
            except CorruptionError as exc:
                report.damage.append(str(exc))
    try:
        read_catalog(fs, layout)
    except CorruptionError as exc:
        report.damage.append(str(exc))
    for name in layout.orphan_index_names(fs):
        report.damage.append(
            f"{filenames.path(layout.directory, name)}: the index file of a data segment "
            "that is missing (its records are lost)"
        )
    numbers = layout.segment_numbers(fs)
    kinds: dict[int, int] = {}
    contents: dict[int, bytes] = {}
    for number in numbers:
        path = layout.segment_path(number)
        data = fs.read_all(path)
        if number == numbers[-1] and not any(data[:HEADER_SIZE]):
            # The rule of the open: a newest segment without a header never held a record.
            report.notes.append(f"{path}: creation cut short (removed when the store opens)")
            continue
        try:
            kinds[number] = records.decode_header(data, path).kind
            contents[number] = data
        except CorruptionError as exc:
            report.damage.append(str(exc))
    appends = [n for n in numbers if kinds.get(n) == KIND_APPEND]
    active = appends[-1] if appends else None
    for number, data in contents.items():
        report.segments += 1
        _check_segment(fs, layout, number, data, number == active, report)
    return report


def _check_segment(
    fs: FileSystem,
    layout: Layout,
    number: int,
    data: bytes,
    may_be_torn: bool,
    report: HashLogCheckReport,
) -> None:
    path = layout.segment_path(number)
    try:
        found, end = records.parse_records(data, path, HEADER_SIZE, may_be_torn)
        if end < len(data):
            report.notes.append(
                f"{path}: torn write of {len(data) - end} bytes at offset {end} "
                "(dropped when the store opens)"
            )
    except CorruptionError as exc:
        report.damage.append(str(exc))
        found, _ = records.salvage_records(data, HEADER_SIZE)
    report.records += len(found)
    index_path = layout.index_path(number)
    if not fs.exists(index_path):
        report.index_files_rebuilt += 1
        report.notes.append(f"{index_path}: missing (rebuilt from the data on open)")
        return
    try:
        index = decode_index(fs.read_all(index_path), index_path)
    except CorruptionError as exc:
        report.index_files_rebuilt += 1
        report.notes.append(f"{exc} (rebuilt from the data on open)")
        return
    file_id = records.decode_header(data, path).file_id
    if index.file_id == file_id and index.covers > len(data):
        report.damage.append(lost_bytes_message(path, len(data), index_path, index.covers))
        return
    if index.file_id != file_id or index.covers < HEADER_SIZE:
        report.index_files_rebuilt += 1
        report.notes.append(
            f"{index_path}: does not describe {path} (rebuilt from the data on open)"
        )
        return
    covered = [r for r in found if r.offset < index.covers]
    if index.records != covered:
        report.damage.append(
            f"{index_path}: its checksum is good but its items disagree with {path} "
            f"at {_first_difference(index.records, covered)}; delete it to rebuild it"
        )
    elif index.covers < len(data):
        report.notes.append(
            f"{index_path}: covers {index.covers} of {len(data)} bytes (the rest is read "
            "from the data on open)"
        )


def lost_bytes_message(path: str, size: int, index_path: str, covers: int) -> str:
    """What a data file shorter than its own index file says it was means."""
    return (
        f"{path}: {size} bytes, but its index file {index_path} covers {covers}: "
        f"{covers - size} bytes that were durable are lost (the file was cut short); "
        "'shaledb repair' keeps every record left"
    )


def _first_difference(a: list[RawRecord], b: list[Record]) -> str:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return f"offset {min(x[4], y.offset)}"
    return f"item {min(len(a), len(b))} (one list is longer)"
