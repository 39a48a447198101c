"""The log format shared by the write-ahead log and the manifest (docs/format.md, "Logs").

A thin surface over the three modules of the format, as LevelDB splits its log:
:mod:`~shaledb.engine.log_format` (the layout and constants),
:mod:`~shaledb.engine.log_writer` (framing, pure) and
:mod:`~shaledb.engine.log_reader` (reading back and the damage rules).
"""

from __future__ import annotations

from shaledb.engine.log_format import (
    BLOCK_SIZE,
    HEADER_SIZE,
    MANIFEST_EDIT,
    RECORD_KINDS,
    WAL_BATCH,
    LogRecord,
)
from shaledb.engine.log_reader import read_records, salvage_records
from shaledb.engine.log_writer import LogWriter, frame

__all__ = [
    "BLOCK_SIZE",
    "HEADER_SIZE",
    "MANIFEST_EDIT",
    "RECORD_KINDS",
    "WAL_BATCH",
    "LogRecord",
    "LogWriter",
    "frame",
    "read_records",
    "salvage_records",
]
