"""The table cache: bounds how many SSTables keep their index, filter and file loaded."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shaledb.engine.sstable.reader import SSTable


class TableCache:
    """Bounds how many tables keep their index, filter and file loaded. Thread-safe.

    Eviction is second-chance over load order: a read only sets the table's
    ``referenced`` flag (no lock, no reordering on the read path), and a flagged table
    at the old end is kept once more instead of being unloaded.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.loads = 0
        self._tables: OrderedDict[int, SSTable] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tables)

    def admit(self, table: SSTable) -> None:
        """Record a table that just loaded; unload one not read lately beyond the bound."""
        with self._lock:
            self.loads += 1
            tables = self._tables
            tables[table.number] = table
            tables.move_to_end(table.number)
            # Each pass unloads a table or clears one flag, so this ends.
            while len(tables) > self.capacity:
                number, victim = tables.popitem(last=False)
                if victim.referenced and victim is not table:
                    victim.referenced = False
                    tables[number] = victim
                else:
                    victim.unload()

    def forget(self, number: int) -> None:
        """Stop tracking a deleted table."""
        with self._lock:
            self._tables.pop(number, None)
