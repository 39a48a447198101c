"""Compaction policy: which tables to merge, as a pure function of the version.

:func:`pick` is a pure function of the version and the options. Level 0 is
compacted into level 1 once it holds ``l0_compaction_trigger`` tables; a deeper
level L is compacted into L+1 once it holds more than
``max_bytes_for_level_base * level_size_ratio ** (L - 1)`` bytes. :func:`for_range`
picks everything that overlaps a key range, for manual compaction.

Both close the input set over overlap (docs/architecture.md, "Compaction"), so no
table outside the inputs shares keys with the output level's new tables.

Execution is :mod:`shaledb.engine.compaction.executor`.
"""

from __future__ import annotations

from dataclasses import dataclass

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
