"""One contract, every engine: the MemoryEngine reference model and the LSM engine.

The first half drives the Engine interface directly (bytes, flags, expiry in ms);
the second drives the same behaviour through ``DB.over(engine)``. The ``engine``
fixture (tests/conftest.py) gives each engine a fake clock; the LSM engine runs with
a tiny memtable so flushes and compactions happen under the tests' feet.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import shaledb
from shaledb.engine.entry import HAS_TTL, KEY_STR, TOMBSTONE, VALUE_STR
from shaledb.errors import ClosedError, NotFoundError


def put(key: bytes, value: bytes, flags: int = 0) -> tuple[int, bytes, int, bytes]:
    return (flags, key, 0, value)


def delete(key: bytes) -> tuple[int, bytes, int, bytes]:
    return (TOMBSTONE, key, 0, b"")


def items(engine: Any, lo: bytes = b"", hi: bytes | None = None, reverse: bool = False) -> list:
    return [(k, v) for k, _, _, v in engine.scan(lo, hi, reverse)]


# -- the Engine interface ---------------------------------------------------------------


def test_write_then_get(engine: Any) -> None:
    assert engine.write([put(b"a", b"1"), put(b"b", b"2", KEY_STR | VALUE_STR)]) is True
    assert engine.get(b"a") == (0, 0, b"1")
    assert engine.get(b"b") == (KEY_STR | VALUE_STR, 0, b"2")
    assert engine.get(b"c") is None


def test_delete_says_whether_a_live_key_was_there(engine: Any, clock: Any) -> None:
    engine.write([put(b"a", b"1"), (HAS_TTL, b"t", engine.now_ms() + 1000, b"x")])
    engine.flush()  # "a" and "t" now in a table, where there is one
    engine.write([put(b"m", b"2")])
    assert engine.delete(TOMBSTONE, b"a") is True
    assert engine.delete(TOMBSTONE, b"a") is False
    assert engine.delete(TOMBSTONE, b"m") is True and engine.get(b"m") is None
    assert engine.delete(TOMBSTONE, b"never") is False
    clock.advance(2)
    assert engine.delete(TOMBSTONE, b"t") is False  # expired: not there
    assert engine.get(b"a") is None and items(engine) == []


def test_racing_deletes_of_one_key_succeed_once(engine: Any) -> None:
    # Four threads delete the same key at once, after each put: exactly one may say
    # the key was there, whether the put is in a memtable or (after a flush) a table.
    threads = 4
    barrier = threading.Barrier(threads + 1)
    said_yes: list[int] = []

    def deleter() -> None:
        for _ in range(60):
            barrier.wait()
            if engine.delete(TOMBSTONE, b"k"):
                said_yes.append(1)
            barrier.wait()

    workers = [threading.Thread(target=deleter) for _ in range(threads)]
    for w in workers:
        w.start()
    for round_ in range(60):
        engine.write([put(b"k", b"%d" % round_)])
        if round_ % 10 == 0:
            engine.flush()
        barrier.wait()
        barrier.wait()
        assert len(said_yes) == round_ + 1, round_
    for w in workers:
        w.join()


def test_overwrite_and_delete(engine: Any) -> None:
    engine.write([put(b"k", b"old")])
    engine.write([put(b"k", b"new")])
    assert engine.get(b"k") == (0, 0, b"new")
    engine.write([delete(b"k")])
    assert engine.get(b"k") is None
    assert items(engine) == []
    engine.write([delete(b"never-existed")])
    assert engine.get(b"never-existed") is None


def test_later_operations_in_one_batch_win(engine: Any) -> None:
    engine.write([put(b"k", b"1"), put(b"k", b"2"), delete(b"j"), put(b"j", b"3")])
    engine.write([put(b"x", b"1"), delete(b"x")])
    assert engine.get(b"k") == (0, 0, b"2")
    assert engine.get(b"j") == (0, 0, b"3")
    assert engine.get(b"x") is None


def test_condition_gates_the_write(engine: Any) -> None:
    engine.write([put(b"k", b"1")])
    seen: list[Any] = []

    def condition() -> bool:
        seen.append(engine.get(b"k"))  # runs under the write lock: reads must not block
        return False

    assert engine.write([put(b"k", b"2"), put(b"other", b"x")], condition=condition) is False
    assert seen == [(0, 0, b"1")]
    assert engine.get(b"k") == (0, 0, b"1") and engine.get(b"other") is None
    assert engine.write([put(b"k", b"3")], condition=lambda: True) is True
    assert engine.get(b"k") == (0, 0, b"3")


def test_empty_write_is_allowed(engine: Any) -> None:
    assert engine.write([]) is True
    assert items(engine) == []


def test_scan_is_half_open_sorted_and_reversible(engine: Any) -> None:
    keys = [b"a", b"b", b"ba", b"c", b"\x00", b"\xff", b"\xff\xff", b"\xc3\xa9"]
    engine.write([put(k, k * 2) for k in keys])
    assert [k for k, _ in items(engine)] == sorted(keys)
    assert [k for k, _ in items(engine, b"b", b"c")] == [b"b", b"ba"]
    assert [k for k, _ in items(engine, b"b", b"c", reverse=True)] == [b"ba", b"b"]
    assert [k for k, _ in items(engine, b"c")] == [b"c", b"\xc3\xa9", b"\xff", b"\xff\xff"]
    assert [k for k, _ in items(engine, b"", None, True)] == sorted(keys, reverse=True)
    assert items(engine, b"d", b"d") == [] and items(engine, b"q", b"r") == []


def test_scan_skips_tombstones_and_expired(engine: Any, clock: Any) -> None:
    now = engine.now_ms()
    assert now == int(clock() * 1000)
    engine.write([put(b"a", b"1"), put(b"b", b"2"), (HAS_TTL, b"c", now + 5000, b"3")])
    engine.write([delete(b"b")])
    assert items(engine) == [(b"a", b"1"), (b"c", b"3")]
    clock.advance(5)
    assert items(engine) == [(b"a", b"1")]
    assert engine.get(b"c") is None


def test_expiry_is_exact_to_the_millisecond(engine: Any, clock: Any) -> None:
    now = engine.now_ms()
    engine.write([(HAS_TTL, b"t", now + 1000, b"v")])
    clock.advance(0.5)
    assert engine.get(b"t") == (HAS_TTL, now + 1000, b"v")
    clock.advance(0.25)
    assert engine.get(b"t") is not None
    clock.advance(0.25)
    assert engine.get(b"t") is None


def test_scan_is_a_snapshot_taken_when_called(engine: Any) -> None:
    engine.write([put(f"k{i:03d}".encode(), b"old") for i in range(40)])
    forward = engine.scan(b"", None)
    backward = engine.scan(b"", None, True)
    engine.write([put(f"k{i:03d}".encode(), b"new") for i in range(0, 40, 2)])
    engine.write([delete(f"k{i:03d}".encode()) for i in range(1, 40, 2)])
    engine.write([put(b"k999", b"added")])
    engine.flush()
    engine.compact()
    expected = [(f"k{i:03d}".encode(), b"old") for i in range(40)]
    assert [(k, v) for k, _, _, v in forward] == expected
    assert [(k, v) for k, _, _, v in backward] == expected[::-1]
    assert len(items(engine)) == 21


def test_flush_and_compact_keep_exactly_the_live_data(engine: Any, clock: Any) -> None:
    model: dict[bytes, bytes] = {}
    now = engine.now_ms()
    for round_ in range(5):
        for i in range(30):
            key = f"key{(i * 7 + round_) % 50:02d}".encode()
            if (i + round_) % 4 == 0:
                engine.write([delete(key)])
                model.pop(key, None)
            else:
                value = f"{round_}-{i}".encode()
                engine.write([put(key, value)])
                model[key] = value
        engine.flush()
        if round_ % 2:
            engine.compact()
    engine.write([(HAS_TTL, b"key00", now + 1000, b"short")])
    engine.flush()
    clock.advance(2)
    model.pop(b"key00", None)
    engine.compact()
    assert items(engine) == sorted(model.items())
    for key in [f"key{i:02d}".encode() for i in range(50)]:
        found = engine.get(key)
        assert (found[2] if found else None) == model.get(key)


def test_compact_a_range_only(engine: Any) -> None:
    engine.write([put(bytes([c]), b"v") for c in b"abcdef"])
    engine.write([delete(b"b"), delete(b"e")])
    engine.flush()
    engine.compact(b"a", b"c")
    engine.compact(b"x", None)
    assert [k for k, _ in items(engine)] == [b"a", b"c", b"d", b"f"]


def test_drop_filter_removes_keys_by_compaction(engine: Any) -> None:
    engine.write([put(b"\x01" + bytes([c]), b"keep") for c in b"abc"])
    engine.write([put(b"\x02" + bytes([c]), b"drop") for c in b"abc"])
    engine.flush()
    engine.set_drop_filter(lambda key: key[:1] == b"\x02")
    engine.flush()
    engine.compact()
    assert [k for k, _ in items(engine)] == [b"\x01a", b"\x01b", b"\x01c"]
    assert engine.get(b"\x02a") is None


def test_catalog_round_trip(engine: Any) -> None:
    assert engine.load_catalog() is None
    catalog = {"version": 1, "namespaces": {"default": {"default": 0}}, "dropped": [3]}
    engine.save_catalog(catalog)
    loaded = engine.load_catalog()
    assert loaded == catalog
    catalog["version"] = 2  # the engine kept its own copy
    assert engine.load_catalog()["version"] == 1


def test_stats_are_json(engine: Any) -> None:
    engine.write([put(b"a", b"1")])
    stats = engine.stats()
    assert isinstance(stats["engine"], str)
    json.dumps(stats)


def test_closed_engine_refuses_work(engine: Any) -> None:
    engine.write([put(b"a", b"1")])
    engine.close()
    engine.close()
    with pytest.raises(ClosedError):
        engine.write([put(b"b", b"2")])
    with pytest.raises(ClosedError):
        engine.get(b"a")
    with pytest.raises(ClosedError):
        engine.scan(b"", None)
    with pytest.raises(ClosedError):
        engine.flush()
    with pytest.raises(ClosedError):
        engine.compact()
    with pytest.raises(ClosedError):
        engine.save_catalog({})


def test_concurrent_writers_and_readers(engine: Any) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(t: int) -> None:
        try:
            for i in range(60):
                engine.write(
                    [
                        put(f"w{t}-{i:03d}".encode(), f"{t}:{i}".encode()),
                        put(f"pair{t}".encode(), f"{i}".encode()),
                    ]
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                for k, _, _, v in engine.scan(b"w", b"x"):
                    t, i = k[1:].decode().split("-")
                    assert v == f"{t}:{int(i)}".encode()
                for t in range(4):
                    got = engine.get(f"w{t}-000".encode())
                    assert got is None or got[2] == f"{t}:0".encode()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for th in readers + threads:
        th.start()
    for th in threads:
        th.join()
    stop.set()
    for th in readers:
        th.join()
    assert errors == []
    assert len(items(engine, b"w", b"x")) == 240
    assert [engine.get(f"pair{t}".encode())[2] for t in range(4)] == [b"59"] * 4


# -- the same through DB.over ---------------------------------------------------------


@pytest.fixture
def over(engine: Any) -> shaledb.DB:
    return shaledb.DB.over(engine)


def test_over_round_trips_types(over: shaledb.DB) -> None:
    over.put("s", "text")
    over.put(b"b", b"\x00bytes")
    over.put("mixed", b"raw")
    assert (
        over.get("s") == "text" and over.get(b"b") == b"\x00bytes" and over.get("mixed") == b"raw"
    )
    assert over.get(b"s") == "text"  # the same key, either type
    assert list(over.scan()) == [(b"b", b"\x00bytes"), ("mixed", b"raw"), ("s", "text")]


def test_over_tables_are_separate_key_spaces(over: shaledb.DB) -> None:
    t = over.create_namespace("ns").create_table("t")
    t.put("k", "in t")
    over.put("k", "in default")
    assert t.get("k") == "in t" and over.get("k") == "in default"
    assert list(t.scan()) == [("k", "in t")] and list(over.scan()) == [("k", "in default")]
    over.namespace("ns").drop_table("t")
    with pytest.raises(NotFoundError):
        over.namespace("ns").table("t")
    again = over.namespace("ns").create_table("t")
    assert list(again.scan()) == []


def test_over_ttl_update_delete(over: shaledb.DB, clock: Any) -> None:
    over.put("t", "v", ttl=10)
    assert 9.9 < over.ttl("t") <= 10
    clock.advance(10)
    assert over.get("t") is None
    with pytest.raises(KeyError):
        over.update("t", "x")
    over.put("k", "v")
    over.update("k", "w")
    assert over.get("k") == "w"
    assert over.delete("k") is True and over.delete("k") is False


def test_over_batch_and_flush_compact(over: shaledb.DB) -> None:
    over.batch_put([f"k{i}" for i in range(30)], [str(i) for i in range(30)])
    with over.write_batch() as b:
        b.delete("k0").put("k1", "one")
    over.flush()
    over.compact()
    assert over.count() == 29 and over.get("k1") == "one" and over.get("k0") is None


def test_over_close(over: shaledb.DB) -> None:
    over.put("a", "1")
    over.close()
    with pytest.raises(ClosedError):
        over.get("a")
    with pytest.raises(ClosedError):
        over.put("a", "2")


def test_memory_and_lsm_agree_on_a_workload(tmp_path: Path, new_clock: Any) -> None:
    """The same random workload through both engines gives the same answers."""
    import random

    from shaledb.engine.lsm import LSMEngine
    from shaledb.engine.memory import MemoryEngine
    from shaledb.options import Options

    clock = new_clock()
    memory = MemoryEngine(Options(clock=clock))
    lsm = LSMEngine(
        str(tmp_path / "db"),
        Options(
            clock=clock,
            memtable_entries=10,
            block_size=128,
            target_file_bytes=1024,
            l0_compaction_trigger=2,
            max_bytes_for_level_base=2048,
            level_size_ratio=2,
        ),
    )
    rng = random.Random(5)
    try:
        for step in range(1500):
            key = f"k{rng.randrange(120):03d}".encode()
            roll = rng.random()
            if roll < 0.5:
                ops = [put(key, rng.randbytes(rng.randrange(30)))]
            elif roll < 0.65:
                ops = [delete(key)]
            elif roll < 0.75:
                ops = [(HAS_TTL, key, clock.now * 1000 + rng.randrange(1, 4) * 1000, b"ttl")]
            elif roll < 0.85:
                ops = [put(f"k{rng.randrange(120):03d}".encode(), b"batch") for _ in range(5)]
                ops.append(delete(key))
            else:
                ops = []
            if ops:
                for eng in (memory, lsm):
                    eng.write([(f, k, int(e), v) for f, k, e, v in ops])
            if step % 100 == 0:
                clock.advance(1)
            if step % 300 == 299:
                lsm.compact()
            lo = f"k{rng.randrange(120):03d}".encode()
            hi = f"k{rng.randrange(120):03d}".encode()
            reverse = rng.random() < 0.5
            assert items(lsm, lo, hi, reverse) == items(memory, lo, hi, reverse), step
            assert lsm.get(key) == memory.get(key), step
        assert items(lsm) == items(memory)
    finally:
        memory.close()
        lsm.close()
