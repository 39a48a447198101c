"""A byte-bounded LRU cache of decoded SSTable blocks, shared by all tables."""

from __future__ import annotations

import threading
from collections import OrderedDict

from shaledb.engine.block import Block


class BlockCache:
    """Decoded blocks keyed by ``(table number, block offset)``. Thread-safe.

    A capacity of 0 disables caching.
    """

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity = capacity_bytes
        self.used = 0
        self.hits = 0
        self.misses = 0
        self._blocks: OrderedDict[tuple[int, int], Block] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int]) -> Block | None:
        # No lock on the hit path: each OrderedDict call is atomic under the GIL, and a
        # block evicted between the two calls is simply a miss. Counters may undercount.
        try:
            block = self._blocks[key]
            self._blocks.move_to_end(key)
        except KeyError:
            self.misses += 1
            return None
        self.hits += 1
        return block

    def put(self, key: tuple[int, int], block: Block) -> None:
        size = block.memory_bytes()
        if size > self.capacity:
            return
        with self._lock:
            old = self._blocks.pop(key, None)
            if old is not None:
                self.used -= old.memory_bytes()
            self._blocks[key] = block
            self.used += size
            while self.used > self.capacity and self._blocks:
                _, evicted = self._blocks.popitem(last=False)
                self.used -= evicted.memory_bytes()

    def forget_table(self, number: int) -> None:
        """Drop every block of a table that was deleted."""
        with self._lock:
            for key in [k for k in self._blocks if k[0] == number]:
                self.used -= self._blocks.pop(key).memory_bytes()
