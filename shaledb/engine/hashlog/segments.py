"""Data segments on disk and opening a store from them (docs/format.md, "Hash-log
engine", "What open does").

:func:`open_segments` finds every segment, reads each one's index file when it can be
trusted (magic, CRC, the data file's ``file_id``, covering no more than the file holds)
and the data past what it covers, applies the records newest ``seq`` last into a
:class:`~shaledb.engine.hashlog.keydir.KeyDir`, cuts a torn tail off the active segment,
and rewrites the index files it could not use for sealed segments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from shaledb.engine import filenames
from shaledb.engine.entry import TOMBSTONE
from shaledb.engine.fs import FileSystem, RandomAccessFile
from shaledb.engine.hashlog import records
from shaledb.engine.hashlog.check import lost_bytes_message
from shaledb.engine.hashlog.index_file import IndexItems, decode_index, encode_index
from shaledb.engine.hashlog.keydir import KeyDir
from shaledb.engine.hashlog.layout import Layout, check_identity, encode_identity
from shaledb.engine.hashlog.records import HEADER_SIZE, KIND_APPEND, RawRecord
from shaledb.errors import CorruptionError, StorageError


class Segment:
    """One data file: its identity, its reader and the sequence numbers it holds.

    Readers keep a segment (and so its open file) alive while they hold a location in
    it: a merge may unlink the file, and reads through the open descriptor still work.
    """

    __slots__ = ("file", "file_id", "kind", "max_seq", "min_seq", "number", "path", "size")

    def __init__(
        self, number: int, path: str, kind: int, file_id: int, file: RandomAccessFile
    ) -> None:
        self.number = number
        self.path = path
        self.kind = kind
        self.file_id = file_id
        self.file = file
        self.size = file.size
        self.min_seq = 0
        self.max_seq = 0

    def note_seqs(self, lo: int, hi: int) -> None:
        if lo and (not self.min_seq or lo < self.min_seq):
            self.min_seq = lo
        self.max_seq = max(self.max_seq, hi)


@dataclass
class Opened:
    """What :func:`open_segments` found."""

    keydir: KeyDir
    #: Sealed segments then the active one, ordered by their sequence ranges.
    segments: list[Segment]
    active: Segment
    #: Where the active segment's last whole record ends (its torn tail cut off there).
    active_end: int
    active_items: IndexItems
    last_seq: int
    next_number: int
    notes: list[str] = field(default_factory=list)


def prepare_directory(fs: FileSystem, layout: Layout) -> None:
    """Create the directory form's ``HASHLOG`` in an empty directory, else check it.

    Raises:
        CorruptionError: the identity file is damaged, or missing beside segments.
        StorageError: the directory holds files but no identity file (another engine's).
    """
    directory = layout.directory
    path = filenames.path(directory, filenames.HASHLOG)
    if fs.exists(path):
        check_identity(fs.read_all(path), path)
        return
    others = [n for n in fs.list_dir(directory) if n != filenames.LOCK]
    segments = [n for n in others if filenames.parse_segment(n) is not None]
    if segments:
        raise CorruptionError(
            f"{path}: missing, yet {directory} holds hash-log segments "
            f"({', '.join(segments[:3])}{', ...' if len(segments) > 3 else ''}); "
            f"'shaledb repair {directory}' writes a new identity file and keeps every record",
            path,
        )
    if others:
        what = "an LSM database" if filenames.CURRENT in others else "other files"
        raise StorageError(
            f"{directory} holds {what} and no {filenames.HASHLOG} identity file; a hash-log "
            "store needs an empty directory or one it created"
        )
    fs.write_atomic(directory, filenames.HASHLOG, encode_identity())


def new_segment(fs: FileSystem, layout: Layout, number: int, kind: int) -> tuple[Segment, int]:
    """Create a segment file holding only its header: written to its temp name, fsynced,
    renamed (so a kill never leaves a segment without a header); returns it and its
    ``file_id``. The caller fsyncs the directory."""
    path = layout.segment_path(number)
    temp = filenames.temp_name(path)
    file_id = records.new_file_id()
    fs.write_synced(temp, records.encode_header(kind, file_id))
    fs.rename(temp, path)
    segment = Segment(number, path, kind, file_id, fs.open_read(path))
    return segment, file_id


def write_index(fs: FileSystem, layout: Layout, segment: Segment, items: IndexItems) -> None:
    """Replace ``segment``'s index file with ``items`` (covering all of the segment)."""
    path = layout.index_path(segment.number)
    data = encode_index(segment.file_id, segment.size, items)
    fs.write_atomic(os.path.dirname(path) or ".", os.path.basename(path), data)


def _load_one(
    fs: FileSystem, layout: Layout, segment: Segment, may_be_torn: bool, notes: list[str]
) -> tuple[list[RawRecord], int, IndexItems, bool]:
    """The records of one segment, where its last whole record ends, its items, and
    whether its index file was used whole."""
    items = IndexItems()
    start = HEADER_SIZE
    found: list[RawRecord] = []
    index_path = layout.index_path(segment.number)
    if fs.exists(index_path):
        try:
            index = decode_index(fs.read_all(index_path), index_path)
        except CorruptionError as exc:
            notes.append(f"{exc}; rebuilt from the data")
        else:
            if index.file_id != segment.file_id:
                notes.append(f"{index_path}: describes another data file; rebuilt from the data")
            elif index.covers > segment.size:
                # An index file is written only once the bytes it covers are durable.
                message = lost_bytes_message(segment.path, segment.size, index_path, index.covers)
                raise CorruptionError(message, segment.path, segment.size)
            elif index.covers < HEADER_SIZE:
                notes.append(
                    f"{index_path}: covers {index.covers} bytes, the data file holds "
                    f"{segment.size}; rebuilt from the data"
                )
            else:
                found = index.records
                items.add_encoded(index.items, len(index.records), index.min_seq, index.max_seq)
                start = index.covers
    if start == segment.size:
        return found, start, items, True
    data = segment.file.read(0, segment.size)
    if len(data) != segment.size:
        raise StorageError(f"{segment.path}: short read ({len(data)} of {segment.size} bytes)")
    more, end = records.parse_records(data, segment.path, start, may_be_torn)
    if end < len(data):
        notes.append(
            f"{segment.path}: torn write of {len(data) - end} bytes at offset {end} dropped"
        )
    items.add_records(more)
    found.extend(more)
    return found, end, items, False


def open_segments(fs: FileSystem, layout: Layout, create_kind: int = KIND_APPEND) -> Opened:
    """Read every segment of ``layout`` into a new index; create the first segment of
    a new store.

    Raises:
        CorruptionError: a segment or index damaged beyond a torn tail (file, offset).
        StorageError: the files cannot be read.
    """
    for temp in layout.temp_files(fs):
        fs.remove(temp)
    numbers = layout.segment_numbers(fs)
    notes: list[str] = []
    segments: list[Segment] = []
    for number in numbers:
        path = layout.segment_path(number)
        file = fs.open_read(path)
        head = file.read(0, HEADER_SIZE)
        if number == numbers[-1] and not any(head):
            # The newest segment's creation was cut short before its header was
            # durable (a power cut that kept the rename but not the data): it never
            # held a record.
            file.close()
            fs.remove(path)
            notes.append(f"{path}: a segment whose creation was cut short, removed")
            numbers = numbers[:-1]
            break
        header = records.decode_header(head, path)
        segments.append(Segment(number, path, header.kind, header.file_id, file))
    orphans = layout.orphan_index_names(fs)
    if orphans:
        first = filenames.path(layout.directory, orphans[0])
        raise CorruptionError(
            f"{first}: the index file of a data segment that is missing "
            f"({orphans[0][:-4]}.hld; {len(orphans)} such index file(s)): its records are "
            f"lost; 'shaledb repair {layout.directory}' keeps every other record",
            first,
        )
    appends = [s for s in segments if s.kind == KIND_APPEND]
    active = appends[-1] if appends else None
    loaded: list[tuple[Segment, list[RawRecord]]] = []
    active_end = HEADER_SIZE
    active_items = IndexItems()
    for segment in segments:
        found, end, items, whole = _load_one(fs, layout, segment, segment is active, notes)
        segment.note_seqs(items.min_seq, items.max_seq)
        loaded.append((segment, found))
        if segment is active:
            active_end, active_items = end, items
        elif not whole:
            write_index(fs, layout, segment, items)
    next_number = (numbers[-1] if numbers else 0) + 1
    if active is None:
        active, _ = new_segment(fs, layout, next_number, create_kind)
        fs.sync_dir(layout.directory)
        next_number += 1
        loaded.append((active, []))
    keydir = _apply(loaded)
    ordered = sorted((s for s, _ in loaded if s is not active), key=lambda s: (s.min_seq, s.number))
    last_seq = max((s.max_seq for s, _ in loaded), default=0)
    return Opened(
        keydir, [*ordered, active], active, active_end, active_items, last_seq, next_number, notes
    )


def _apply(loaded: list[tuple[Segment, list[RawRecord]]]) -> KeyDir:
    """The index of ``loaded``'s records: per key, the one with the highest ``seq``."""
    keydir = KeyDir()
    ranges = sorted(((s, found) for s, found in loaded if found), key=lambda x: x[0].min_seq)
    disjoint = all(
        a.max_seq < b.min_seq for (a, _), (b, _) in zip(ranges, ranges[1:], strict=False)
    )
    newest: dict[bytes, int] | None = None if disjoint else {}
    entries = keydir.entries
    pop = entries.pop
    for segment, found in ranges:
        for seq, flags, key, expire_ms, offset, length in found:
            if newest is not None:
                # Segments overlap (a merge was cut short): the highest seq wins.
                if newest.get(key, 0) > seq:
                    continue
                newest[key] = seq
            if flags & TOMBSTONE:
                pop(key, None)
            else:
                entries[key] = (segment, offset, length, flags, expire_ms)
    keydir.live_bytes = sum(loc[2] for loc in entries.values())
    return keydir
