"""The memtable: newest version per key, lazy ordering, snapshots."""

from __future__ import annotations

import random

import pytest

from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.memtable import ENTRY_OVERHEAD, MemTable


def test_put_get_and_overwrite_keep_one_entry() -> None:
    mem = MemTable(5)
    assert mem.wal_number == 5 and len(mem) == 0
    mem.put(b"a", 0, 0, b"1")
    mem.put(b"a", HAS_TTL, 99, b"22")
    assert len(mem) == 1
    assert mem.entries[b"a"] == (HAS_TTL, 99, b"22")


def test_tombstones_are_entries() -> None:
    mem = MemTable(1)
    mem.put(b"a", 0, 0, b"1")
    mem.put(b"a", TOMBSTONE, 0, b"")
    assert list(mem) == [(b"a", TOMBSTONE, 0, b"")]


def test_approximate_bytes_tracks_keys_and_values() -> None:
    mem = MemTable(1)
    mem.put(b"key", 0, 0, b"12345")
    assert mem.approximate_bytes == 3 + 5 + ENTRY_OVERHEAD
    mem.put(b"key", 0, 0, b"1")
    assert mem.approximate_bytes == 3 + 1 + ENTRY_OVERHEAD


@pytest.mark.parametrize("n", [1, 10, 64, 65, 500])
def test_iteration_is_sorted_whatever_the_insert_order(n: int) -> None:
    rng = random.Random(n)
    mem = MemTable(1)
    keys = [rng.randbytes(rng.randint(1, 6)) for _ in range(n)]
    for i, k in enumerate(keys):
        mem.put(k, 0, 0, str(i).encode())
    expected = sorted(set(keys))
    assert [e[0] for e in mem] == expected
    # More keys after a sort: the pending ones merge in.
    more = [rng.randbytes(3) for _ in range(n)]
    for k in more:
        mem.put(k, 0, 0, b"m")
    assert mem.sorted_keys() == sorted(set(keys) | set(more))


def test_range_items_bounds_and_reverse() -> None:
    mem = MemTable(1)
    for k in [b"a", b"b", b"c", b"d", b"e"]:
        mem.put(k, 0, 0, k.upper())
    assert [e[0] for e in mem.range_items(b"b", b"d")[0]] == [b"b", b"c"]
    assert [e[0] for e in mem.range_items(b"bb", None)[0]] == [b"c", b"d", b"e"]
    assert [e[0] for e in mem.range_items(b"", b"c", reverse=True)[0]] == [b"b", b"a"]
    assert mem.range_items(b"x", None) == ([], None)
    assert list(mem.iter_range(b"b", b"e", reverse=True)) == [
        (b"d", 0, 0, b"D"),
        (b"c", 0, 0, b"C"),
        (b"b", 0, 0, b"B"),
    ]


def test_range_items_is_a_snapshot() -> None:
    mem = MemTable(1)
    mem.put(b"a", 0, 0, b"1")
    snapshot, _ = mem.range_items(b"", None)
    mem.put(b"a", 0, 0, b"2")
    mem.put(b"b", 0, 0, b"3")
    assert snapshot == [(b"a", 0, 0, b"1")]


def test_range_items_with_a_limit_stops_after_enough_live_entries() -> None:
    mem = MemTable(1)
    for k in [b"a", b"b", b"c", b"d", b"e", b"f"]:
        mem.put(k, 0, 0, k.upper())
    mem.put(b"b", TOMBSTONE, 0, b"")
    mem.put(b"c", HAS_TTL, 500, b"C")  # expired at now_ms=1000
    copied, bound = mem.range_items(b"a", None, limit=2, now_ms=1000)
    # a (live), b (dead), c (expired), d (live): two live entries, then the bound.
    assert [e[0] for e in copied] == [b"a", b"b", b"c", b"d"]
    assert bound == b"d\x00"
    copied, bound = mem.range_items(b"", b"f", reverse=True, limit=2, now_ms=1000)
    assert [e[0] for e in copied] == [b"e", b"d"] and bound == b"d"
    # Fewer live entries than the limit: everything, no bound.
    copied, bound = mem.range_items(b"d", None, limit=10, now_ms=1000)
    assert [e[0] for e in copied] == [b"d", b"e", b"f"] and bound is None


def test_order_is_kept_across_bursts_of_puts_between_ordered_reads() -> None:
    # Small and large bursts of new keys between scans: both ways of merging the
    # pending keys into the sorted ones must give the same order.
    rng = random.Random(9)
    mem = MemTable(1)
    model: dict[bytes, bytes] = {}
    for burst in [1, 5, 300, 2, 1000, 3]:
        for _ in range(burst):
            key = b"%05d" % rng.randrange(20_000)
            mem.put(key, 0, 0, key)
            model[key] = key
        assert [e[0] for e in mem] == sorted(model)
        lo = b"%05d" % rng.randrange(20_000)
        want = [k for k in sorted(model) if k >= lo][:7]
        assert [e[0] for e in mem.first_entries(lo, None, False, 7)] == want
        down = [k for k in sorted(model, reverse=True) if k < lo][:7]
        assert [e[0] for e in mem.first_entries(b"", lo, True, 7)] == down
