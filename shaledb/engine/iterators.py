"""Merging sorted entry streams: the one iterator stack every read and compaction uses.

Sources are given newest first. For a key present in several sources the newest
entry wins and the others are skipped, so a tombstone in a newer source hides a value
in an older one.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence

from shaledb.engine.base import Entry
from shaledb.engine.entry import HAS_TTL, TOMBSTONE


def _tagged(source: Iterator[Entry], rank: int) -> Iterator[tuple[bytes, int, int, int, bytes]]:
    for key, flags, expire_ms, value in source:
        yield key, rank, flags, expire_ms, value


def merge(sources: Sequence[Iterator[Entry]], reverse: bool = False) -> Iterator[Entry]:
    """One entry per key, in key order (descending when ``reverse``), newest source winning.

    Tombstones and expired entries are passed through; see :func:`live`.
    """
    if len(sources) == 1:
        yield from sources[0]
        return
    # Ties on the key are broken by rank; reversed order needs the newest rank largest.
    tagged = [_tagged(s, -i if reverse else i) for i, s in enumerate(sources)]
    last: bytes | None = None
    for key, _rank, flags, expire_ms, value in heapq.merge(*tagged, reverse=reverse):
        if key != last:
            last = key
            yield key, flags, expire_ms, value


def live(entries: Iterator[Entry], now_ms: int) -> Iterator[Entry]:
    """Entries that are neither tombstones nor expired at ``now_ms`` (the snapshot's time)."""
    for entry in entries:
        flags = entry[1]
        if flags & TOMBSTONE or (flags & HAS_TTL and entry[2] <= now_ms):
            continue
        yield entry
