"""Merging sorted entry streams: the one iterator stack every read and compaction uses.

Sources are given newest first. For a key present in several sources the newest
entry wins and the others are skipped, so a tombstone in a newer source hides a value
in an older one.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from operator import itemgetter

from shaledb.engine.base import Entry
from shaledb.engine.entry import HAS_TTL, TOMBSTONE

_key = itemgetter(0)


def merge(sources: Sequence[Iterator[Entry]], reverse: bool = False) -> Iterator[Entry]:
    """One entry per key, in key order (descending when ``reverse``), newest source winning.

    Tombstones and expired entries are passed through; see :func:`live`.
    """
    if len(sources) == 1:
        yield from sources[0]
        return
    # heapq.merge breaks ties on the key by the sources' order, earliest first, in both
    # directions: the newest source's entry comes first and the older ones are skipped.
    last: bytes | None = None
    for entry in heapq.merge(*sources, key=_key, reverse=reverse):
        if entry[0] != last:
            last = entry[0]
            yield entry


def live(entries: Iterator[Entry], now_ms: int) -> Iterator[Entry]:
    """Entries that are neither tombstones nor expired at ``now_ms`` (the snapshot's time)."""
    for entry in entries:
        flags = entry[1]
        if flags & TOMBSTONE or (flags & HAS_TTL and entry[2] <= now_ms):
            continue
        yield entry
