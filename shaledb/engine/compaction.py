"""Compaction: which tables to merge (a pure policy) and merging them (execution).

Policy, :func:`pick`: a pure function of the version and the options. Level 0 is
compacted into level 1 once it holds ``l0_compaction_trigger`` tables; a deeper
level L is compacted into L+1 once it holds more than
``max_bytes_for_level_base * level_size_ratio ** (L - 1)`` bytes. :func:`for_range`
picks everything that overlaps a key range, for manual compaction.

Both close the input set over overlap (docs/architecture.md, "Compaction"), so no
table outside the inputs shares keys with the output level's new tables.

Execution, :func:`merged_windows` and :func:`surviving`: merge the inputs window by
window, newest first, keep one entry per key, and
drop what no reader can see: entries of dropped tables always; tombstones and expired
entries when no deeper table overlaps the inputs (otherwise an expired entry is kept
as a tombstone, since it still hides older versions below).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import itemgetter

from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.version import NUM_LEVELS, FileMeta, Version
from shaledb.options import Options

_DEAD = TOMBSTONE | HAS_TTL


@dataclass
class Compaction:
    """Inputs by level (each list in the version's order), and where the output goes."""

    inputs: list[tuple[int, list[FileMeta]]]
    output_level: int
    drops_tombstones: bool
    reason: str

    def input_files(self) -> list[tuple[int, FileMeta]]:
        return [(level, f) for level, files in self.inputs for f in files]

    def input_bytes(self) -> int:
        return sum(f.size for _, f in self.input_files())


def max_bytes_for_level(level: int, options: Options) -> int:
    return int(options.max_bytes_for_level_base * options.level_size_ratio ** (level - 1))


def _span(files: list[FileMeta]) -> tuple[bytes, bytes]:
    return min(f.smallest for f in files), max(f.largest for f in files)


def _close_over_overlap(
    version: Version, seeds: dict[int, list[FileMeta]], levels: range
) -> dict[int, list[FileMeta]]:
    """Grow ``seeds`` until every table in ``levels`` overlapping the inputs' span is in it."""
    chosen = {level: list(files) for level, files in seeds.items()}
    while True:
        all_files = [f for files in chosen.values() for f in files]
        lo, hi = _span(all_files)
        grown = False
        for level in levels:
            # `hi` is inclusive here: overlap test on [lo, hi] via hi + b"\0".
            wanted = version.overlapping(level, lo, hi + b"\x00")
            if len(wanted) != len(chosen.get(level, [])):
                chosen[level] = wanted
                grown = True
        if not grown:
            return chosen


def _deeper_overlap(version: Version, output_level: int, files: list[FileMeta]) -> bool:
    lo, hi = _span(files)
    return any(
        version.overlapping(level, lo, hi + b"\x00")
        for level in range(output_level + 1, NUM_LEVELS)
    )


def _build(
    version: Version, chosen: dict[int, list[FileMeta]], output_level: int, reason: str
) -> Compaction:
    inputs = [(level, chosen[level]) for level in sorted(chosen) if chosen[level]]
    files = [f for _, fs in inputs for f in fs]
    return Compaction(
        inputs, output_level, not _deeper_overlap(version, output_level, files), reason
    )


def scores(version: Version, options: Options) -> list[float]:
    """How far over its limit each level is (>= 1: needs compaction). Level 0 counts
    tables against ``l0_compaction_trigger``; deeper levels bytes against their target."""
    result = [len(version.levels[0]) / options.l0_compaction_trigger]
    for level in range(1, NUM_LEVELS - 1):
        result.append(version.level_bytes(level) / max_bytes_for_level(level, options))
    return result


def pick(version: Version, options: Options) -> Compaction | None:
    """The compaction the version needs most, or None. Pure: no I/O, no state.

    The level with the highest score goes first. Giving level 0 priority whenever it is
    full instead lets level 1 grow without bound under steady writes, and every level 0
    compaction then rewrites all of it.
    """
    level_scores = scores(version, options)
    score = max(level_scores)
    if score < 1:
        return None
    level = level_scores.index(score)
    if level == 0:
        l0 = list(version.levels[0])
        chosen = _close_over_overlap(version, {0: l0}, range(0, 2))
        return _build(version, chosen, 1, f"level 0 holds {len(l0)} tables")
    seed = _least_overlapping(version, level)
    chosen = _close_over_overlap(version, {level: [seed]}, range(level + 1, level + 2))
    chosen[level] = [seed]
    return _build(version, chosen, level + 1, f"level {level} is {score:.1f}x its target size")


def _least_overlapping(version: Version, level: int) -> FileMeta:
    """The table of ``level`` whose move down rewrites the fewest bytes per byte moved."""
    below = version.levels[level + 1]

    def cost(f: FileMeta) -> float:
        overlap = sum(g.size for g in below if g.overlaps(f.smallest, f.largest + b"\x00"))
        return overlap / max(1, f.size)

    return min(version.levels[level], key=cost)


def for_range(version: Version, lo: bytes | None, hi: bytes | None) -> Compaction | None:
    """Every table overlapping ``[lo, hi)``, closed over overlap at every level."""
    seeds = {level: version.overlapping(level, lo, hi) for level in range(NUM_LEVELS)}
    seeds = {level: files for level, files in seeds.items() if files}
    if not seeds:
        return None
    chosen = _close_over_overlap(version, seeds, range(NUM_LEVELS))
    output_level = max(1, max(level for level, files in chosen.items() if files))
    return _build(version, chosen, output_level, "manual compaction")


#: Columns of entries: ``(keys, flags, stored values)``, values with their expiry prefix.
Columns = tuple[list[bytes], bytes, list[bytes]]
#: About this many input entries are merged at a time, which bounds the memory used.
WINDOW_ENTRIES = 65536
_first = itemgetter(0)
_second = itemgetter(1)
_EXPIRE = struct.Struct("<Q")


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
    if not any(map(_DEAD.__and__, flags)) and not any(map(dropped, keys)):
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
        elif flag & HAS_TTL and _EXPIRE.unpack_from(value)[0] <= now_ms:
            if bottom:
                continue
            flag, value = (flag & ~HAS_TTL) | TOMBSTONE, b""
        out_keys.append(key)
        out_flags.append(flag)
        out_values.append(value)
    return out_keys, bytes(out_flags), out_values
