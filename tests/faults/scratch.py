"""Scratch space for disk images: in memory (``/dev/shm``) when the machine has it.

Crash-point tests write and open thousands of small disk images; on a memory file
system that takes a fraction of the time it takes on a disk. What a power cut keeps is
decided by the FaultFS record, not by the disk, so nothing is lost by it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_MEMORY_FS = "/dev/shm"


def scratch_dir(prefix: str) -> Path:
    """A new empty directory, in memory when possible; the caller removes it."""
    base = _MEMORY_FS if os.path.isdir(_MEMORY_FS) and os.access(_MEMORY_FS, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=f"shaledb-{prefix}-", dir=base))
