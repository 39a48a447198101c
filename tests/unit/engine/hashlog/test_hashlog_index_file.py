"""Index (hint) files: trusted only when they check out against the data, rebuilt
otherwise, and enough on their own after a clean close."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shaledb.engine.entry import HAS_TTL
from shaledb.engine.hashlog import HashLogEngine, check_hashlog, repair_hashlog
from shaledb.engine.hashlog import segments as segments_module
from shaledb.engine.hashlog.index_file import IndexItems, decode_index, encode_index
from shaledb.engine.hashlog.records import Record
from shaledb.errors import CorruptionError
from shaledb.options import Options


def test_index_codec_round_trips() -> None:
    items = IndexItems()
    items.add(3, 0, b"a", 0, 24, 32)
    items.add(4, HAS_TTL, b"bb", 99, 56, 33)
    data = encode_index(77, 89, items)
    index = decode_index(data, "i")
    assert (index.file_id, index.covers, index.min_seq, index.max_seq) == (77, 89, 3, 4)
    assert index.records == [Record(3, 0, b"a", 0, 24, 32), Record(4, HAS_TTL, b"bb", 99, 56, 33)]
    damaged = data[:50] + bytes([data[50] ^ 1]) + data[51:]
    with pytest.raises(CorruptionError, match="checksum"):
        decode_index(damaged, "i")
    with pytest.raises(CorruptionError, match="not a hash-log index"):
        decode_index(b"nonsense" * 10, "i")


def fill(directory: Path, n: int = 50, **options: Any) -> dict[bytes, bytes]:
    engine = HashLogEngine(str(directory), Options(fsync="never", **options))
    model: dict[bytes, bytes] = {}
    for i in range(n):
        key, value = f"k{i % 30:02d}".encode(), f"v{i}".encode() * 5
        engine.put(0, key, value)
        model[key] = value
    engine.write([(1, b"k00", 0, b"")])
    model.pop(b"k00")
    engine.close()
    return model


def contents(directory: Path) -> dict[bytes, bytes]:
    engine = HashLogEngine(str(directory))
    try:
        found = {k: v for k, _, _, v in engine.scan(b"", None)}
        for key, value in found.items():
            assert engine.get(key) == (0, 0, value)
        return found
    finally:
        engine.close()


def test_clean_reopen_reads_only_the_index_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fill(tmp_path / "db", 300, hashlog_segment_bytes=2048)
    assert len(list((tmp_path / "db").glob("*.hli"))) == len(list((tmp_path / "db").glob("*.hld")))

    def no_data_reads(*args: Any) -> Any:
        raise AssertionError("the data was scanned although every index file is good")

    monkeypatch.setattr(segments_module.records, "parse_records", no_data_reads)
    assert contents(tmp_path / "db") == model


def test_missing_index_is_rebuilt(tmp_path: Path) -> None:
    model = fill(tmp_path / "db")
    (tmp_path / "db" / "000001.hli").unlink()
    assert contents(tmp_path / "db") == model
    assert (tmp_path / "db" / "000001.hli").exists()  # written again at close


def test_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    model = fill(tmp_path / "db")
    path = tmp_path / "db" / "000001.hli"
    data = bytearray(path.read_bytes())
    data[60] ^= 0x40
    path.write_bytes(bytes(data))
    assert contents(tmp_path / "db") == model


def test_stale_index_is_carried_on_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "db"
    model = fill(directory)
    stale = (directory / "000001.hli").read_bytes()
    engine = HashLogEngine(str(directory), Options(fsync="never"))
    engine.put(0, b"later", b"written after the index file")
    engine.write([(1, b"k01", 0, b"")])
    engine.close()
    model[b"later"] = b"written after the index file"
    model.pop(b"k01")
    (directory / "000001.hli").write_bytes(stale)  # as if the process died before close
    starts: list[int] = []
    real = segments_module.records.parse_records

    def spy(data: bytes, path: str, start: int, may_be_torn: bool) -> Any:
        starts.append(start)
        return real(data, path, start, may_be_torn)

    monkeypatch.setattr(segments_module.records, "parse_records", spy)
    assert contents(directory) == model
    assert starts == [decode_index(stale, "i").covers]  # only the rest was read


def test_index_of_another_data_file_is_rebuilt(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    model_one = fill(one, 40)
    fill(two, 60)
    # An index file from another store: its file_id does not match.
    (one / "000001.hli").write_bytes((two / "000001.hli").read_bytes())
    assert contents(one) == model_one


def test_data_file_shorter_than_its_index_says_is_corruption(tmp_path: Path) -> None:
    """An index file is written only once the bytes it covers are durable: a data file
    cut back below it lost acknowledged writes, which must not pass for a torn tail."""
    one = tmp_path / "one"
    model_one = fill(one, 40)
    data = (one / "000001.hld").read_bytes()
    engine = HashLogEngine(str(one), Options(fsync="never"))
    engine.put(0, b"extra", b"x" * 100)
    engine.close()
    (one / "000001.hld").write_bytes(data)  # the put's record cut off
    with pytest.raises(CorruptionError, match="bytes that were durable are lost") as caught:
        HashLogEngine(str(one))
    assert caught.value.path == str(one / "000001.hld")
    report = check_hashlog(str(one))
    assert not report.healthy and "000001.hld" in report.damage[0]
    repair_hashlog(str(one))
    assert contents(one) == model_one


def test_two_file_form_uses_exactly_its_files(tmp_path: Path) -> None:
    data, index = tmp_path / "data.txt", tmp_path / "index.txt"
    engine = HashLogEngine.two_files(str(data), str(index), Options(fsync="never"))
    for i in range(100):
        engine.put(0, f"k{i % 10}".encode(), f"v{i}".encode())
    engine.save_catalog({"version": 1})
    engine.compact()
    engine.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "data.txt",
        "data.txt.catalog",
        "data.txt.lock",
        "index.txt",
    ]
    engine = HashLogEngine.two_files(str(data), str(index))
    assert [v for _, _, _, v in engine.scan(b"", None)] == [
        f"v{90 + i}".encode() for i in range(10)
    ]
    assert engine.load_catalog() == {"version": 1}
    engine.close()
    assert data.stat().st_size < 10 * 100  # the compaction dropped the dead records
