"""Reading block-aligned logs back, and deciding what damage means (docs/format.md, "Logs").

One forward pass over the file yields every whole record and every damaged place.
After damage the reader skips to the next block boundary and resynchronises there,
never inside a block: a fragment's length is trusted only once its CRC checks out, so
the bytes inside a payload (a value that holds the bytes of a valid record) are never
read as a header. Deciding whether damage is a torn tail is that same pass: linear in
the size of the file.

Rule (the torn tail): in a log that may be torn (the newest), damage with no whole
record after it is a write that never completed and is dropped; any other damage
raises :class:`~shaledb.errors.CorruptionError` naming the file and the offset. In
the newest WAL, damage that starts with sectors of zeros (a power cut's unwritten
pages) ends the log too, even with records after it.
"""

from __future__ import annotations

from collections.abc import Iterator

from shaledb.engine.checksum import crc32c
from shaledb.engine.log_format import (
    BLOCK_SIZE,
    FIRST,
    FRAGMENT_HEADER,
    FULL,
    HEADER_SIZE,
    LAST,
    LEGACY_HEADER,
    MIDDLE,
    RECORD_KINDS,
    LogRecord,
    split_type,
)
from shaledb.engine.unwritten import starts_unwritten
from shaledb.errors import CorruptionError


class Damage:
    """A damaged place: the offset of the record it spoils, and what is wrong.

    ``claimed_next`` is where the damaged fragment's own header, unverified, says the
    next fragment starts (-1 when it says nothing usable).
    """

    __slots__ = ("at", "claimed_next", "forged_header", "offset", "reason")

    def __init__(
        self,
        offset: int,
        reason: str,
        at: int = -1,
        claimed_next: int = -1,
        forged_header: bool = False,
    ) -> None:
        self.offset = offset
        self.reason = reason
        self.at = at  # the damaged fragment itself
        self.claimed_next = claimed_next
        #: The header cannot be one the writer wrote (unknown type, or a length that
        #: crosses a block boundary), so it is not a tear of real bytes.
        self.forged_header = forged_header


def _fragment_problem(
    data: bytes, pos: int, block_end: int, kind: int | None
) -> tuple[int, int, int] | str:
    """``(kind, position, end)`` of the fragment at ``pos`` if it checks out, else why not."""
    size = len(data)
    if size - pos < HEADER_SIZE:
        return "truncated fragment header"
    crc, length, type_byte = FRAGMENT_HEADER.unpack_from(data, pos)
    split = split_type(type_byte)
    if split is None:
        if crc == length == type_byte == 0:
            return "zeros where a fragment header should be"
        return f"unknown fragment type 0x{type_byte:02x}"
    if kind is not None and split[0] != kind:
        return f"fragment of record kind {split[0]} in a log of kind {kind}"
    end = pos + HEADER_SIZE + length
    if end > block_end:
        return "fragment length crosses a block boundary"
    if end > size:
        return "truncated fragment (its length runs past the end of the file)"
    if crc32c(memoryview(data)[pos + 4 : end]) != crc:
        return "fragment checksum mismatch"
    return split[0], split[1], end


def scan(data: bytes, kind: int | None = None) -> Iterator[LogRecord | Damage]:
    """Every whole record and every damaged place of a log, in file order.

    ``kind`` (a record kind) makes a fragment of any other kind damage; None accepts
    both kinds but not a mix within one record.
    """
    size = len(data)
    pos = 0
    pending: list[bytes] = []
    pending_at = -1  # offset of the record being assembled, -1 when none
    pending_kind = 0
    skipping = False  # after damage: MIDDLE/LAST fragments of the spoilt record
    while pos < size:
        block_end = (pos // BLOCK_SIZE + 1) * BLOCK_SIZE
        if block_end - pos < HEADER_SIZE:
            if any(data[pos:block_end]):
                yield Damage(pending_at if pending_at >= 0 else pos, "non-zero block trailer")
                pending, pending_at, skipping = [], -1, True
            pos = block_end
            continue
        checked = _fragment_problem(data, pos, block_end, kind)
        if isinstance(checked, str):
            where = "" if pending_at < 0 else f" (fragment at offset {pos})"
            claimed = -1
            if size - pos >= HEADER_SIZE:
                claimed = pos + HEADER_SIZE + FRAGMENT_HEADER.unpack_from(data, pos)[1]
            forged = checked.startswith(("unknown", "fragment length crosses"))
            offset = pending_at if pending_at >= 0 else pos
            yield Damage(offset, checked + where, pos, claimed, forged)
            pending, pending_at, skipping = [], -1, True
            pos = block_end  # resynchronise at the next block boundary only
            continue
        frag_kind, position, end = checked
        chunk = data[pos + HEADER_SIZE : end]
        if position in (FULL, FIRST):
            if pending_at >= 0:
                yield Damage(pending_at, f"record cut short by a new record at offset {pos}")
            skipping = False
            if position == FULL:
                pending, pending_at = [], -1
                yield LogRecord(pos, frag_kind, chunk)
            else:
                pending, pending_at, pending_kind = [chunk], pos, frag_kind
        elif pending_at >= 0 and frag_kind == pending_kind:
            pending.append(chunk)
            if position == LAST:
                yield LogRecord(pending_at, pending_kind, b"".join(pending))
                pending, pending_at = [], -1
        elif not skipping:
            name = "MIDDLE" if position == MIDDLE else "LAST"
            yield Damage(pending_at if pending_at >= 0 else pos, f"stray {name} fragment")
            pending, pending_at, skipping = [], -1, True
        pos = end
    if pending_at >= 0:
        yield Damage(pending_at, "record cut short by the end of the file")


def _checks_out_at(data: bytes, pos: int, kind: int | None) -> bool:
    """Whether a fragment that checks out starts at ``pos`` (evidence, never applied)."""
    if not 0 < pos <= len(data) - HEADER_SIZE:
        return False
    block_end = (pos // BLOCK_SIZE + 1) * BLOCK_SIZE
    return block_end - pos >= HEADER_SIZE and not isinstance(
        _fragment_problem(data, pos, block_end, kind), str
    )


#: At most this many payload bytes are checksummed looking for evidence in one block.
_EVIDENCE_CRC_BUDGET = 4 * BLOCK_SIZE


def _fragment_later_in_block(data: bytes, damage: Damage, kind: int | None) -> bool:
    """Whether a fragment that checks out starts anywhere after a forged header, in
    its block. Only for a header the writer cannot have written: bytes after a real
    (torn) header belong to its payload and are never searched."""
    pos = damage.at + 1
    block_end = min(len(data), (damage.at // BLOCK_SIZE + 1) * BLOCK_SIZE)
    budget = _EVIDENCE_CRC_BUDGET
    while pos <= block_end - HEADER_SIZE and budget > 0:
        split = split_type(data[pos + 6])
        if split is not None and (kind is None or split[0] == kind):
            length = FRAGMENT_HEADER.unpack_from(data, pos)[1]
            if pos + HEADER_SIZE + length <= block_end:
                budget -= length
                if _checks_out_at(data, pos, kind):
                    return True
        pos += 1
    return False


def _legacy(data: bytes) -> bool:
    # A whole record of the earlier format at offset 0 (its CRC checks out).
    if len(data) < LEGACY_HEADER.size:
        return False
    crc, length, record_type = LEGACY_HEADER.unpack_from(data, 0)
    end = LEGACY_HEADER.size + length
    return record_type in RECORD_KINDS and end <= len(data) and crc32c(data[4:end]) == crc


def _corruption(path: str, damage: Damage, data: bytes) -> CorruptionError:
    if damage.offset == 0 and _legacy(data):
        return CorruptionError(
            f"{path}: written in the unaligned log format of ShaleDB 0.1, which this "
            "version does not read; export the database with that version "
            "('shaledb dump') and load it here",
            path,
            0,
        )
    return CorruptionError(
        f"{path}: {damage.reason} at offset {damage.offset}", path, damage.offset
    )


def read_records(
    data: bytes,
    path: str,
    tail_may_be_torn: bool,
    kind: int | None = None,
    gaps_may_be_unwritten: bool = False,
) -> tuple[list[LogRecord], int]:
    """Decode a whole log: ``([LogRecord, ...], end of the last good record)``.

    Args:
        data: the log file's bytes.
        path: the file's name, for error messages.
        tail_may_be_torn: whether the log may end in a torn write (the newest log);
            when False any damage raises.
        kind: the record kind the log holds; a record of another kind is damage.
        gaps_may_be_unwritten: the log's tail may hold sectors a power cut did not
            write (the newest WAL, never fsynced as a whole): damage of that shape
            ends the log even with records after it (docs/format.md, "Power-cut gaps").
    Raises:
        CorruptionError: damage that is not a torn tail, naming the file and offset.
    """
    records: list[LogRecord] = []
    events = scan(data, kind)
    for event in events:
        if isinstance(event, LogRecord):
            records.append(event)
            continue
        # Damage is a torn tail only if nothing written after it checks out: no whole
        # record at a later block boundary (the same pass goes on from there), and no
        # fragment where the damaged header itself says the next one starts. The
        # second catches a flipped payload bit in the last block; it is only evidence
        # for raising, so an unverified length can make the reader refuse, never apply.
        followed = _checks_out_at(data, event.claimed_next, kind) or (
            event.forged_header and _fragment_later_in_block(data, event, kind)
        )
        unwritten = gaps_may_be_unwritten and starts_unwritten(
            data, event.at, (event.at // BLOCK_SIZE + 1) * BLOCK_SIZE
        )
        if tail_may_be_torn and (
            unwritten or (not followed and not any(isinstance(e, LogRecord) for e in events))
        ):
            if event.offset == 0 and _legacy(data):
                raise _corruption(path, event, data)
            return records, event.offset
        raise _corruption(path, event, data)
    return records, len(data)


def salvage_records(data: bytes, kind: int | None = None) -> tuple[list[LogRecord], list[int]]:
    """Every whole record that checks out, skipping damage: ``(records, offsets of damage)``.

    Records are found only where the writer put them (resynchronising at block
    boundaries), never inside another record's payload.
    """
    records: list[LogRecord] = []
    damage: list[int] = []
    for event in scan(data, kind):
        if isinstance(event, LogRecord):
            records.append(event)
        else:
            damage.append(event.offset)
    return records, damage
