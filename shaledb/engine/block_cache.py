"""A byte-bounded cache of SSTable blocks, shared by all tables (second-chance LRU)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from shaledb.engine.block import Block


class BlockCache:
    """Blocks keyed by ``(table number, block offset)``. Thread-safe.

    Eviction is second-chance (CLOCK) over insertion order: a hit only sets the
    block's ``referenced`` flag, and a flagged block at the old end is moved to the
    new end once instead of being evicted. Rejected alternative: a strict LRU, which
    reorders the map on every hit; a hit is the hottest step of a point read.

    A capacity of 0 disables caching.
    """

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity = capacity_bytes
        self.used = 0
        self.hits = 0
        self.misses = 0
        #: Readers look blocks up here directly (one dict call); inserts go through put.
        self.blocks: OrderedDict[tuple[int, int], Block] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int]) -> Block | None:
        # No lock on the hit path: a dict lookup is atomic under the GIL. Counters may
        # undercount.
        block = self.blocks.get(key)
        if block is None:
            self.misses += 1
            return None
        block.referenced = True
        self.hits += 1
        return block

    def put(self, key: tuple[int, int], block: Block) -> None:
        size = block.memory_bytes()
        if size > self.capacity:
            return
        with self._lock:
            blocks = self.blocks
            old = blocks.pop(key, None)
            if old is not None:
                self.used -= old.memory_bytes()
            blocks[key] = block
            self.used += size
            # Each pass either evicts or clears one flag, so this ends.
            while self.used > self.capacity and blocks:
                oldest, victim = blocks.popitem(last=False)
                if victim.referenced and victim is not block:
                    victim.referenced = False
                    blocks[oldest] = victim
                else:
                    self.used -= victim.memory_bytes()

    def forget_table(self, number: int) -> None:
        """Drop every block of a table that was deleted."""
        with self._lock:
            for key in [k for k in self.blocks if k[0] == number]:
                self.used -= self.blocks.pop(key).memory_bytes()
