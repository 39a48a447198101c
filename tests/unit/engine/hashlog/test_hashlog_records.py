"""The hash-log record codec and the damage rules of reading a segment back."""

from __future__ import annotations

from pathlib import Path

import pytest

from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.hashlog import HashLogEngine
from shaledb.engine.hashlog.records import (
    ENTRY_SIZE,
    HEADER_SIZE,
    KIND_MERGE,
    decode_header,
    encode_batch,
    encode_entry,
    encode_header,
    parse_records,
    read_entry,
    salvage_records,
)
from shaledb.errors import CorruptionError
from shaledb.options import Options


def segment(*writes: bytes) -> bytes:
    return encode_header(0, 7) + b"".join(writes)


def test_entry_round_trips() -> None:
    data = encode_entry(5, HAS_TTL, b"key", 1234, b"value")
    assert len(data) == ENTRY_SIZE + 3 + 5
    assert read_entry(data, b"key", "f", 0) == (HAS_TTL, 1234, b"value")
    records, end = parse_records(segment(data), "f", HEADER_SIZE, False)
    assert end == HEADER_SIZE + len(data)
    assert [(r.seq, r.flags, r.key, r.expire_ms, r.offset, r.length) for r in records] == [
        (5, HAS_TTL, b"key", 1234, HEADER_SIZE, len(data))
    ]


def test_worked_example_of_the_first_put() -> None:
    # docs/format.md, "Data segment": put(0, b"k", b"v") as the first write.
    data = encode_entry(1, 0, b"k", 0, b"v")
    body = "01 00 01000000 01000000" + "00" * 8 + "0100000000000000 6b 76"
    assert data == bytes.fromhex("81 a0 67 91" + body)
    assert len(data) == 32


def test_read_entry_refuses_another_key_or_a_flipped_bit() -> None:
    data = encode_entry(1, 0, b"key", 0, b"value")
    with pytest.raises(CorruptionError, match="offset 99"):
        read_entry(data, b"kez", "f", 99)
    flipped = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(CorruptionError):
        read_entry(flipped, b"key", "f", 0)


def test_batch_entries_have_their_own_offsets() -> None:
    ops = [(0, b"a", 0, b"1"), (TOMBSTONE, b"b", 0, b""), (HAS_TTL, b"c", 9, b"3")]
    data, offsets = encode_batch(10, ops)
    records, end = parse_records(segment(data), "f", HEADER_SIZE, False)
    assert end == HEADER_SIZE + len(data)
    assert [(r.seq, r.key, r.flags) for r in records] == [
        (10, b"a", 0),
        (11, b"b", TOMBSTONE),
        (12, b"c", HAS_TTL),
    ]
    assert [r.offset - HEADER_SIZE for r in records] == offsets
    for r in records:
        whole = segment(data)[r.offset : r.offset + r.length]
        assert read_entry(whole, r.key, "f", r.offset)[0] == r.flags


def test_header_is_checked() -> None:
    header = encode_header(KIND_MERGE, 42)
    assert decode_header(header, "f") == (KIND_MERGE, 42)
    with pytest.raises(CorruptionError, match="not a hash-log data file"):
        decode_header(b"SSTABLE!" + header[8:], "f")
    with pytest.raises(CorruptionError, match="checksum"):
        decode_header(header[:12] + bytes([header[12] ^ 1]) + header[13:], "f")


@pytest.mark.parametrize("cut", [1, 5, 17, 20, 40])
def test_torn_tail_is_dropped_only_where_it_may_be(cut: int) -> None:
    first = encode_entry(1, 0, b"a", 0, b"1" * 10)
    batch, _ = encode_batch(2, [(0, b"b", 0, b"2" * 10), (0, b"c", 0, b"3")])
    data = segment(first, batch)[:-cut]
    records, end = parse_records(data, "seg", HEADER_SIZE, True)
    # The batch is cut short, so none of it is there: all of a batch or none.
    assert [r.key for r in records] == [b"a"]
    assert end == HEADER_SIZE + len(first)
    with pytest.raises(CorruptionError) as caught:
        parse_records(data, "seg", HEADER_SIZE, False)
    assert caught.value.path == "seg" and caught.value.offset == end


def test_zeros_after_the_last_record_are_a_torn_tail() -> None:
    first = encode_entry(1, 0, b"a", 0, b"1")
    records, end = parse_records(segment(first) + bytes(300), "seg", HEADER_SIZE, True)
    assert [r.key for r in records] == [b"a"] and end == HEADER_SIZE + len(first)


def test_damage_mid_file_names_file_and_offset() -> None:
    a = encode_entry(1, 0, b"a", 0, b"1" * 20)
    b = encode_entry(2, 0, b"b", 0, b"2" * 20)
    c = encode_entry(3, 0, b"c", 0, b"3" * 20)
    data = bytearray(segment(a, b, c))
    at = HEADER_SIZE + len(a) + ENTRY_SIZE + 5  # inside b's value
    data[at] ^= 0xFF
    with pytest.raises(CorruptionError) as caught:
        parse_records(bytes(data), "seg", HEADER_SIZE, True)  # c follows: not a torn tail
    assert caught.value.offset == HEADER_SIZE + len(a)
    assert "seg" in str(caught.value) and str(HEADER_SIZE + len(a)) in str(caught.value)
    found, damage = salvage_records(bytes(data), HEADER_SIZE)
    assert [r.key for r in found] == [b"a", b"c"] and damage == [HEADER_SIZE + len(a)]


def test_engine_open_drops_a_torn_tail_and_refuses_mid_file_damage(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    engine = HashLogEngine(str(directory), Options(fsync="never"))
    for i in range(5):
        engine.put(0, f"k{i}".encode(), b"v" * 30)
    engine.close()
    (directory / "000001.hli").unlink()  # so the open reads the data
    path = directory / "000001.hld"
    whole = path.read_bytes()
    path.write_bytes(whole[:-7])
    engine = HashLogEngine(str(directory))
    assert [k for k, *_ in engine.scan(b"", None)] == [b"k0", b"k1", b"k2", b"k3"]
    engine.put(0, b"after", b"x")
    engine.close()
    engine = HashLogEngine(str(directory))
    assert engine.get(b"after") == (0, 0, b"x") and engine.get(b"k4") is None
    engine.close()
    (directory / "000001.hli").unlink()
    data = bytearray(path.read_bytes())
    data[HEADER_SIZE + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptionError) as caught:
        HashLogEngine(str(directory))
    assert caught.value.path == str(path) and caught.value.offset == HEADER_SIZE


def test_a_power_cut_hole_in_the_active_segment_ends_it(tmp_path: Path) -> None:
    """A hole of zeros with whole records after it (pages written back out of order,
    then a power cut) ends the active segment there; in a sealed segment it is damage."""
    writes = [
        encode_entry(i + 1, 0, f"k{i:03d}".encode(), 0, bytes([i + 1]) * 100) for i in range(60)
    ]
    data = segment(*writes)
    hole = 2048
    kept = sum(1 for i in range(60) if HEADER_SIZE + sum(map(len, writes[: i + 1])) <= hole)
    holed = data[:hole] + bytes(1024) + data[hole + 1024 :]
    records, end = parse_records(holed, "seg", HEADER_SIZE, True)
    assert [r.key for r in records] == [f"k{i:03d}".encode() for i in range(kept)]
    assert end == HEADER_SIZE + sum(map(len, writes[:kept]))
    with pytest.raises(CorruptionError, match=f"offset {end}"):
        parse_records(holed, "seg", HEADER_SIZE, False)
    directory = tmp_path / "db"
    engine = HashLogEngine(str(directory), Options(fsync="never"))
    for i in range(60):
        engine.put(0, f"k{i:03d}".encode(), bytes([i + 1]) * 100)
    engine.close()
    (directory / "000001.hli").unlink()  # as after a power cut: no index past the data
    path = directory / "000001.hld"
    whole = path.read_bytes()
    path.write_bytes(whole[:hole] + bytes(1024) + whole[hole + 1024 :])
    engine = HashLogEngine(str(directory))
    assert [k for k, *_ in engine.scan(b"", None)] == [f"k{i:03d}".encode() for i in range(kept)]
    engine.put(0, b"after", b"x")
    engine.close()
    engine = HashLogEngine(str(directory))
    assert engine.get(b"after") == (0, 0, b"x") and len(list(engine.scan(b"", None))) == kept + 1
    engine.close()


def test_single_put_fast_path_writes_the_general_bytes(tmp_path: Path) -> None:
    fast, general = tmp_path / "fast", tmp_path / "general"
    for directory, use_put in ((fast, True), (general, False)):
        engine = HashLogEngine(str(directory), Options(fsync="never"))
        for flags, key, expire_ms, value in [(0, b"a", 0, b"1"), (HAS_TTL, b"b", 5, b"22")]:
            if use_put and not expire_ms:
                engine.put(flags, key, value)
            elif use_put:
                engine.write([(flags, key, expire_ms, value)])  # the same inlined path
            else:  # a condition takes the general path
                engine.write([(flags, key, expire_ms, value)], condition=lambda: True)
        engine.close()
    body = (fast / "000001.hld").read_bytes()[HEADER_SIZE:]
    assert body == (general / "000001.hld").read_bytes()[HEADER_SIZE:]
    assert body == encode_entry(1, 0, b"a", 0, b"1") + encode_entry(2, HAS_TTL, b"b", 5, b"22")
    # The items; the header names each file_id, and the last 4 bytes are the CRC.
    assert (fast / "000001.hli").read_bytes()[48:-4] == (general / "000001.hli").read_bytes()[48:-4]
