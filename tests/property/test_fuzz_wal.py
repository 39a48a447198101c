"""Fuzzing the WAL reader: random and damaged logs into the record framing and the
write-batch codec (shaledb.engine.record_log, shaledb.engine.batch).

Whatever the bytes, ``read_records``, ``salvage_records`` and ``decode_batch`` raise
nothing but ShaleDB errors, finish within the deadline and allocate a bounded amount
(fuzz_support). A log cut anywhere reads back as a prefix of its records.
"""

from __future__ import annotations

import contextlib

import pytest
from fuzz_support import FAST, SLOW, bounded, mutated
from hypothesis import given
from hypothesis import strategies as st

from shaledb.engine.base import Op
from shaledb.engine.batch import decode_batch, encode_batch
from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.record_log import WAL_BATCH, LogWriter, read_records, salvage_records
from shaledb.errors import CorruptionError

OPS = st.builds(
    lambda flags, key, expire, value: Op(
        flags, key, expire if flags & HAS_TTL else 0, b"" if flags & TOMBSTONE else value
    ),
    st.sampled_from([0, TOMBSTONE, HAS_TTL, 0x30]),
    st.binary(min_size=1, max_size=24),
    st.integers(0, (1 << 64) - 1),
    st.binary(max_size=200),
)
BATCHES = st.lists(st.lists(OPS, min_size=1, max_size=5), min_size=1, max_size=12)


def encode_log(batches: list[list[Op]]) -> tuple[bytes, list[bytes]]:
    """A valid WAL holding ``batches``, and the payload of each record."""
    writer = LogWriter(WAL_BATCH)
    payloads = []
    seq = 1
    for ops in batches:
        payloads.append(encode_batch(seq, ops))
        seq += len(ops)
    return b"".join(writer.frame(p) for p in payloads), payloads


def read_everything(data: bytes) -> None:
    """Every reader entry point over ``data``; decode every record found."""
    for torn, gaps in ((True, False), (False, False), (True, True)):
        try:
            records, _ = read_records(data, "fuzz.wal", torn, gaps_may_be_unwritten=gaps)
        except CorruptionError:
            records = []
        for payload in (r.payload for r in records):
            with contextlib.suppress(CorruptionError):
                decode_batch(payload, "fuzz.wal")
    records, _ = salvage_records(data)
    for payload in (r.payload for r in records):
        with contextlib.suppress(CorruptionError):
            decode_batch(payload, "fuzz.wal")


def check_random_bytes(data: bytes) -> None:
    with bounded(len(data)):
        read_everything(data)
    with bounded(len(data)):
        decode_batch(data, "fuzz.wal")


def check_damaged_log(data: bytes) -> None:
    with bounded(len(data)):
        read_everything(data)


def check_cut_log(batches: list[list[Op]], fraction: float) -> None:
    log, payloads = encode_log(batches)
    cut = int(len(log) * fraction)
    with bounded(cut):
        records, end = read_records(log[:cut], "fuzz.wal", tail_may_be_torn=True)
    got = [r.payload for r in records]
    assert got == payloads[: len(got)], "a cut log must read back as a prefix of its records"
    assert end <= cut
    for payload, ops in zip(got, batches):
        assert decode_batch(payload)[1] == ops


@FAST
@given(st.binary(max_size=4096))
def test_random_bytes_into_the_wal_reader(data: bytes) -> None:
    check_random_bytes(data)


@FAST
@given(st.data())
def test_damaged_logs_into_the_wal_reader(data: st.DataObject) -> None:
    log, _ = encode_log(data.draw(BATCHES))
    check_damaged_log(data.draw(mutated(log)))


@FAST
@given(BATCHES, st.floats(0, 1))
def test_a_log_cut_anywhere_reads_as_a_prefix(batches: list[list[Op]], fraction: float) -> None:
    check_cut_log(batches, fraction)


@FAST
@given(BATCHES)
def test_a_valid_log_reads_back_whole(batches: list[list[Op]]) -> None:
    log, payloads = encode_log(batches)
    records, end = read_records(log, "fuzz.wal", tail_may_be_torn=False)
    assert [r.payload for r in records] == payloads and end == len(log)
    assert salvage_records(log) == (records, [])


@pytest.mark.slow
@SLOW
@given(st.binary(max_size=65536))
def test_random_bytes_into_the_wal_reader_at_length(data: bytes) -> None:
    check_random_bytes(data)


@pytest.mark.slow
@SLOW
@given(st.data())
def test_damaged_logs_into_the_wal_reader_at_length(data: st.DataObject) -> None:
    log, _ = encode_log(data.draw(BATCHES))
    check_damaged_log(data.draw(mutated(log)))


@pytest.mark.slow
@SLOW
@given(BATCHES, st.floats(0, 1))
def test_a_log_cut_anywhere_reads_as_a_prefix_at_length(
    batches: list[list[Op]], fraction: float
) -> None:
    check_cut_log(batches, fraction)
