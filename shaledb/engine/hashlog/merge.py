"""Merging: rewriting the live records into new segments (docs/format.md, "Hash-log
engine", "Merge").

Directory form (:func:`merge_sealed`): seal the active segment, copy every record of
the sealed segments that the index still points to, in ``seq`` order, into new merge
segments (each written as ``NNNNNN.hld.tmp`` with its index file, fsynced, renamed,
then the directory fsynced), install them in the index, and only then remove the
inputs, oldest first. Writers go on appending to the new active segment meanwhile; the
write lock is held only to seal, to copy the index's entries (one C-level dict copy)
and to install, in chunks.

Two-file form (:func:`compact_two_files`): write the live records to ``DATA.tmp``
while writers go on appending to the data file; then, under the write lock, carry the
records appended meanwhile over, write the index to ``INDEX.tmp``, fsync both, rename
the data file, fsync the directory, rename the index file, fsync the directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from shaledb.engine import filenames
from shaledb.engine.entry import is_live
from shaledb.engine.fs import AppendFile, FileSystem
from shaledb.engine.hashlog.index_file import IndexItems, encode_index
from shaledb.engine.hashlog.keydir import Location
from shaledb.engine.hashlog.layout import Layout
from shaledb.engine.hashlog.records import (
    ENTRY_HEADER,
    HEADER_SIZE,
    KIND_APPEND,
    KIND_MERGE,
    encode_header,
    new_file_id,
    parse_records,
    read_entry,
)
from shaledb.engine.hashlog.segments import Segment
from shaledb.engine.hashlog.store import HashLogStore

#: Output bytes collected before one write to the file.
_WRITE_BYTES = 1 << 20

Move = tuple[bytes, Location, Location | None]


class Output:
    """One output file (of a merge or a repair) being written under its temp name.
    Not thread-safe."""

    def __init__(self, fs: FileSystem, number: int, path: str, kind: int) -> None:
        self.fs = fs
        self.path = path
        self.temp = filenames.temp_name(path)
        self.file_id = new_file_id()
        self.out: AppendFile = fs.open_append(self.temp, truncate_to=0)
        self.out.write(encode_header(kind, self.file_id))
        self.segment = Segment(number, path, kind, self.file_id, fs.open_read(self.temp))
        self.items = IndexItems()
        self.size = HEADER_SIZE
        self.pending: list[bytes] = []
        self.pending_bytes = 0

    def add(self, key: bytes, data: bytes, flags: int, expire_ms: int) -> Location:
        seq = ENTRY_HEADER.unpack_from(data)[6]
        offset = self.size
        self.items.add(seq, flags, key, expire_ms, offset, len(data))
        self.pending.append(data)
        self.size += len(data)
        self.pending_bytes += len(data)
        if self.pending_bytes >= _WRITE_BYTES:
            self._write_pending()
        return (self.segment, offset, len(data), flags, expire_ms)

    def _write_pending(self) -> None:
        if self.pending:
            self.out.write(b"".join(self.pending))
            self.pending, self.pending_bytes = [], 0

    def finish(self) -> bytes:
        """Write and fsync the data; the index file's bytes."""
        self._write_pending()
        self.out.sync()
        self.out.close()
        self.segment.size = self.size
        self.segment.note_seqs(self.items.min_seq, self.items.max_seq)
        return encode_index(self.file_id, self.size, self.items)


def _copy_live(
    store: HashLogStore,
    picked: list[tuple[bytes, Location]],
    now_ms: int,
    open_output: Callable[[], Output],
    limit: int | None,
) -> tuple[list[Move], list[Output]]:
    """Copy the live records of ``picked`` (in order) into outputs of about ``limit``
    bytes each (one output when None); the index moves and the outputs, not finished."""
    drop = store.drop_filter
    moves: list[Move] = []
    outputs: list[Output] = []
    current: Output | None = None
    for key, loc in picked:
        segment, offset, length, flags, expire_ms = loc
        if not is_live(flags, expire_ms, now_ms) or drop(key):
            moves.append((key, loc, None))
            continue
        data = segment.file.read(offset, length)
        read_entry(data, key, segment.path, offset)  # its CRC checks before it is copied
        if current is None or (limit is not None and current.size + length > limit):
            if current is not None and current.size > HEADER_SIZE:
                outputs.append(current)
                current = None
            if current is None:
                current = open_output()
        moves.append((key, loc, current.add(key, data, flags, expire_ms)))
    if current is not None:
        outputs.append(current)
    return moves, outputs


def put_in_place(fs: FileSystem, layout: Layout, outputs: list[Output]) -> int:
    """Finish the directory-form ``outputs``: each one's data fsynced and renamed into
    place, then its index file written; then the directory fsynced. Bytes written."""
    written = 0
    for output in outputs:
        index = output.finish()
        # The data first: an index file never names a segment that is not in place.
        fs.rename(output.temp, output.path)
        index_path = layout.index_path(output.segment.number)
        fs.write_atomic(layout.directory, os.path.basename(index_path), index)
        written += output.size
    fs.sync_dir(layout.directory)
    return written


def merge_sealed(store: HashLogStore, now_ms: int) -> bool:
    """Merge every sealed segment of a directory-form store; whether anything ran.

    Raises:
        StorageError: a file operation failed (the inputs are untouched).
        CorruptionError: a record to copy failed its checksum.
    """
    fs, layout = store.fs, store.layout
    inputs = store.seal_for_merge()
    if not inputs:
        return False
    rank = {id(s): i for i, s in enumerate(inputs)}
    with store.lock:
        snapshot = list(store.keydir.entries.items())
    picked = [kl for kl in snapshot if id(kl[1][0]) in rank]
    del snapshot
    picked.sort(key=lambda kl: (rank[id(kl[1][0])], kl[1][1]))

    def open_output() -> Output:
        with store.lock:
            number = store.next_number
            store.next_number += 1
        return Output(fs, number, layout.segment_path(number), KIND_MERGE)

    moves, outputs = _copy_live(
        store, picked, now_ms, open_output, store.options.hashlog_segment_bytes
    )
    written = put_in_place(fs, layout, outputs)
    store.install(moves, inputs, [o.segment for o in outputs])
    # Oldest first: a tombstone goes only after every older record it hides. The index
    # file goes first, durably: an index file whose segment is missing then always
    # means the segment was lost (an open refuses it), never a merge cut short.
    for segment in inputs:
        fs.remove(layout.index_path(segment.number))
        fs.sync_dir(layout.directory)
        fs.remove(segment.path)
    fs.sync_dir(layout.directory)
    with store.lock:
        store.merges += 1
        store.merge_bytes_written += written
    return True


def compact_two_files(store: HashLogStore, now_ms: int) -> None:
    """Rewrite a two-file store's data file and index file with the live records only.

    The live records as of the start are copied without the write lock; then, under it,
    the records written meanwhile are carried over as they are (tombstones too) and the
    files are swapped. Writers wait only for that last part; readers go on reading the
    old file (through its open descriptor) until the index points at the new one.
    """
    fs, layout = store.fs, store.layout
    assert layout.pair is not None
    data_path, index_path = layout.pair
    directory = os.path.dirname(os.path.abspath(data_path))
    with store.lock:
        store.check_usable()
        old = store.active
        start = old.size
        snapshot = list(store.keydir.entries.items())
    picked = sorted(snapshot, key=lambda kl: kl[1][1])
    del snapshot

    def open_output() -> Output:
        return Output(fs, 1, data_path, KIND_APPEND)

    moves, outputs = _copy_live(store, picked, now_ms, open_output, None)
    output = outputs[0] if outputs else open_output()
    with store.lock:
        store.check_usable()
        moves += _carry_over_tail(store, old, start, output)
        index = output.finish()
        index_temp = filenames.temp_name(index_path)
        fs.write_synced(index_temp, index)
        store.commit.file.sync()  # what was acknowledged is durable before the swap
        # Data first: between the renames the old index names another file_id, so an
        # open then rebuilds the index from the new data file; nothing is lost.
        fs.rename(output.temp, data_path)
        fs.sync_dir(directory)
        fs.rename(index_temp, index_path)
        fs.sync_dir(directory)
        store.commit.switch(fs.open_append(data_path)).close()
        # Only now, with every byte they point at written: point reads take no lock.
        replace_if = store.keydir.replace_if
        for key, was, new in moves:
            replace_if(key, was, new)
        store.active = output.segment
        store.active_items = output.items
        store.segments = [output.segment]
        store.merges += 1
        store.merge_bytes_written += output.size


def _carry_over_tail(store: HashLogStore, old: Segment, start: int, output: Output) -> list[Move]:
    """Copy the records written to ``old`` from ``start`` on into ``output``; the index
    moves for the copies the index still points at, to install once ``output`` is
    written (a point read takes no lock, so it must not see a location whose bytes are
    still in ``output``'s buffer). Holds the write lock (so the tail is whole and stays
    put)."""
    if old.size == start:
        return []
    tail = old.file.read(start, old.size - start)
    found, _ = parse_records(tail, old.path, 0, may_be_torn=False)
    entries = store.keydir.entries
    moves: list[Move] = []
    for r in found:
        new = output.add(r.key, tail[r.offset : r.offset + r.length], r.flags, r.expire_ms)
        loc = entries.get(r.key)
        if loc is not None and loc[0] is old and loc[1] == start + r.offset:
            moves.append((r.key, loc, new))
    return moves
