"""The hash-log engine: an append-only data log, every key in an in-memory hash index.

Files: docs/format.md ("Hash-log engine"); modules and trade-offs: docs/architecture.md
("Hash-log engine").
"""

from __future__ import annotations

from shaledb.engine.hashlog.engine import HashLogEngine

__all__ = ["HashLogEngine"]
