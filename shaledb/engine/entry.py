"""The flag bits every stored entry carries (WAL records, memtable, SSTable blocks).

Specified in docs/format.md ("Entry flags"). The engine interprets the low nibble;
the high nibble belongs to the API layer, which records there whether the key and
the value were given as ``str`` so that they come back with the same type.
"""

from __future__ import annotations

import struct

#: The entry deletes its key (a tombstone); its value is empty.
TOMBSTONE = 0x01
#: The entry has an expiry time (milliseconds since the epoch) beside its value.
HAS_TTL = 0x02
#: The key was a ``str`` (stored as UTF-8).
KEY_STR = 0x10
#: The value was a ``str`` (stored as UTF-8).
VALUE_STR = 0x20

#: Bits the engine itself defines; every other bit must be zero in engine flags.
ENGINE_FLAGS = TOMBSTONE | HAS_TTL
#: Bits carried opaquely for the API layer.
USER_FLAGS = KEY_STR | VALUE_STR
#: An entry with none of these bits is live whatever the clock says.
MAYBE_DEAD = TOMBSTONE | HAS_TTL


#: An expiry time as stored: milliseconds since the epoch, unsigned 64-bit little-endian.
EXPIRY = struct.Struct("<Q")
#: The largest expiry time the formats can hold.
MAX_EXPIRE_MS = (1 << 64) - 1


def is_live(flags: int, expire_ms: int, now_ms: int) -> bool:
    """Whether an entry with ``flags`` and ``expire_ms`` is visible at ``now_ms``.

    A tombstone is never live; an entry with ``HAS_TTL`` is live strictly before its
    expiry time.
    """
    if not flags & MAYBE_DEAD:
        return True
    return not (flags & TOMBSTONE or expire_ms <= now_ms)
