"""Compaction: which tables to merge (a pure policy) and merging them (execution).

Policy, :func:`pick`: a pure function of the version and the options. Level 0 is
compacted into level 1 once it holds ``l0_compaction_trigger`` tables; a deeper
level L is compacted into L+1 once it holds more than
``max_bytes_for_level_base * level_size_ratio ** (L - 1)`` bytes. :func:`for_range`
picks everything that overlaps a key range, for manual compaction.

Both close the input set over overlap (docs/architecture.md, "Compaction"), so no
table outside the inputs shares keys with the output level's new tables.

Execution, :func:`execute`: merge the inputs newest first, keep one entry per key, and
drop what no reader can see: entries of dropped tables always; tombstones and expired
entries when no deeper table overlaps the inputs (otherwise an expired entry is kept
as a tombstone, since it still hides older versions below).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from shaledb.engine.base import Entry
from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.iterators import merge
from shaledb.engine.version import NUM_LEVELS, FileMeta, Version
from shaledb.options import Options


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


def pick(version: Version, options: Options) -> Compaction | None:
    """The compaction the version needs most, or None. Pure: no I/O, no state."""
    l0 = list(version.levels[0])
    if len(l0) >= options.l0_compaction_trigger:
        chosen = _close_over_overlap(version, {0: l0}, range(0, 2))
        return _build(version, chosen, 1, f"level 0 holds {len(l0)} tables")
    best: tuple[float, int] | None = None
    for level in range(1, NUM_LEVELS - 1):
        score = version.level_bytes(level) / max_bytes_for_level(level, options)
        if score > 1 and (best is None or score > best[0]):
            best = (score, level)
    if best is None:
        return None
    level = best[1]
    # The largest table of the level: it moves the most bytes down per compaction.
    seed = max(version.levels[level], key=lambda f: f.size)
    chosen = _close_over_overlap(version, {level: [seed]}, range(level + 1, level + 2))
    chosen[level] = [seed]
    return _build(version, chosen, level + 1, f"level {level} is {best[0]:.1f}x its target size")


def for_range(version: Version, lo: bytes | None, hi: bytes | None) -> Compaction | None:
    """Every table overlapping ``[lo, hi)``, closed over overlap at every level."""
    seeds = {level: version.overlapping(level, lo, hi) for level in range(NUM_LEVELS)}
    seeds = {level: files for level, files in seeds.items() if files}
    if not seeds:
        return None
    chosen = _close_over_overlap(version, seeds, range(NUM_LEVELS))
    output_level = max(1, max(level for level, files in chosen.items() if files))
    return _build(version, chosen, output_level, "manual compaction")


def merged_entries(compaction: Compaction) -> Iterator[Entry]:
    """The inputs merged, newest first (level 0 newest-first, then level by level)."""
    sources: list[Iterator[Entry]] = []
    for level, files in compaction.inputs:
        if level == 0:
            sources.extend(f.table.iter_range(b"", None, fill_cache=False) for f in files)
        else:
            sources.append(_chain(files))
    return merge(sources)


def _chain(files: list[FileMeta]) -> Iterator[Entry]:
    for f in files:
        yield from f.table.iter_range(b"", None, fill_cache=False)


def surviving(
    entries: Iterator[Entry], compaction: Compaction, now_ms: int, dropped: Callable[[bytes], bool]
) -> Iterator[Entry]:
    """The entries a compaction must keep (see the module docstring)."""
    bottom = compaction.drops_tombstones
    for key, flags, expire_ms, value in entries:
        if dropped(key):
            continue
        if flags & TOMBSTONE:
            if not bottom:
                yield key, flags, expire_ms, value
            continue
        if flags & HAS_TTL and expire_ms <= now_ms:
            if not bottom:
                yield key, (flags & ~HAS_TTL) | TOMBSTONE, 0, b""
            continue
        yield key, flags, expire_ms, value
