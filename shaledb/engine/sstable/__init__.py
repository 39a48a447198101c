"""Sorted String Tables: immutable sorted files of blocks (docs/format.md, "SSTables").

:mod:`.format` holds the footer and block-handle codec, :mod:`.builder` writes a table
and :mod:`.reader` reads one.
"""

from shaledb.engine.sstable.builder import SSTableBuilder, TableInfo
from shaledb.engine.sstable.format import FOOTER_SIZE
from shaledb.engine.sstable.reader import SSTable

__all__ = ["FOOTER_SIZE", "SSTable", "SSTableBuilder", "TableInfo"]
