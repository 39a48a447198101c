"""The table cache: bounds how many SSTables keep their index, filter and file loaded."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shaledb.engine.sstable.reader import SSTable


class TableCache:
    """Bounds how many tables keep their index, filter and file loaded (LRU). Thread-safe."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.loads = 0
        self._tables: OrderedDict[int, SSTable] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tables)

    def admit(self, table: SSTable) -> None:
        """Record a table that just loaded; unload the least recently used beyond the bound."""
        with self._lock:
            self.loads += 1
            self._tables[table.number] = table
            self._tables.move_to_end(table.number)
            while len(self._tables) > self.capacity:
                _, victim = self._tables.popitem(last=False)
                victim.unload()

    def touch(self, table: SSTable) -> None:
        # Lock-free like the block cache: each call is atomic; a lost race re-admits.
        try:
            self._tables.move_to_end(table.number)
        except KeyError:
            if table.loaded:
                self.admit(table)

    def forget(self, number: int) -> None:
        """Stop tracking a deleted table."""
        with self._lock:
            self._tables.pop(number, None)
