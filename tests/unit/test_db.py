"""The embedded API (shaledb.open, DB, Table, Namespace, WriteBatch) over both engines.

The ``db`` fixture (tests/conftest.py) runs each test over the memory engine and over
the LSM engine with a tiny memtable and a fake clock.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import shaledb
from shaledb import (
    AlreadyExistsError,
    ClosedError,
    InvalidArgumentError,
    InvalidTypeError,
    LockedError,
    NotFoundError,
    ShaleDBError,
)
from shaledb.options import MAX_KEY_BYTES, MAX_VALUE_BYTES


def contents(table: Any) -> list:
    return list(table.scan())


# -- types and order ---------------------------------------------------------------------


def test_str_stays_str_and_bytes_stay_bytes(db: shaledb.DB) -> None:
    db.put("s", "str value")
    db.put(b"b", b"bytes value")
    db.put("s2b", b"\xff\x00")
    db.put(b"b2s", "ünïcode")
    assert db.get("s") == "str value" and type(db.get("s")) is str
    assert db.get(b"b") == b"bytes value" and type(db.get(b"b")) is bytes
    assert db.get("s2b") == b"\xff\x00" and db.get("b2s") == "ünïcode"
    pairs = dict(db.get_range("a", "z"))
    assert pairs == {b"b": b"bytes value", b"b2s": "ünïcode", "s": "str value", "s2b": b"\xff\x00"}
    for key, _ in db.scan():
        assert type(key) is (bytes if key in (b"b", b"b2s") else str)
    assert [type(k) for k, _ in db.scan(reverse=True)] == [str, str, bytes, bytes]


def test_the_latest_write_decides_the_types(db: shaledb.DB) -> None:
    db.put("k", "text")
    db.put(b"k", b"raw")
    assert db.get("k") == b"raw"
    assert list(db.scan()) == [(b"k", b"raw")]
    db.flush()
    assert db.get(b"k") == b"raw"


def test_keys_sort_by_utf8_bytes(db: shaledb.DB) -> None:
    for key in ["z", "é", "a", "Z", "\u4e2d", "\U0001f600"]:
        db.put(key, key)
    db.put(b"\xff", b"ff")
    db.put(b"\x00", b"00")
    keys = [k for k, _ in db.scan()]
    assert keys == [b"\x00", "Z", "a", "z", "é", "\u4e2d", "\U0001f600", b"\xff"]
    db.flush()
    assert [k for k, _ in db.scan(reverse=True)] == keys[::-1]


def test_get_default_and_missing(db: shaledb.DB) -> None:
    assert db.get("missing") is None
    assert db.get("missing", "fallback") == "fallback"
    with pytest.raises(KeyError):
        db["missing"]


def test_empty_value_is_a_value(db: shaledb.DB) -> None:
    db.put("k", "")
    db.put("b", b"")
    assert db.get("k") == "" and db.get("b") == b""
    assert "k" in db
    db.flush()
    assert db.get("k") == "" and db.exists("b")


def test_set_is_put_and_mapping_forms(db: shaledb.DB) -> None:
    db.set("a", "1")
    db["b"] = "2"
    assert db["a"] == "1" and db.get("b") == "2"
    del db["a"]
    assert "a" not in db
    with pytest.raises(NotFoundError):
        del db["a"]
    assert list(db) == ["b"] and list(db.keys()) == ["b"]


# -- get_range and scan --------------------------------------------------------------------


@pytest.fixture
def filled(db: shaledb.DB) -> shaledb.DB:
    for i in range(30):
        db.put(f"user:{i:04d}", f"name{i}")
    db.put("other", "x")
    db.put("user:", "bare prefix")
    return db


def test_get_range_is_inclusive_at_both_ends(filled: shaledb.DB) -> None:
    got = filled.get_range("user:1000", "user:1003")
    assert got == []
    got = filled.get_range("user:0010", "user:0013")
    assert got == [(f"user:{i:04d}", f"name{i}") for i in range(10, 14)]
    assert filled.get_range("user:0005", "user:0005") == [("user:0005", "name5")]
    assert filled.get_range("user:0013", "user:0010") == []
    assert filled.get_range("user:0028", "zzz") == [
        ("user:0028", "name28"),
        ("user:0029", "name29"),
    ]


def test_get_range_end_is_exact_not_a_prefix(filled: shaledb.DB) -> None:
    filled.put("user:0010\x00", "just after")
    filled.put("user:0010a", "after too")
    got = [k for k, _ in filled.get_range("user:0009", "user:0010")]
    assert got == ["user:0009", "user:0010"]


def test_scan_options(filled: shaledb.DB) -> None:
    filled.flush()
    assert [k for k, _ in filled.scan(prefix="user:002")] == [
        f"user:{i:04d}" for i in range(20, 30)
    ]
    assert [k for k, _ in filled.scan(prefix="user:002", reverse=True, limit=3)] == [
        "user:0029",
        "user:0028",
        "user:0027",
    ]
    assert [k for k, _ in filled.scan(start="user:0027")] == ["user:0027", "user:0028", "user:0029"]
    assert [k for k, _ in filled.scan(end="other")] == ["other"]
    assert [k for k, _ in filled.scan(start="user:0003", end="user:0005", reverse=True)] == [
        "user:0005",
        "user:0004",
        "user:0003",
    ]
    assert list(filled.scan(limit=0)) == []
    assert len(list(filled.scan(limit=5))) == 5
    assert len(list(filled.scan())) == 32
    assert [k for k, _ in filled.scan(prefix="user:", start="user:0028")] == [
        "user:0028",
        "user:0029",
    ]
    assert list(filled.scan(prefix="nothing")) == []
    assert filled.count() == 32


def test_scan_prefix_of_high_bytes(db: shaledb.DB) -> None:
    db.put(b"\xff", b"1")
    db.put(b"\xff\xff", b"2")
    db.put(b"\xff\xff\xff", b"3")
    db.put(b"\xfe\xff", b"0")
    assert [k for k, _ in db.scan(prefix=b"\xff\xff")] == [b"\xff\xff", b"\xff\xff\xff"]
    assert [k for k, _ in db.scan(prefix=b"\xff")] == [b"\xff", b"\xff\xff", b"\xff\xff\xff"]
    assert [k for k, _ in db.scan(start=b"\xff", end=b"\xff\xff")] == [b"\xff", b"\xff\xff"]


@pytest.mark.parametrize("limit", [-1, 1.5, "3", True])
def test_scan_bad_limit(filled: shaledb.DB, limit: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="limit"):
        list(filled.scan(limit=limit))


def test_scan_is_a_consistent_snapshot(filled: shaledb.DB) -> None:
    it = filled.scan(prefix="user:")
    filled.delete("user:0001")
    filled.put("user:0002", "changed")
    filled.put("user:9999", "new")
    filled.flush()
    filled.compact()
    got = dict(it)
    assert len(got) == 31 and got["user:0001"] == "name1" and got["user:0002"] == "name2"


# -- update, delete, ttl ------------------------------------------------------------------


def test_update_only_existing_keys(db: shaledb.DB) -> None:
    with pytest.raises(KeyError) as info:
        db.update("nope", "v")
    assert isinstance(info.value, NotFoundError) and "nope" in str(info.value)
    assert db.get("nope") is None
    db.put("k", "v1")
    db.update("k", "v2")
    assert db.get("k") == "v2"
    db.delete("k")
    with pytest.raises(NotFoundError):
        db.update("k", "v3")
    assert db.get("k") is None


def test_delete_reports_whether_the_key_existed(db: shaledb.DB) -> None:
    assert db.delete("k") is False
    db.put("k", "v")
    db.flush()
    assert db.delete("k") is True
    assert db.delete("k") is False
    assert db.get("k") is None
    db.flush()
    db.compact()
    assert db.get("k") is None and db.delete("k") is False


def test_ttl_expires_with_the_clock(db: shaledb.DB, clock: Any) -> None:
    db.put("session", "data", ttl=3600)
    db.put("forever", "data")
    assert db.get("session") == "data"
    assert db.ttl("forever") is None
    assert db.ttl("session") == pytest.approx(3600)
    clock.advance(3599)
    assert db.get("session") == "data"
    db.flush()
    assert db.ttl("session") == pytest.approx(1)
    clock.advance(1)
    assert db.get("session") is None
    assert "session" not in db and db.delete("session") is False
    assert [k for k, _ in db.scan()] == ["forever"]
    with pytest.raises(NotFoundError):
        db.ttl("session")
    db.compact()
    assert db.get("session") is None and db.get("forever") == "data"


def test_fractional_ttl_and_batch_ttl(db: shaledb.DB, clock: Any) -> None:
    db.put("half", "v", ttl=0.5)
    db.batch_put(["b1", "b2"], ["1", "2"], ttl=2)
    clock.advance(0.5)
    assert db.get("half") is None and db.get("b1") == "1"
    clock.advance(1.5)
    assert db.get("b1") is None and db.get("b2") is None


def test_rewriting_without_ttl_removes_the_ttl(db: shaledb.DB, clock: Any) -> None:
    db.put("k", "v", ttl=1)
    db.put("k", "v2")
    clock.advance(5)
    assert db.get("k") == "v2"


def test_expire_sets_and_clears_ttl(db: shaledb.DB, clock: Any) -> None:
    assert db.expire("missing", 5) is False
    db.put("k", "v")
    assert db.expire("k", 5) is True
    assert db.ttl("k") == pytest.approx(5)
    assert db.expire("k", None) is True
    assert db.ttl("k") is None
    db.expire("k", 1)
    clock.advance(1)
    assert db.get("k") is None


# -- bad input: a clear error and nothing written -----------------------------------------

BAD_KEYS = [
    ("", InvalidArgumentError, "empty"),
    (b"", InvalidArgumentError, "empty"),
    ("k" * (MAX_KEY_BYTES + 1), InvalidArgumentError, "at most 65536"),
    ("é" * (MAX_KEY_BYTES // 2 + 1), InvalidArgumentError, "at most 65536"),
    (1, InvalidTypeError, "str or bytes"),
    (None, InvalidTypeError, "str or bytes"),
    (1.5, InvalidTypeError, "str or bytes"),
    (["k"], InvalidTypeError, "str or bytes"),
    ("\ud800", InvalidArgumentError, "UTF-8"),
]
BAD_VALUES = [
    (1, InvalidTypeError, "str or bytes"),
    (None, InvalidTypeError, "str or bytes"),
    (2.5, InvalidTypeError, "str or bytes"),
    ([b"v"], InvalidTypeError, "str or bytes"),
    ({"a": 1}, InvalidTypeError, "str or bytes"),
]
BAD_TTLS = [
    (0, InvalidArgumentError),
    (-1, InvalidArgumentError),
    (-0.001, InvalidArgumentError),
    (math.nan, InvalidArgumentError),
    (math.inf, InvalidArgumentError),
    (-math.inf, InvalidArgumentError),
    ("10", InvalidTypeError),
    (True, InvalidTypeError),
    (False, InvalidTypeError),
    ([1], InvalidTypeError),
]


def _assert_error(exc: BaseException, kind: type, accepted: str) -> None:
    assert isinstance(exc, kind) and isinstance(exc, ShaleDBError)
    if issubclass(kind, InvalidTypeError):
        assert isinstance(exc, TypeError)
    assert isinstance(exc, ValueError)
    assert accepted in str(exc)


@pytest.mark.parametrize("key,kind,accepted", BAD_KEYS)
def test_bad_keys_are_refused_and_nothing_is_written(
    db: shaledb.DB, key: Any, kind: type, accepted: str
) -> None:
    db.put("existing", "v")
    for call in (
        lambda: db.put(key, "v"),
        lambda: db.set(key, "v"),
        lambda: db.update(key, "v"),
        lambda: db.get(key),
        lambda: db.delete(key),
        lambda: db.batch_put(["ok1", key], ["v1", "v2"]),
        lambda: db.write_batch().put("ok", "v").put(key, "v"),
        lambda: db.write_batch().delete(key),
        lambda: db.ttl(key),
        lambda: db.expire(key, 5),
    ):
        with pytest.raises(kind) as info:
            call()
        _assert_error(info.value, kind, accepted)
    assert contents(db) == [("existing", "v")]


@pytest.mark.parametrize("value,kind,accepted", BAD_VALUES)
def test_bad_values_are_refused_and_nothing_is_written(
    db: shaledb.DB, value: Any, kind: type, accepted: str
) -> None:
    db.put("existing", "v")
    for call in (
        lambda: db.put("k", value),
        lambda: db.update("existing", value),
        lambda: db.batch_put(["a", "b", "c"], ["1", "2", value]),
        lambda: db.write_batch().put("a", "1").put("b", value),
    ):
        with pytest.raises(kind) as info:
            call()
        _assert_error(info.value, kind, accepted)
    assert contents(db) == [("existing", "v")]


def test_oversized_value_is_refused(db: shaledb.DB) -> None:
    big = b"x" * (MAX_VALUE_BYTES + 1)
    with pytest.raises(InvalidArgumentError) as info:
        db.put("k", big)
    _assert_error(info.value, InvalidArgumentError, f"at most {MAX_VALUE_BYTES} bytes")
    with pytest.raises(InvalidArgumentError):
        db.batch_put(["a", "b"], [b"small", big])
    del big
    assert contents(db) == []


def test_largest_key_is_accepted(db: shaledb.DB) -> None:
    key = "k" * MAX_KEY_BYTES
    db.put(key, "v")
    db.flush()
    assert db.get(key) == "v"


@pytest.mark.parametrize("ttl,kind", BAD_TTLS)
def test_bad_ttls_are_refused_and_nothing_is_written(db: shaledb.DB, ttl: Any, kind: type) -> None:
    db.put("existing", "v")
    for call in (
        lambda: db.put("k", "v", ttl=ttl),
        lambda: db.update("existing", "changed", ttl=ttl),
        lambda: db.batch_put(["a", "b"], ["1", "2"], ttl=ttl),
        lambda: db.write_batch().put("a", "1").put("b", "2", ttl=ttl),
        lambda: db.expire("existing", ttl),
    ):
        with pytest.raises(kind) as info:
            call()
        _assert_error(info.value, kind, "positive number of seconds")
    assert contents(db) == [("existing", "v")]
    assert db.ttl("existing") is None


@pytest.mark.parametrize(
    "keys,values", [(["a", "b"], ["1"]), (["a"], ["1", "2"]), ([], ["1"]), (["a"], [])]
)
def test_batch_lists_of_different_lengths(db: shaledb.DB, keys: list, values: list) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        db.batch_put(keys, values)
    assert f"{len(keys)} keys" in str(info.value) and f"{len(values)} values" in str(info.value)
    assert contents(db) == []


@pytest.mark.parametrize("keys,values", [("ab", ["1", "2"]), (["a", "b"], b"12"), (5, [1])])
def test_batch_put_needs_lists(db: shaledb.DB, keys: Any, values: Any) -> None:
    with pytest.raises((InvalidTypeError, TypeError)):
        db.batch_put(keys, values)
    assert contents(db) == []


def test_batch_put_empty_and_atomic(db: shaledb.DB) -> None:
    db.batch_put([], [])
    db.batch_put(("a", b"b", "c"), ["1", b"2", "3"])
    assert contents(db) == [("a", "1"), (b"b", b"2"), ("c", "3")]


def test_batch_put_of_bytes_overwrites_and_reads_back_in_a_table(db: shaledb.DB) -> None:
    table = db.create_namespace("n").create_table("t")
    db.put(b"k1", b"default")  # the same key in another table stays apart
    table.batch_put([b"k1", b"k2", b"k1"], [b"a", b"", b"c"])  # the last write of k1 wins
    assert table.get(b"k1") == b"c" and table.get(b"k2") == b""
    assert list(table.scan()) == [(b"k1", b"c"), (b"k2", b"")]
    assert db.get(b"k1") == b"default"
    db.batch_put([b"x" * MAX_KEY_BYTES], [b"v" * 10])
    assert db.get(b"x" * MAX_KEY_BYTES) == b"v" * 10


@pytest.mark.parametrize(
    "keys,values,error,words",
    [
        ([b"a", b""], [b"1", b"2"], InvalidArgumentError, "must not be empty"),
        ([b"a", b"k" * (MAX_KEY_BYTES + 1)], [b"1", b"2"], InvalidArgumentError, "bytes; at most"),
        ([b"a", b"b"], [b"1", 2], InvalidTypeError, "value must be str or bytes"),
        ([b"a", 2], [b"1", b"2"], InvalidTypeError, "key must be str or bytes"),
    ],
)
def test_a_bad_pair_in_a_batch_of_bytes_writes_nothing(
    db: shaledb.DB, keys: list, values: list, error: type, words: str
) -> None:
    db.put(b"a", b"before")
    with pytest.raises(error, match=words):
        db.batch_put(keys, values)
    assert contents(db) == [(b"a", b"before")]


def test_a_batch_of_bytearray_and_memoryview_pairs_stores_bytes(db: shaledb.DB) -> None:
    db.batch_put([bytearray(b"a"), memoryview(b"b")], [b"1", bytearray(b"2")])
    assert contents(db) == [(b"a", b"1"), (b"b", b"2")]


@pytest.mark.parametrize("bound", [1, 2.0, ["a"], object()])
def test_bad_range_bounds(db: shaledb.DB, bound: Any) -> None:
    with pytest.raises(InvalidTypeError, match="str or bytes"):
        db.get_range("a", bound)
    with pytest.raises(InvalidTypeError):
        db.get_range(bound, "z")


# -- write batches ------------------------------------------------------------------------


def test_write_batch_mixes_puts_and_deletes(db: shaledb.DB) -> None:
    db.put("old", "1")
    batch = db.write_batch()
    batch.put("a", "1").put(b"b", b"2").delete("old").put("c", "3", ttl=10)
    assert len(batch) == 4
    assert db.get("a") is None  # nothing until written
    db.write(batch)
    assert contents(db) == [("a", "1"), (b"b", b"2"), ("c", "3")]


def test_write_batch_context_manager_writes_unless_it_raised(db: shaledb.DB) -> None:
    with db.write_batch() as b:
        b.put("a", "1")
    assert db.get("a") == "1"
    with pytest.raises(RuntimeError), db.write_batch() as b:
        b.put("b", "2")
        raise RuntimeError("boom")
    assert db.get("b") is None
    b = db.write_batch().put("c", "3")
    b.clear()
    db.write(b)
    assert db.get("c") is None


def test_write_takes_only_its_own_batches(db: shaledb.DB) -> None:
    with pytest.raises(InvalidTypeError):
        db.write([("a", "1")])  # type: ignore[arg-type]
    other = shaledb.DB.over(__import__("shaledb.engine.memory", fromlist=["x"]).MemoryEngine())
    with pytest.raises(InvalidArgumentError):
        db.write(other.write_batch().put("a", "1"))
    other.close()
    assert contents(db) == []


def test_batch_spanning_tables_is_atomic(db: shaledb.DB) -> None:
    ns = db.create_namespace("app")
    users, orders = ns.create_table("users"), ns.create_table("orders")
    users.put("u1", "old")
    batch = db.write_batch()
    batch.put("u1", "alice", table=users).put("o1", "order", table=orders).put("d", "x")
    batch.delete("u0", table=users)
    with pytest.raises(InvalidTypeError):
        batch.put("o2", 42, table=orders)  # refused when added; the batch is still good
    db.write(batch)
    assert users.get("u1") == "alice" and orders.get("o1") == "order" and db.get("d") == "x"
    assert orders.get("o2") is None
    # A batch whose last item is bad fails as a whole before anything is written.
    with pytest.raises(InvalidArgumentError), db.write_batch() as b:
        b.put("u2", "bob", table=users).put("o3", "o", table=orders).put("", "bad")
    assert users.get("u2") is None and orders.get("o3") is None


# -- namespaces and tables ------------------------------------------------------------------


def test_default_namespace_and_table(db: shaledb.DB) -> None:
    assert db.list_namespaces() == ["default"]
    assert db.namespace("default").list_tables() == ["default"]
    db.put("k", "v")
    assert db.table("default").get("k") == "v"
    assert db.namespace("default").table("default").get("k") == "v"


def test_namespace_and_table_lifecycle(db: shaledb.DB) -> None:
    ns = db.create_namespace("iti")
    t = ns.create_table("collaborators")
    t.put("collaborator1", "sief")
    assert db.namespace("iti").table("collaborators").get("collaborator1") == "sief"
    assert db.list_namespaces() == ["default", "iti"]
    assert ns.list_tables() == ["collaborators"]
    with pytest.raises(AlreadyExistsError):
        db.create_namespace("iti")
    with pytest.raises(AlreadyExistsError):
        ns.create_table("collaborators")
    assert db.create_namespace("iti", exist_ok=True).name == "iti"
    assert ns.create_table("collaborators", exist_ok=True).get("collaborator1") == "sief"
    assert db.get("collaborator1") is None
    assert repr(t) == "<shaledb.Table iti:collaborators>"


def test_unknown_namespace_or_table_is_not_found(db: shaledb.DB) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        db.namespace("nope")
    db.create_namespace("ns")
    with pytest.raises(NotFoundError, match="ns:nope"):
        db.namespace("ns").table("nope")
    with pytest.raises(NotFoundError):
        db.table("nope")
    with pytest.raises(NotFoundError):
        db.namespace("ns").drop_table("nope")
    with pytest.raises(NotFoundError):
        db.drop_namespace("nope")
    assert isinstance(NotFoundError("x"), KeyError)


@pytest.mark.parametrize("name", ["", "a:b", "a b", "x" * 65, "ü"])
def test_invalid_names(db: shaledb.DB, name: str) -> None:
    with pytest.raises(InvalidArgumentError, match="A-Z a-z 0-9"):
        db.create_namespace(name)
    with pytest.raises(InvalidArgumentError):
        db.namespace("default").create_table(name)
    assert db.list_namespaces() == ["default"]


def test_default_table_and_namespace_cannot_be_dropped(db: shaledb.DB) -> None:
    with pytest.raises(InvalidArgumentError):
        db.namespace("default").drop_table("default")
    with pytest.raises(InvalidArgumentError):
        db.drop_namespace("default")


def test_dropped_table_data_is_invisible_and_name_reusable(db: shaledb.DB) -> None:
    ns = db.create_namespace("ns")
    t = ns.create_table("t")
    for i in range(20):
        t.put(f"k{i}", "v")
    db.put("keep", "me")
    ns.drop_table("t")
    assert ns.list_tables() == []
    with pytest.raises(NotFoundError):
        ns.table("t")
    fresh = ns.create_table("t")
    assert fresh.count() == 0 and list(fresh.scan()) == [] and fresh.get("k1") is None
    db.compact()
    assert fresh.count() == 0 and db.get("keep") == "me"


def test_drop_namespace_drops_its_tables(db: shaledb.DB) -> None:
    ns = db.create_namespace("gone")
    ns.create_table("a").put("k", "v")
    db.drop_namespace("gone")
    assert db.list_namespaces() == ["default"]
    again = db.create_namespace("gone").create_table("a")
    assert again.get("k") is None


def test_tables_stats_and_count(db: shaledb.DB) -> None:
    t = db.create_namespace("ns").create_table("t")
    t.batch_put(["a", "b"], ["1", "2"])
    stats = t.stats()
    assert stats["table"] == "ns:t" and stats["table_keys"] == 2
    assert "engine" in db.stats()


# -- lifecycle ------------------------------------------------------------------------------


def test_operations_after_close_raise_closed_error(db: shaledb.DB) -> None:
    db.put("k", "v")
    t = db.create_namespace("ns").create_table("t")
    db.close()
    db.close()
    for call in (
        lambda: db.put("k", "v"),
        lambda: db.get("k"),
        lambda: db.delete("k"),
        lambda: db.update("k", "v"),
        lambda: db.batch_put(["a"], ["b"]),
        lambda: db.get_range("a", "z"),
        lambda: list(db.scan()),
        lambda: db.flush(),
        lambda: db.compact(),
        lambda: db.count(),
        lambda: t.put("a", "b"),
        lambda: t.get("a"),
        lambda: db.create_namespace("other"),
        lambda: db.write(db.write_batch().put("a", "b")),
    ):
        with pytest.raises(ClosedError):
            call()


def test_context_manager_closes(data_dir: Path) -> None:
    with shaledb.open(str(data_dir)) as db:
        db.put("k", "v")
    with pytest.raises(ClosedError):
        db.get("k")
    with shaledb.open(str(data_dir)) as db:
        assert db.get("k") == "v"


def test_seed_style_names(tmp_path: Path) -> None:
    path = str(tmp_path / "seed")
    store = shaledb.StorageEngine(data_dir=path, memtable_size=1000)
    try:
        store.put("a", "1")
        assert store.get("a") == "1"
        assert store.stats()["engine"] == "lsm"
    finally:
        store.close()
    assert shaledb.StorageEngine is shaledb.DB
    # KeyValueStore(directory) detects the LSM directory StorageEngine wrote.
    with shaledb.KeyValueStore(path) as again:
        assert isinstance(again, shaledb.DB)
        assert again.get("a") == "1"
        assert again.stats()["engine"] == "lsm"


def test_open_validates_options(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        shaledb.open(str(tmp_path / "a"), fsync="sometimes")
    with pytest.raises(InvalidArgumentError):
        shaledb.open(str(tmp_path / "b"), memtable_size=0)
    with pytest.raises(InvalidArgumentError, match="option"):
        shaledb.open(str(tmp_path / "c"), no_such_option=1)
    with pytest.raises(InvalidArgumentError):
        shaledb.DB(str(tmp_path / "d"), data_dir=str(tmp_path / "e"))


def test_second_opener_in_the_same_process_is_locked(data_dir: Path) -> None:
    with shaledb.open(str(data_dir)) as first:
        first.put("k", "v")
        with pytest.raises(LockedError) as info:
            shaledb.open(str(data_dir))
        assert "locked" in str(info.value)
        assert first.get("k") == "v"
    with shaledb.open(str(data_dir)) as again:  # released by close
        assert again.get("k") == "v"


def test_second_opener_in_another_process_is_locked(data_dir: Path, subprocess_env: dict) -> None:
    code = (
        "import sys, shaledb\n"
        "try:\n"
        "    shaledb.open(sys.argv[1])\n"
        "except shaledb.LockedError as exc:\n"
        "    print('LOCKED', exc)\n"
        "    sys.exit(3)\n"
        "print('OPENED')\n"
    )
    with shaledb.open(str(data_dir)):
        proc = subprocess.run(
            [sys.executable, "-c", code, str(data_dir)],
            capture_output=True,
            text=True,
            env=subprocess_env,
            timeout=60,
        )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "locked" in proc.stdout and f"pid {os.getpid()}" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-c", code, str(data_dir)],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=60,
    )
    assert proc.stdout.strip() == "OPENED", proc.stderr


# -- threads --------------------------------------------------------------------------------


def test_group_commit_threads_write_disjoint_keys(data_dir: Path) -> None:
    errors: list[BaseException] = []
    with shaledb.open(str(data_dir), fsync="always", memtable_size=50) as db:

        def writer(t: int) -> None:
            try:
                for i in range(100):
                    db.put(f"t{t}:{i:03d}", f"{t}-{i}")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        assert db.count() == 800
    with shaledb.open(str(data_dir)) as db:
        for t in range(8):
            assert dict(db.scan(prefix=f"t{t}:")) == {
                f"t{t}:{i:03d}": f"{t}-{i}" for i in range(100)
            }


def test_readers_never_see_wrong_data_during_writes_and_compactions(db: shaledb.DB) -> None:
    """Each key's value encodes the key; a batch keeps a pair of keys equal."""
    errors: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            for i in range(400):
                key = f"k{i % 60:02d}"
                db.put(key, f"{key}={i}")
                db.batch_put(["pair:a", "pair:b"], [str(i), str(i)])
                if i % 100 == 99:
                    db.compact()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    def reader() -> None:
        try:
            while not stop.is_set():
                snapshot = dict(db.scan())
                for key, value in snapshot.items():
                    if key.startswith("k") and not value.startswith(key + "="):
                        errors.append(f"scan: {key} -> {value}")
                if ("pair:a" in snapshot) != ("pair:b" in snapshot) or (
                    snapshot.get("pair:a") != snapshot.get("pair:b")
                ):
                    errors.append(
                        "torn batch in a snapshot: "
                        f"{snapshot.get('pair:a')} {snapshot.get('pair:b')}"
                    )
                value = db.get("k07")
                if value is not None and not value.startswith("k07="):
                    errors.append(f"get: {value}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    readers = [threading.Thread(target=reader) for _ in range(2)]
    w = threading.Thread(target=writer)
    for th in readers + [w]:
        th.start()
    w.join()
    stop.set()
    for th in readers:
        th.join()
    assert errors == []
    assert db.get("k59") == "k59=359" and db.get("pair:a") == "399"


def test_a_handle_to_a_dropped_table_is_refused(db: shaledb.DB) -> None:
    ns = db.create_namespace("ns")
    t = ns.create_table("t")
    t.put("old", "1")
    ns.drop_table("t")
    with contextlib.suppress(NotFoundError):
        assert t.get("old") is None
    with pytest.raises(NotFoundError):
        t.put("new", "2")


def test_stats_and_catalog_reads_after_close_raise_closed_error(db: shaledb.DB) -> None:
    db.close()
    for call in (db.stats, db.list_namespaces, lambda: db.namespace("default").list_tables()):
        with pytest.raises(ClosedError):
            call()


def test_get_range_needs_both_ends(db: shaledb.DB) -> None:
    db.put("a", "1")
    for start, end in ((None, "z"), ("a", None)):
        with pytest.raises(TypeError, match="start and an end"):
            db.get_range(start, end)  # type: ignore[arg-type]


# -- every error at the API edge is a ShaleDB error ----------------------------------------


@pytest.mark.parametrize("ttl", [1e300, 2**62, 10**30, 10**400, float("inf")])
def test_a_ttl_whose_expiry_overflows_64_bits_is_an_invalid_argument(
    db: shaledb.DB, ttl: float
) -> None:
    calls = [
        lambda: db.put("k", "v", ttl=ttl),
        lambda: db.put(b"k", b"v", ttl=ttl),
        lambda: db.batch_put(["k"], ["v"], ttl=ttl),
        lambda: db.write_batch().put("k", "v", ttl=ttl),
        lambda: db.update("k", "v", ttl=ttl),
        lambda: db.expire("k", ttl),
    ]
    db.put("k", "old")
    for call in calls:
        with pytest.raises(InvalidArgumentError, match="at most 9223372036854775"):
            call()
    assert db.get("k") == "old" and db.ttl("k") is None


def test_the_longest_ttl_is_accepted() -> None:
    from shaledb.arguments import MAX_TTL_SECONDS

    db = shaledb.DB.over(__import__("shaledb.engine.memory", fromlist=["x"]).MemoryEngine())
    db.put("k", "v", ttl=MAX_TTL_SECONDS)
    assert db.ttl("k") == pytest.approx(MAX_TTL_SECONDS, rel=1e-6)
    db.close()


@pytest.mark.parametrize("ttl", [float("nan"), -1, 0, -0.0, float("-inf")])
def test_ttls_that_are_not_positive_numbers(db: shaledb.DB, ttl: float) -> None:
    with pytest.raises(InvalidArgumentError, match="positive number of seconds"):
        db.put("k", "v", ttl=ttl)
    with pytest.raises(InvalidArgumentError, match="positive number of seconds"):
        db.batch_put(["k"], ["v"], ttl=ttl)


@pytest.mark.parametrize("limit", [10**30, 2**63, 2**64 + 1])
def test_a_scan_limit_beyond_sys_maxsize_means_all(db: shaledb.DB, limit: int) -> None:
    db.batch_put(["a", "b"], ["1", "2"])
    assert list(db.scan(limit=limit)) == [("a", "1"), ("b", "2")]
    assert list(db.scan(limit=limit, reverse=True)) == [("b", "2"), ("a", "1")]


@pytest.mark.parametrize(
    ("keys", "values"),
    [(None, ["v"]), (["k"], None), (5, [1]), (["k"], 7), (b"k", [b"v"]), (["k"], "v")],
)
def test_batch_put_arguments_that_are_not_lists(db: shaledb.DB, keys: Any, values: Any) -> None:
    with pytest.raises(InvalidTypeError, match="must be a list of str or bytes") as info:
        db.batch_put(keys, values)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ShaleDBError)
    assert contents(db) == []


@pytest.mark.parametrize("bad", [[1], [None], [True], [b"ok", 2.5]])
def test_batch_keys_and_values_of_wrong_types(db: shaledb.DB, bad: list[Any]) -> None:
    good = ["x"] * len(bad)
    with pytest.raises(InvalidTypeError, match="key must be str or bytes"):
        db.batch_put(bad, good)
    with pytest.raises(InvalidTypeError, match="value must be str or bytes"):
        db.batch_put(good, bad)
    assert contents(db) == []


def test_any_iterable_of_keys_is_accepted(db: shaledb.DB) -> None:
    db.batch_put((k for k in ["a", "b"]), ("1", "2"))
    assert contents(db) == [("a", "1"), ("b", "2")]


@pytest.mark.parametrize("key", [True, False, 10**100, 1.5, None])
def test_keys_that_are_not_str_or_bytes(db: shaledb.DB, key: Any) -> None:
    for call in (db.put, db.set):
        with pytest.raises(InvalidTypeError, match="key must be str or bytes"):
            call(key, "v")
    for read in (db.get, db.exists, db.delete, db.ttl):
        with pytest.raises(InvalidTypeError, match="key must be str or bytes"):
            read(key)


def test_a_range_whose_start_is_after_its_end_is_empty(db: shaledb.DB) -> None:
    db.batch_put(["a", "m", "z"], ["1", "2", "3"])
    assert db.get_range("z", "a") == []
    assert list(db.scan(start="z", end="a", reverse=True)) == []
    assert db.get_range("m", "m") == [("m", "2")]


def test_write_batch_tables_are_checked(db: shaledb.DB) -> None:
    with pytest.raises(InvalidTypeError, match="table must be a shaledb.Table"):
        db.write_batch().put("k", "v", table="default")  # type: ignore[arg-type]
    other = shaledb.DB.over(__import__("shaledb.engine.memory", fromlist=["x"]).MemoryEngine())
    with pytest.raises(InvalidArgumentError, match="another database"):
        db.write_batch().put("k", "v", table=other.table("default"))
    other.close()
    # The database itself stands for its default table.
    db.write(db.write_batch().put("k", "v", table=db).delete("gone", table=db))
    assert db.get("k") == "v"


def test_dropping_a_namespace_or_table_named_by_a_non_str(db: shaledb.DB) -> None:
    with pytest.raises(InvalidTypeError, match="namespace name must be a str"):
        db.drop_namespace(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="table name must be a str"):
        db.namespace("default").drop_table(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="namespace name must be a str"):
        db.table("default", namespace=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", [123, None, 1.5, ["dir"]])
def test_open_needs_a_path(path: Any) -> None:
    with pytest.raises(InvalidTypeError, match="data directory must be a str or path-like") as info:
        shaledb.open(path)
    assert isinstance(info.value, TypeError)


def test_open_takes_a_bytes_or_path_like_directory(tmp_path: Path) -> None:
    with shaledb.open(os.fsencode(tmp_path / "b")) as db:  # type: ignore[arg-type]
        assert db.path == str(tmp_path / "b")
    with shaledb.open(tmp_path / "p") as db:
        assert db.path == str(tmp_path / "p")


@pytest.mark.parametrize(
    ("option", "value", "accepted"),
    [
        ("block_cache_bytes", "x", "an integer >= 0"),
        ("bloom_bits_per_key", 2.5, "an integer >= 0"),
        ("block_size", "4096", "a positive integer"),
        ("l0_stop_trigger", None, "a positive integer"),
        ("memtable_bytes", True, "a positive integer"),
        ("background_compaction", "no", "True or False"),
        ("background_process", 1, "True or False"),
        ("clock", 5, "a callable"),
    ],
)
def test_an_option_of_the_wrong_type_names_the_option_type_and_accepted_values(
    tmp_path: Path, option: str, value: Any, accepted: str
) -> None:
    with pytest.raises(InvalidTypeError) as info:
        shaledb.open(str(tmp_path / "db"), **{option: value})
    message = str(info.value)
    assert f"option {option} must be {accepted}" in message
    assert type(value).__name__ in message and "not supported" not in message
    assert not (tmp_path / "db").exists()


@pytest.mark.parametrize(
    ("option", "value"), [("block_cache_bytes", -1), ("block_size", 0), ("max_open_tables", -5)]
)
def test_an_option_out_of_range_names_it(tmp_path: Path, option: str, value: int) -> None:
    with pytest.raises(InvalidArgumentError, match=f"option {option} must be"):
        shaledb.open(str(tmp_path / "db"), **{option: value})


def test_an_unknown_option_is_named_with_the_accepted_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        shaledb.open(str(tmp_path / "db"), block_cache_size=1)
    message = str(info.value)
    assert message.startswith("unknown option 'block_cache_size'; accepted options: ")
    for name in ("block_cache_bytes", "fsync", "memtable_size", "data_dir", "compression"):
        assert name in message
    assert "Options.__init__" not in message


def test_memtable_size_and_memtable_entries_are_one_option(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="not both"):
        shaledb.open(str(tmp_path / "db"), memtable_size=8, memtable_entries=8)


# -- the API layer's shape -------------------------------------------------------------------


def test_a_db_is_not_a_table_but_has_the_default_tables_data_methods(db: shaledb.DB) -> None:
    assert not isinstance(db, shaledb.Table)
    table = db.default_table
    assert isinstance(table, shaledb.Table) and repr(table) == "<shaledb.Table default:default>"
    assert (db.namespace_name, db.name) == ("default", "default")
    db["k"] = "v"
    assert table.get("k") == "v" and db.table("default")["k"] == "v"
    for name in ("put", "set", "update", "delete", "expire", "batch_put", "get", "exists",
                 "ttl", "get_range", "scan", "keys", "count"):  # fmt: skip
        db_sig = inspect.signature(getattr(shaledb.DB, name))
        table_sig = inspect.signature(getattr(shaledb.Table, name))
        assert db_sig == table_sig, name
