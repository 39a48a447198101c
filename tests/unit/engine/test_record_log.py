"""The block-aligned log format shared by the WAL and the manifest: framing, reading back,
and what each kind of damage means (docs/format.md, "Logs")."""

from __future__ import annotations

import pytest

from shaledb.engine.base import Op
from shaledb.engine.batch import encode_batch
from shaledb.engine.checksum import CRC, crc32c
from shaledb.engine.log_format import (
    BLOCK_SIZE,
    FIRST,
    FULL,
    LAST,
    LEGACY_HEADER,
    MIDDLE,
    fragment_type,
    split_type,
)
from shaledb.engine.record_log import (
    HEADER_SIZE,
    MANIFEST_EDIT,
    WAL_BATCH,
    LogRecord,
    LogWriter,
    frame,
    read_records,
    salvage_records,
)
from shaledb.errors import CorruptionError

PAYLOADS = [b"first", b"", b"x" * 1000, bytes(range(256))]


def _log(payloads: list[bytes] = PAYLOADS, kind: int = WAL_BATCH) -> bytes:
    writer = LogWriter(kind)
    return b"".join(writer.frame(p) for p in payloads)


def _payloads(records: list[LogRecord]) -> list[bytes]:
    return [r.payload for r in records]


def _fragments(data: bytes) -> list[tuple[int, int, int]]:
    """``(offset, type, length)`` of every fragment, walking the blocks as the writer did."""
    out, pos = [], 0
    while pos < len(data):
        left = BLOCK_SIZE - pos % BLOCK_SIZE
        if left < HEADER_SIZE:
            assert data[pos : pos + left] == bytes(len(data[pos : pos + left]))
            pos += left
            continue
        length, type_byte = data[pos + 4] | data[pos + 5] << 8, data[pos + 6]
        out.append((pos, type_byte, length))
        pos += HEADER_SIZE + length
    return out


# -- framing ---------------------------------------------------------------------------------


def test_worked_example_of_docs_format() -> None:
    # docs/format.md, "Logs": put(b"k", b"v") with sequence number 7, at the start of a log.
    payload = encode_batch(7, [Op(0, b"k", 0, b"v")])
    record = frame(WAL_BATCH, payload)
    assert record.hex(" ") == (
        "7a 98 62 8f 17 00 11 07 00 00 00 00 00 00 00 01 00 00 00 00 01 00 00 00 01 00 00 00 6b 76"
    )
    assert CRC.unpack_from(record)[0] == crc32c(record[4:])
    edit = frame(MANIFEST_EDIT, b'{"last_seq":7}')
    assert edit.hex(" ") == "13 0b b4 98 0e 00 21 7b 22 6c 61 73 74 5f 73 65 71 22 3a 37 7d"


def test_type_byte_holds_kind_and_position() -> None:
    assert fragment_type(WAL_BATCH, FULL) == 0x11
    assert fragment_type(MANIFEST_EDIT, LAST) == 0x24
    assert split_type(0x23) == (MANIFEST_EDIT, MIDDLE)
    for bad in (0x00, 0x01, 0x10, 0x15, 0x31, 0xFF):
        assert split_type(bad) is None


def test_round_trip_of_several_records_with_their_offsets() -> None:
    data = _log()
    records, end = read_records(data, "log", tail_may_be_torn=False)
    assert _payloads(records) == PAYLOADS
    assert [r.record_type for r in records] == [WAL_BATCH] * len(PAYLOADS)
    assert [r.offset for r in records] == [o for o, _, _ in _fragments(data)]
    assert end == len(data)


def test_empty_log_has_no_records() -> None:
    assert read_records(b"", "log", tail_may_be_torn=False) == ([], 0)


@pytest.mark.parametrize("size", [BLOCK_SIZE - HEADER_SIZE, BLOCK_SIZE, 3 * BLOCK_SIZE + 5])
def test_large_record_is_cut_into_fragments_that_never_cross_a_block(size: int) -> None:
    payloads = [b"a" * 100, bytes(i % 251 for i in range(size)), b"tail"]
    data = _log(payloads)
    frags = _fragments(data)
    for offset, _, length in frags:
        assert offset // BLOCK_SIZE == (offset + HEADER_SIZE + length - 1) // BLOCK_SIZE
    positions = [split_type(t)[1] for _, t, _ in frags]  # type: ignore[index]
    assert positions[0] == FULL and positions[-1] == FULL
    assert positions[1] == FIRST and positions[-2] == LAST
    assert set(positions[2:-2]) <= {MIDDLE}
    records, _ = read_records(data, "log", tail_may_be_torn=False)
    assert _payloads(records) == payloads
    assert records[1].offset == frags[1][0]


def test_block_tail_shorter_than_a_header_is_zero_padded() -> None:
    # The first record leaves 3 bytes in the block: the next record starts in block 1.
    first = b"p" * (BLOCK_SIZE - HEADER_SIZE - 3)
    data = _log([first, b"next"])
    assert data[BLOCK_SIZE - 3 : BLOCK_SIZE] == b"\x00\x00\x00"
    records, _ = read_records(data, "log", tail_may_be_torn=False)
    assert _payloads(records) == [first, b"next"] and records[1].offset == BLOCK_SIZE


def test_writer_reopened_at_an_offset_frames_as_if_it_had_never_stopped() -> None:
    payloads = [b"x" * 20000, b"y" * 30000, b"z" * 5]
    whole = _log(payloads)
    part = _log(payloads[:1])
    resumed = LogWriter(WAL_BATCH, len(part))
    rest = b"".join(resumed.frame(p) for p in payloads[1:])
    assert part + rest == whole and resumed.offset == len(whole)


def test_a_manifest_record_is_never_read_as_a_wal_record() -> None:
    data = _log([b"a"]) + LogWriter(MANIFEST_EDIT, len(_log([b"a"]))).frame(b"{}")
    with pytest.raises(CorruptionError, match="kind"):
        read_records(data, "x.wal", tail_may_be_torn=False, kind=WAL_BATCH)
    records, damage = salvage_records(data, WAL_BATCH)
    assert _payloads(records) == [b"a"] and damage
    both, _ = read_records(data, "log", tail_may_be_torn=False)
    assert [r.record_type for r in both] == [WAL_BATCH, MANIFEST_EDIT]


# -- the torn tail ---------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 1, 500])
def test_truncated_last_record_is_a_torn_tail(cut: int) -> None:
    good = _log(PAYLOADS[:2])
    last = LogWriter(WAL_BATCH, len(good)).frame(b"y" * 600)
    records, end = read_records(good + last[:cut], "log", tail_may_be_torn=True)
    assert _payloads(records) == PAYLOADS[:2]
    assert end == len(good)


def test_truncated_last_record_is_an_error_when_no_tear_is_allowed() -> None:
    good = _log(PAYLOADS[:2])
    data = good + LogWriter(WAL_BATCH, len(good)).frame(b"y" * 600)[:100]
    with pytest.raises(CorruptionError) as info:
        read_records(data, "some.wal", tail_may_be_torn=False)
    assert info.value.path == "some.wal"
    assert info.value.offset == len(good)
    assert "some.wal" in str(info.value) and str(len(good)) in str(info.value)


@pytest.mark.parametrize(
    "tail", [b"\x00" * 4096, b"\x00", b"\xde\xad\xbe\xef" * 40, b"\x00" * BLOCK_SIZE * 2]
)
def test_zeros_or_garbage_after_the_last_record_are_dropped(tail: bytes) -> None:
    good = _log()
    records, end = read_records(good + tail, "log", tail_may_be_torn=True)
    assert _payloads(records) == PAYLOADS
    assert end == len(good)


def test_a_record_torn_across_blocks_is_a_torn_tail() -> None:
    good = _log([b"a" * 10])
    big = LogWriter(WAL_BATCH, len(good)).frame(b"b" * (3 * BLOCK_SIZE))
    for cut in (BLOCK_SIZE - len(good), BLOCK_SIZE - len(good) + 3, 2 * BLOCK_SIZE + 100):
        records, end = read_records(good + big[:cut], "log", tail_may_be_torn=True)
        assert _payloads(records) == [b"a" * 10] and end == len(good)


def test_a_damaged_last_record_alone_is_a_torn_tail() -> None:
    data = bytearray(_log())
    data[-1] ^= 0xFF
    records, _ = read_records(bytes(data), "log", tail_may_be_torn=True)
    assert _payloads(records) == PAYLOADS[:-1]


@pytest.mark.timeout(60)
def test_deciding_a_multi_mib_torn_record_is_torn_is_linear() -> None:
    # 8 MiB of non-zero bytes cut short: a quadratic search for "a valid record after
    # the damage" takes minutes here (74 s for 6 MiB before block-aligned records).
    good = _log([b"before"])
    value = bytes((i * 7 + 1) % 255 + 1 for i in range(8 * 1024 * 1024))
    torn = LogWriter(WAL_BATCH, len(good)).frame(value)[:-1000]
    data = good + torn
    records, end = read_records(data, "log", tail_may_be_torn=True)
    assert _payloads(records) == [b"before"] and end == len(good)
    salvaged, damage = salvage_records(data)
    assert _payloads(salvaged) == [b"before"] and damage == [len(good)]
    with pytest.raises(CorruptionError):
        read_records(data, "log", tail_may_be_torn=False)


# -- payload bytes never pass for records ----------------------------------------------------


def _pwned_record() -> bytes:
    return frame(WAL_BATCH, encode_batch(10**9, [Op(0, b"admin", 0, b"pwned")]))


@pytest.mark.parametrize("filler", [0, 100, BLOCK_SIZE - 50, 2 * BLOCK_SIZE])
def test_a_value_holding_a_valid_record_is_never_read_as_one(filler: int) -> None:
    good = _log([b"a" * 30, b"b" * 30])
    crafted = b"f" * filler + _pwned_record() * 3 + b"g" * 200
    torn = LogWriter(WAL_BATCH, len(good)).frame(crafted)[:-100]
    data = good + torn
    records, end = read_records(data, "log", tail_may_be_torn=True)
    assert _payloads(records) == [b"a" * 30, b"b" * 30] and end == len(good)
    salvaged, damage = salvage_records(data)
    assert _payloads(salvaged) == [b"a" * 30, b"b" * 30] and damage == [len(good)]


# -- damage that is not a torn tail ----------------------------------------------------------


def test_damage_followed_by_valid_records_is_corruption_naming_the_offset() -> None:
    data = bytearray(_log([b"a" * 50, b"b" * 50, b"c" * 50]))
    damaged_at = HEADER_SIZE + 50
    data[damaged_at + HEADER_SIZE + 10] ^= 0x01  # a payload byte of the second record
    with pytest.raises(CorruptionError) as info:
        read_records(bytes(data), "db/000003.wal", tail_may_be_torn=True)
    assert info.value.offset == damaged_at
    assert "db/000003.wal" in str(info.value)
    assert f"offset {damaged_at}" in str(info.value)
    records, damage = salvage_records(bytes(data))
    assert _payloads(records) == [b"a" * 50] and damage == [damaged_at]


def test_damage_followed_by_a_record_in_a_later_block_is_corruption() -> None:
    payloads = [b"a" * 50, b"b" * BLOCK_SIZE, b"c" * 50]
    data = bytearray(_log(payloads))
    data[HEADER_SIZE + 3] ^= 0x01
    with pytest.raises(CorruptionError) as info:
        read_records(bytes(data), "log", tail_may_be_torn=True)
    assert info.value.offset == 0
    records, damage = salvage_records(bytes(data))
    assert _payloads(records) == [b"c" * 50] and damage == [0]


@pytest.mark.parametrize("mask", [0x80, 0xFF])
def test_damaged_length_in_the_middle_is_corruption(mask: int) -> None:
    data = bytearray(_log([b"a" * 50, b"b" * 50, b"c" * 50]))
    data[5] ^= mask  # the first record's length grows across the block boundary
    with pytest.raises(CorruptionError) as info:
        read_records(bytes(data), "log", tail_may_be_torn=True)
    assert info.value.offset == 0


def test_a_length_grown_past_the_end_inside_the_last_block_reads_as_a_torn_tail() -> None:
    # The documented limit: such a header is exactly what a torn write leaves (a real
    # length, the file ending before the payload does). Telling them apart would mean
    # searching the payload for records, which a crafted value could fool.
    data = bytearray(_log([b"a" * 50, b"b" * 50, b"c" * 50]))
    data[5] ^= 0x40
    records, end = read_records(bytes(data), "log", tail_may_be_torn=True)
    assert records == [] and end == 0
    with pytest.raises(CorruptionError):
        read_records(bytes(data), "log", tail_may_be_torn=False)


def test_unknown_fragment_type_in_the_middle_is_corruption() -> None:
    data = bytearray(_log([b"a", b"zzz", b"c"]))
    data[HEADER_SIZE + 1 + 6] = 0x77
    with pytest.raises(CorruptionError, match="offset 8"):
        read_records(bytes(data), "log", tail_may_be_torn=True)


def test_a_stray_middle_fragment_is_damage() -> None:
    big = _log([b"x" * (2 * BLOCK_SIZE)])
    with pytest.raises(CorruptionError, match="stray"):
        read_records(big[BLOCK_SIZE:], "log", tail_may_be_torn=False)


def test_a_log_of_the_earlier_format_is_refused_with_a_message_that_says_so() -> None:
    body = (5).to_bytes(4, "little") + bytes((WAL_BATCH,)) + b"hello"
    legacy = CRC.pack(crc32c(body)) + body
    assert LEGACY_HEADER.size == 9
    for torn in (False, True):
        with pytest.raises(CorruptionError, match="format of ShaleDB 0.1"):
            read_records(legacy * 3, "old.wal", tail_may_be_torn=torn)


# -- a power cut's unwritten sectors -----------------------------------------------------------

GAP_PAYLOADS = [bytes([i % 250 + 1]) * 300 for i in range(400)]  # ~122 KiB, four blocks


def _with_hole(data: bytes, start: int, length: int) -> bytes:
    return data[:start] + bytes(length) + data[start + length :]


def _whole_before(data: bytes, offset: int) -> list[bytes]:
    """The payloads of the records that end before ``offset``."""
    records, _ = read_records(data, "log", tail_may_be_torn=False)
    ends = [r.offset for r in records[1:]] + [len(data)]
    return [r.payload for r, end in zip(records, ends) if end <= offset]


@pytest.mark.parametrize(
    "start, length",
    [(4096, 4096), (BLOCK_SIZE + 8192, 512), (3 * 512, 3 * 512), (BLOCK_SIZE, BLOCK_SIZE)],
)
def test_a_hole_of_unwritten_sectors_ends_the_newest_log(start: int, length: int) -> None:
    good = _log(GAP_PAYLOADS)
    data = _with_hole(good, start, length)
    expected = _whole_before(good, start)
    assert 0 < len(expected) < len(GAP_PAYLOADS)
    records, end = read_records(data, "log", True, WAL_BATCH, gaps_may_be_unwritten=True)
    assert _payloads(records) == expected
    assert end == records[-1].offset + HEADER_SIZE + len(expected[-1])
    # Where no hole is possible (an older WAL, a manifest), the same bytes are damage.
    with pytest.raises(CorruptionError, match="offset"):
        read_records(data, "log", tail_may_be_torn=True, kind=WAL_BATCH)


def test_other_damage_with_records_after_it_is_still_an_error_in_the_newest_log() -> None:
    good = bytearray(_log(GAP_PAYLOADS))
    good[5000] ^= 0x10  # one flipped payload bit, no zeros
    with pytest.raises(CorruptionError, match="checksum"):
        read_records(bytes(good), "log", True, WAL_BATCH, gaps_may_be_unwritten=True)
    # Zeros shorter than a sector, not at a sector's end: not a hole either.
    data = _with_hole(_log(GAP_PAYLOADS), 5000, 100)
    with pytest.raises(CorruptionError):
        read_records(data, "log", True, WAL_BATCH, gaps_may_be_unwritten=True)
