"""The write-batch codec: the payload of one WAL record (docs/format.md, "Write batches").

One record holds one atomic batch::

    seq u64 | count u32 | count x (flags u8 | key_len u32 | value_len u32 |
                                   [expire_ms u64 when HAS_TTL] | key | value)

The common case, one put without expiry, is packed with one ``struct`` call; a unit
test checks that it gives the same bytes as the general path. Encoding and decoding
do no I/O; the WAL frames the payload (:mod:`shaledb.engine.record_log`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from shaledb.engine.base import Op, RawOp
from shaledb.engine.entry import EXPIRY, HAS_TTL
from shaledb.errors import CorruptionError

BATCH_HEADER = struct.Struct("<QI")
OP_HEADER = struct.Struct("<BII")
#: The batch header and one operation header, in one pack.
_SINGLE_PUT = struct.Struct("<" + BATCH_HEADER.format[1:] + OP_HEADER.format[1:])


def encode_put(seq: int, flags: int, key: bytes, value: bytes) -> bytes:
    """``encode_batch(seq, [(flags, key, 0, value)])`` for ``flags`` without HAS_TTL:
    the hot path of single puts, the same bytes in one pack call."""
    return _SINGLE_PUT.pack(seq, 1, flags, len(key), len(value)) + key + value


def encode_batch(seq: int, ops: Sequence[RawOp]) -> bytes:
    """The payload of one WAL record for ``ops``, the first numbered ``seq``."""
    if len(ops) == 1:
        flags, key, _, value = ops[0]
        if not flags & HAS_TTL:
            return encode_put(seq, flags, key, value)
    parts = [BATCH_HEADER.pack(seq, len(ops))]
    for flags, key, expire_ms, value in ops:
        parts.append(OP_HEADER.pack(flags, len(key), len(value)))
        if flags & HAS_TTL:
            parts.append(EXPIRY.pack(expire_ms))
        parts.append(key)
        parts.append(value)
    return b"".join(parts)


def decode_batch(payload: bytes, path: str = "", offset: int = 0) -> tuple[int, list[Op]]:
    """``(seq, ops)`` from a WAL record payload.

    Raises:
        CorruptionError: the payload does not parse, naming ``path`` and ``offset``.
    """
    try:
        seq, count = BATCH_HEADER.unpack_from(payload, 0)
        pos = BATCH_HEADER.size
        ops: list[Op] = []
        for _ in range(count):
            flags, klen, vlen = OP_HEADER.unpack_from(payload, pos)
            pos += OP_HEADER.size
            expire_ms = 0
            if flags & HAS_TTL:
                (expire_ms,) = EXPIRY.unpack_from(payload, pos)
                pos += EXPIRY.size
            key = payload[pos : pos + klen]
            value = payload[pos + klen : pos + klen + vlen]
            pos += klen + vlen
            if len(key) != klen or len(value) != vlen:
                raise struct.error("operation runs past the end of the record")
            ops.append(Op(flags, key, expire_ms, value))
        if pos != len(payload):
            raise struct.error(f"{len(payload) - pos} stray bytes after the last operation")
    except struct.error as exc:
        raise CorruptionError(
            f"{path}: write batch at offset {offset} does not parse: {exc}", path, offset
        ) from None
    return seq, ops
