"""Bloom filters: one per SSTable, so reads of absent keys skip the table's blocks.

Format in docs/format.md ("Filter block"): the bit array followed by one byte giving
the number of probes. Probe positions come from one CRC32C of the key by double
hashing (``h += delta`` with ``delta`` the hash rotated by 17 bits): one hash call
per key instead of one per probe. With 10 bits per key and 6 probes about 1% of
absent keys pass.
"""

from __future__ import annotations

from collections.abc import Sequence

from shaledb.engine.checksum import crc32c

_MASK = 0xFFFFFFFF


def probes_for(bits_per_key: int) -> int:
    """Probes that minimize false positives for ``bits_per_key`` (k = bits * ln 2)."""
    return max(1, min(30, int(bits_per_key * 0.69)))


def build(keys: Sequence[bytes], bits_per_key: int) -> bytes:
    """The filter for ``keys``; empty bytes when ``bits_per_key`` is 0 (no filter)."""
    if bits_per_key <= 0:
        return b""
    k = probes_for(bits_per_key)
    nbits = max(64, len(keys) * bits_per_key)
    nbits = (nbits + 7) // 8 * 8
    bits = bytearray(nbits // 8)
    for key in keys:
        h = crc32c(key)
        delta = ((h >> 17) | (h << 15)) & _MASK
        for _ in range(k):
            pos = h % nbits
            bits[pos >> 3] |= 1 << (pos & 7)
            h = (h + delta) & _MASK
    bits.append(k)
    return bytes(bits)


class BloomFilter:
    """A decoded filter. ``may_contain`` is False only for keys surely absent."""

    __slots__ = ("_bits", "_nbits", "_k")

    def __init__(self, data: bytes) -> None:
        self._bits = data[:-1]
        self._nbits = len(self._bits) * 8
        self._k = data[-1] if data else 0

    def may_contain(self, key: bytes) -> bool:
        if self._nbits == 0:
            return True
        bits, nbits = self._bits, self._nbits
        h = crc32c(key)
        delta = ((h >> 17) | (h << 15)) & _MASK
        for _ in range(self._k):
            pos = h % nbits
            if not bits[pos >> 3] & (1 << (pos & 7)):
                return False
            h = (h + delta) & _MASK
        return True
