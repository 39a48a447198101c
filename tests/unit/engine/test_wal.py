"""The write-ahead log: the batch codec, the file, rotation and group commit."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from shaledb.engine.batch import BATCH_HEADER, OP_HEADER, decode_batch, encode_batch
from shaledb.engine.entry import HAS_TTL, KEY_STR, TOMBSTONE, VALUE_STR
from shaledb.engine.fs import FileSystem
from shaledb.engine.record_log import WAL_BATCH, read_records
from shaledb.engine.wal import WriteAheadLog
from shaledb.errors import CorruptionError

OPS = [
    (0, b"k1", 0, b"v1"),
    (KEY_STR | VALUE_STR, "é".encode(), 0, "ü".encode()),
    (TOMBSTONE, b"gone", 0, b""),
    (HAS_TTL, b"ttl", 1_700_000_123_456, b"expiring"),
    (HAS_TTL | VALUE_STR, b"\x00\xff", 2**63, b""),
    (0, b"big", 0, b"\x01" * 70_000),
]


def test_batch_round_trip() -> None:
    payload = encode_batch(42, OPS)
    assert decode_batch(payload) == (42, OPS)


def test_empty_batch_round_trip() -> None:
    assert decode_batch(encode_batch(7, [])) == (7, [])


def test_expiry_is_stored_only_with_has_ttl() -> None:
    # Without HAS_TTL an expire_ms is not part of the record and decodes as 0.
    assert decode_batch(encode_batch(1, [(0, b"k", 999, b"v")])) == (1, [(0, b"k", 0, b"v")])


@pytest.mark.parametrize("cut", [0, 5, 12, 20, 30])
def test_truncated_batch_payload_is_corruption(cut: int) -> None:
    payload = encode_batch(1, OPS[:3])
    with pytest.raises(CorruptionError) as info:
        decode_batch(payload[:cut], "x.wal", 123)
    assert info.value.path == "x.wal" and info.value.offset == 123
    assert "x.wal" in str(info.value) and "123" in str(info.value)


def test_stray_bytes_after_the_ops_are_corruption() -> None:
    with pytest.raises(CorruptionError, match="stray"):
        decode_batch(encode_batch(1, OPS[:1]) + b"\x00")


def _read_log(path: Path) -> list[tuple[int, list]]:
    records, end = read_records(path.read_bytes(), str(path), tail_may_be_torn=False)
    assert end == path.stat().st_size
    assert all(record.record_type == WAL_BATCH for record in records)
    return [decode_batch(record.payload) for record in records]


@pytest.mark.parametrize("mode", ["always", "everysec", "never"])
def test_appended_batches_are_in_the_file_before_append_returns(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "000001.wal"
    wal = WriteAheadLog(FileSystem(), str(path), mode)
    try:
        p1 = wal.append(encode_batch(1, OPS[:2]))
        p2 = wal.append(encode_batch(3, OPS[2:]))
        assert 0 < p1 < p2 == wal.size == path.stat().st_size
        # Another reader (as after kill -9) sees both records without any sync.
        assert _read_log(path) == [(1, OPS[:2]), (3, OPS[2:])]
        wal.sync_to(p2)
        wal.sync()
    finally:
        wal.close()
    assert _read_log(path) == [(1, OPS[:2]), (3, OPS[2:])]


def test_rotate_continues_in_a_new_file(tmp_path: Path) -> None:
    first, second = tmp_path / "000001.wal", tmp_path / "000002.wal"
    wal = WriteAheadLog(FileSystem(), str(first), "always")
    wal.append(encode_batch(1, OPS[:1]))
    wal.rotate(str(second))
    position = wal.append(encode_batch(2, OPS[1:2]))
    wal.sync_to(position)
    assert wal.path == str(second)
    wal.close()
    assert _read_log(first) == [(1, OPS[:1])]
    assert _read_log(second) == [(2, OPS[1:2])]


def test_reopening_a_log_appends_after_existing_records(tmp_path: Path) -> None:
    path = tmp_path / "000001.wal"
    wal = WriteAheadLog(FileSystem(), str(path), "never")
    wal.append(encode_batch(1, OPS[:1]))
    wal.close()
    wal = WriteAheadLog(FileSystem(), str(path), "never")
    wal.append(encode_batch(2, OPS[1:2]))
    wal.close()
    assert _read_log(path) == [(1, OPS[:1]), (2, OPS[1:2])]


def test_group_commit_many_threads(tmp_path: Path) -> None:
    path = tmp_path / "000001.wal"
    wal = WriteAheadLog(FileSystem(), str(path), "always")
    append_lock = threading.Lock()  # the engine's write lock serializes appends
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(25):
                with append_lock:
                    position = wal.append(
                        encode_batch(t * 1000 + i, [(0, f"{t}-{i}".encode(), 0, b"v")])
                    )
                wal.sync_to(position)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wal.close()
    assert errors == []
    keys = {op[1] for _, ops in _read_log(path) for op in ops}
    assert keys == {f"{t}-{i}".encode() for t in range(6) for i in range(25)}


def test_close_is_safe_twice_and_leaves_the_log_complete(tmp_path: Path) -> None:
    path = tmp_path / "000001.wal"
    wal = WriteAheadLog(FileSystem(), str(path), "everysec")
    wal.append(encode_batch(1, OPS))
    wal.close()
    wal.close()
    assert _read_log(path) == [(1, OPS)]
    assert os.path.exists(path)


@pytest.mark.parametrize("key,value", [(b"k", b"v"), (b"\x00key", b""), (b"k" * 300, b"v" * 70000)])
def test_single_put_fast_path_writes_the_same_bytes_as_the_general_path(
    key: bytes, value: bytes
) -> None:
    fast = encode_batch(7, [(KEY_STR, key, 0, value)])
    # The general path, spelled out: the batch header, then one operation.
    general = BATCH_HEADER.pack(7, 1) + OP_HEADER.pack(KEY_STR, len(key), len(value)) + key + value
    assert fast == general
    assert decode_batch(fast) == (7, [(KEY_STR, key, 0, value)])
