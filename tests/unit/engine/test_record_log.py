"""Record framing shared by the WAL and the manifest: round trips and damage handling."""

from __future__ import annotations

import pytest

from shaledb.engine.record_log import (
    HEADER_SIZE,
    MANIFEST_EDIT,
    WAL_BATCH,
    frame,
    read_records,
)
from shaledb.errors import CorruptionError

PAYLOADS = [b"first", b"", b"x" * 1000, bytes(range(256))]


def _log(payloads: list[bytes] = PAYLOADS, kind: int = WAL_BATCH) -> bytes:
    return b"".join(frame(kind, p) for p in payloads)


def test_frame_has_header_and_payload() -> None:
    record = frame(WAL_BATCH, b"abc")
    assert len(record) == HEADER_SIZE + 3
    assert record.endswith(b"abc")


def test_round_trip_of_several_records() -> None:
    data = _log() + frame(MANIFEST_EDIT, b"{}")
    records, end = read_records(data, "log", tail_may_be_torn=False)
    assert records == [(WAL_BATCH, p) for p in PAYLOADS] + [(MANIFEST_EDIT, b"{}")]
    assert end == len(data)


def test_empty_log_has_no_records() -> None:
    assert read_records(b"", "log", tail_may_be_torn=False) == ([], 0)


@pytest.mark.parametrize("cut", [1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 1, 500])
def test_truncated_last_record_is_a_torn_tail(cut: int) -> None:
    good = _log(PAYLOADS[:2])
    last = frame(WAL_BATCH, b"y" * 600)
    data = good + last[:cut]
    records, end = read_records(data, "log", tail_may_be_torn=True)
    assert records == [(WAL_BATCH, p) for p in PAYLOADS[:2]]
    assert end == len(good)


def test_truncated_last_record_is_an_error_when_no_tear_is_allowed() -> None:
    good = _log(PAYLOADS[:2])
    data = good + frame(WAL_BATCH, b"y" * 600)[:100]
    with pytest.raises(CorruptionError) as info:
        read_records(data, "some.wal", tail_may_be_torn=False)
    assert info.value.path == "some.wal"
    assert info.value.offset == len(good)
    assert "some.wal" in str(info.value) and str(len(good)) in str(info.value)


@pytest.mark.parametrize("tail", [b"\x00" * 4096, b"\x00", b"\xde\xad\xbe\xef" * 40])
def test_zeros_or_garbage_after_the_last_record_are_dropped(tail: bytes) -> None:
    good = _log()
    records, end = read_records(good + tail, "log", tail_may_be_torn=True)
    assert [p for _, p in records] == PAYLOADS
    assert end == len(good)


def test_damage_followed_by_valid_records_is_corruption_naming_the_offset() -> None:
    first = frame(WAL_BATCH, b"a" * 50)
    second = frame(WAL_BATCH, b"b" * 50)
    third = frame(WAL_BATCH, b"c" * 50)
    data = bytearray(first + second + third)
    damaged_at = len(first)
    data[damaged_at + HEADER_SIZE + 10] ^= 0x01  # a payload byte of the second record
    with pytest.raises(CorruptionError) as info:
        read_records(bytes(data), "db/000003.wal", tail_may_be_torn=True)
    assert info.value.offset == damaged_at
    assert "db/000003.wal" in str(info.value)
    assert f"offset {damaged_at}" in str(info.value)


def test_damaged_length_in_the_middle_is_corruption() -> None:
    first = frame(WAL_BATCH, b"a" * 50)
    data = bytearray(first + frame(WAL_BATCH, b"b" * 50) + frame(WAL_BATCH, b"c" * 50))
    data[4 + 2] ^= 0x40  # the first record's length grows past the end of the file
    with pytest.raises(CorruptionError) as info:
        read_records(bytes(data), "log", tail_may_be_torn=True)
    assert info.value.offset == 0


def test_a_damaged_last_record_alone_is_a_torn_tail() -> None:
    data = bytearray(_log())
    data[-1] ^= 0xFF
    records, _ = read_records(bytes(data), "log", tail_may_be_torn=True)
    assert [p for _, p in records] == PAYLOADS[:-1]


def test_unknown_record_type_in_the_middle_is_corruption() -> None:
    bad = bytearray(frame(WAL_BATCH, b"zzz"))
    bad[8] = 77
    data = frame(WAL_BATCH, b"a") + bytes(bad) + frame(WAL_BATCH, b"c")
    with pytest.raises(CorruptionError, match="offset"):
        read_records(data, "log", tail_may_be_torn=True)
