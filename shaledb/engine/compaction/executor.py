"""Compaction execution: merge the chosen tables and write what survives.

:func:`merged_windows` merges the inputs window by window, newest first, keeping one
entry per key; :func:`surviving` drops what no reader can see: entries of dropped
tables always; tombstones and expired entries when no deeper table overlaps the inputs
(otherwise an expired entry is kept as a tombstone, since it still hides older versions
below). :func:`run` writes the result as new tables (in the engine or in a worker process,
:mod:`shaledb.engine.table_worker`) and :func:`replacement` is the edit that installs
them. The policy that chooses the inputs is :mod:`shaledb.engine.compaction.policy`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import TypeVar

from shaledb.engine.compaction.policy import Compaction
from shaledb.engine.entry import EXPIRY, HAS_TTL, MAYBE_DEAD, TOMBSTONE
from shaledb.engine.iterators import Columns
from shaledb.engine.sstable.format import seq_hull
from shaledb.engine.table_writer import TableOutputs
from shaledb.engine.version import FileMeta
from shaledb.engine.version_edit import TableFile, VersionEdit

#: About this many input entries are merged at a time, which bounds the memory used.
WINDOW_ENTRIES = 65536
T = TypeVar("T", bound=TableFile)
_first = itemgetter(0)
_second = itemgetter(1)


def windows(
    compaction: Compaction, window_entries: int = WINDOW_ENTRIES
) -> list[tuple[bytes | None, bytes | None]]:
    """Disjoint key ranges ``[lo, hi)`` covering the inputs, each holding about
    ``window_entries`` input entries (cut at block boundaries of the inputs)."""
    files = [f for _, f in compaction.input_files()]
    last_keys = sorted(k for f in files for k in f.table.block_last_keys)
    if not last_keys:
        return [(None, None)]
    per_block = max(1, sum(f.entries for f in files) // len(last_keys))
    step = max(1, window_entries // per_block)
    bounds: list[bytes | None] = [None]
    for key in last_keys[step - 1 :: step]:
        bound = key + b"\x00"  # the smallest key after `key`: windows end just past it
        if bound != bounds[-1]:
            bounds.append(bound)
    if bounds[-1] is not None and bounds[-1] > last_keys[-1]:
        bounds[-1] = None
    else:
        bounds.append(None)
    return list(zip(bounds, bounds[1:]))


def merged_windows(
    compaction: Compaction, window_entries: int = WINDOW_ENTRIES
) -> Iterator[Columns]:
    """The inputs merged, one window at a time, newest version of each key winning.

    Within a window every input's entries are loaded as columns and laid into one dict
    oldest input first, so a newer input's entry replaces an older one; the keys are
    then sorted (a merge of already sorted runs). All of it runs in C, not per entry in
    Python, which is what makes compaction keep up with writes.
    """
    # Oldest first: the deepest level first, level 0 from its oldest table.
    oldest_first: list[list[FileMeta]] = []
    for level, files in reversed(compaction.inputs):
        oldest_first.extend([[f] for f in reversed(files)] if level == 0 else [files])
    for lo, hi in windows(compaction, window_entries):
        merged: dict[bytes, tuple[int, bytes]] = {}
        for files in oldest_first:
            for f in files:
                if f.overlaps(lo, hi):
                    keys, flags, values = f.table.columns_in(lo, hi)
                    merged.update(zip(keys, zip(flags, values)))
        if merged:
            keys = sorted(merged)
            found = list(map(merged.__getitem__, keys))
            yield keys, bytes(map(_first, found)), list(map(_second, found))


def surviving(
    columns: Columns, compaction: Compaction, now_ms: int, dropped: Callable[[bytes], bool]
) -> Columns:
    """The entries of ``columns`` a compaction must keep (see the module docstring)."""
    keys, flags, values = columns
    if not any(map(MAYBE_DEAD.__and__, flags)) and not any(map(dropped, keys)):
        return columns  # the common case: nothing to drop, no per-entry work
    bottom = compaction.drops_tombstones
    out_keys: list[bytes] = []
    out_flags = bytearray()
    out_values: list[bytes] = []
    for key, flag, value in zip(keys, flags, values):
        if dropped(key):
            continue
        if flag & TOMBSTONE:
            if bottom:
                continue
        elif flag & HAS_TTL and EXPIRY.unpack_from(value)[0] <= now_ms:
            if bottom:
                continue
            flag, value = (flag & ~HAS_TTL) | TOMBSTONE, b""
        out_keys.append(key)
        out_flags.append(flag)
        out_values.append(value)
    return out_keys, bytes(out_flags), out_values


def trivial_move(compaction: Compaction) -> VersionEdit | None:
    """The edit that moves a lone input down a level without rewriting it, when the
    compaction is one (no table of the output level overlaps it); else None."""
    files = compaction.input_files()
    if len(files) == 1 and files[0][0] != compaction.output_level:
        level, meta = files[0]
        return VersionEdit(added=[(compaction.output_level, meta)], removed=[(level, meta.number)])
    return None


def run(
    compaction: Compaction,
    writer: TableOutputs[T],
    now_ms: int,
    dropped: Callable[[bytes], bool],
    target_file_bytes: int,
) -> list[T]:
    """Carry out ``compaction``: write what survives of its inputs as new tables.

    Output files are fsynced (directory included) before this returns; on failure they
    are removed and the inputs are untouched. :func:`replacement` is the edit that
    installs them.
    """
    files = compaction.input_files()
    outputs: list[T] = []
    seqs = seq_hull(f.table.seq_range for _, f in files)
    with writer.outputs(outputs, "compaction", seqs, compaction.output_level) as new_table:
        builder = None
        for window in merged_windows(compaction):
            keys, flags, values = surviving(window, compaction, now_ms, dropped)
            if not keys:
                continue
            if builder is None:
                builder = new_table()
            builder.add_columns(keys, flags, values)
            if builder.file_size >= target_file_bytes:
                outputs.append(writer.finish(builder, "compaction"))
                builder = None
        if builder is not None:
            outputs.append(writer.finish(builder, "compaction"))
    return outputs


def replacement(compaction: Compaction, outputs: Sequence[TableFile]) -> VersionEdit:
    """The edit that replaces the inputs of ``compaction`` by its ``outputs``."""
    return VersionEdit(
        added=[(compaction.output_level, m) for m in outputs],
        removed=[(level, f.number) for level, f in compaction.input_files()],
    )
