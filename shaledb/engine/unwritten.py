"""Recognising the sectors a power cut did not write (docs/format.md, "Power-cut gaps").

The OS writes a file's dirty pages back in any order, so after a power cut the part
of a log written since its last completed fsync may hold holes of zeros with whole
records after them. The logs' readers use :func:`starts_unwritten` to tell such a hole
from other damage, and only where a hole is possible (the newest WAL, the hash-log
engine's active segment).
"""

from __future__ import annotations

#: The unit a disk writes whole or not at all; a hole is made of such sectors.
SECTOR = 512

_ZERO_SECTOR = bytes(SECTOR)


def starts_unwritten(data: bytes, at: int, limit: int) -> bool:
    """Whether the damage at ``at`` has the shape of unwritten sectors: zeros from ``at``
    to the end of its sector, or a whole sector of zeros between ``at`` and ``limit``
    (the furthest the damaged record can reach)."""
    limit = min(limit, len(data))
    if at < 0 or at >= limit:
        return False
    sector_end = min((at // SECTOR + 1) * SECTOR, limit)
    if not any(data[at:sector_end]):
        return True
    for pos in range(sector_end, limit - SECTOR + 1, SECTOR):
        if data[pos : pos + SECTOR] == _ZERO_SECTOR:
            return True
    return False
