"""The shared LRU cache of decoded blocks."""

from __future__ import annotations

from shaledb.engine import block as blocks
from shaledb.engine.block import Block
from shaledb.engine.block_cache import BlockCache


def _block(n: int = 4) -> Block:
    keys = [f"k{i}".encode() for i in range(n)]
    return Block(blocks.encode(keys, bytes(n), [b"v" * 10] * n))


def test_hit_and_miss_counters() -> None:
    cache = BlockCache(10_000)
    b = _block()
    assert cache.get((1, 0)) is None
    cache.put((1, 0), b)
    assert cache.get((1, 0)) is b
    assert (cache.hits, cache.misses) == (1, 1)
    assert cache.used == b.memory_bytes()


def test_least_recently_used_is_evicted_first() -> None:
    one = _block().memory_bytes()
    cache = BlockCache(one * 3)
    for i in range(3):
        cache.put((1, i), _block())
    assert cache.get((1, 0)) is not None  # now the most recent
    cache.put((1, 3), _block())
    assert cache.get((1, 1)) is None
    assert cache.get((1, 0)) is not None and cache.get((1, 3)) is not None
    assert cache.used <= cache.capacity


def test_replacing_a_key_does_not_double_count() -> None:
    cache = BlockCache(100_000)
    cache.put((1, 0), _block())
    cache.put((1, 0), _block())
    assert cache.used == _block().memory_bytes()


def test_zero_capacity_and_oversized_blocks_are_not_cached() -> None:
    cache = BlockCache(0)
    cache.put((1, 0), _block())
    assert cache.get((1, 0)) is None and cache.used == 0
    small = BlockCache(10)
    small.put((1, 0), _block(100))
    assert small.get((1, 0)) is None and small.used == 0


def test_forget_table_drops_only_that_table() -> None:
    cache = BlockCache(100_000)
    cache.put((1, 0), _block())
    cache.put((1, 100), _block())
    cache.put((2, 0), _block())
    cache.forget_table(1)
    assert cache.get((1, 0)) is None and cache.get((1, 100)) is None
    assert cache.get((2, 0)) is not None
    assert cache.used == _block().memory_bytes()


def test_a_block_hit_since_the_last_eviction_gets_a_second_chance() -> None:
    one = _block().memory_bytes()
    cache = BlockCache(one * 2)
    cache.put((1, 0), _block())
    cache.put((1, 1), _block())
    assert cache.get((1, 0)) is not None  # a hit flags it
    cache.put((1, 2), _block())  # (1, 0) is kept once more, its flag cleared; (1, 1) goes
    assert list(cache.blocks) == [(1, 2), (1, 0)]  # looking at the map flags nothing
    cache.put((1, 3), _block())  # (1, 2) was never hit
    assert list(cache.blocks) == [(1, 0), (1, 3)]
    cache.put((1, 4), _block())  # (1, 0) not hit since its last chance: it goes now
    assert list(cache.blocks) == [(1, 3), (1, 4)]
    assert cache.used <= cache.capacity
