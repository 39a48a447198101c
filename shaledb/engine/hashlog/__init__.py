"""The hash-log engine: an append-only data log, every key in an in-memory hash index.

Files: docs/format.md ("Hash-log engine"); modules and trade-offs: docs/architecture.md
("Hash-log engine").
"""

from __future__ import annotations

from shaledb.engine.hashlog.backup import backup_hashlog
from shaledb.engine.hashlog.check import HashLogCheckReport, check_hashlog
from shaledb.engine.hashlog.engine import HashLogEngine
from shaledb.engine.hashlog.identity import (
    is_hashlog_data_file,
    is_hashlog_directory,
    is_hashlog_index_file,
)
from shaledb.engine.hashlog.repair import HashLogRepairReport, repair_hashlog

__all__ = [
    "HashLogCheckReport",
    "HashLogEngine",
    "HashLogRepairReport",
    "backup_hashlog",
    "check_hashlog",
    "is_hashlog_data_file",
    "is_hashlog_index_file",
    "is_hashlog_directory",
    "repair_hashlog",
]
