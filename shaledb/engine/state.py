"""The engine's published state: one immutable tuple, replaced whole.

Readers take :attr:`shaledb.engine.write_path.WritePath.state` once and use only what
it holds, so they never see a half-made change: a rotation, a flush or a compaction
publishes a new :class:`EngineState` under the write lock, and nothing changes one.
"""

from __future__ import annotations

from typing import NamedTuple

from shaledb.engine.memtable import MemTable
from shaledb.engine.version import Version


class EngineState(NamedTuple):
    """The memtable, the immutable memtables (newest first) and the version."""

    mem: MemTable
    imms: tuple[MemTable, ...]
    version: Version
