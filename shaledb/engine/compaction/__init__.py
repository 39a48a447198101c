"""Compaction: :mod:`.policy` chooses the tables to merge, :mod:`.executor` merges them."""

from shaledb.engine.compaction.executor import (
    merged_windows,
    replacement,
    run,
    surviving,
    trivial_move,
    windows,
)
from shaledb.engine.compaction.policy import Compaction, for_range, pick, scores

__all__ = [
    "Compaction",
    "for_range",
    "merged_windows",
    "pick",
    "replacement",
    "run",
    "scores",
    "surviving",
    "trivial_move",
    "windows",
]
