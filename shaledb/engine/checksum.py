"""CRC32C (Castagnoli), the checksum of every record, block and footer.

The ``crc32c`` package computes it in C with hardware instructions. Where that
package cannot be installed (no wheel and no compiler), a table-driven pure-Python
fallback gives the same values, slowly, so the engine stays importable.
"""

from __future__ import annotations

import struct

try:
    from crc32c import crc32c
except ImportError:  # pragma: no cover - exercised only on machines without the package

    def _make_table() -> list[int]:
        table = []
        for n in range(256):
            c = n
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            table.append(c)
        return table

    _TABLE = _make_table()

    def crc32c(data: bytes) -> int:  # type: ignore[misc]
        """The CRC32C of ``data`` (pure-Python fallback)."""
        crc = 0xFFFFFFFF
        table = _TABLE
        for byte in data:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF


#: How a checksum is stored: u32 little-endian.
CRC = struct.Struct("<I")

__all__ = ["CRC", "crc32c"]
