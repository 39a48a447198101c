"""Bloom filters: no false negatives, about 1% false positives at 10 bits per key."""

from __future__ import annotations

from shaledb.engine import bloom
from shaledb.engine.bloom import BloomFilter


def _keys(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(n)]


def test_no_false_negatives() -> None:
    keys = _keys("user:", 5000)
    f = BloomFilter(bloom.build(keys, 10))
    assert all(f.may_contain(k) for k in keys)


def test_false_positive_rate_at_10_bits_per_key() -> None:
    f = BloomFilter(bloom.build(_keys("present-", 10_000), 10))
    absent = _keys("absent-", 10_000)
    rate = sum(f.may_contain(k) for k in absent) / len(absent)
    assert rate < 0.03, rate


def test_false_positive_rate_for_binary_keys() -> None:
    import random

    rng = random.Random(7)
    present = {rng.randbytes(8) for _ in range(10_000)}
    f = BloomFilter(bloom.build(sorted(present), 10))
    absent = [k for k in (rng.randbytes(8) for _ in range(10_000)) if k not in present]
    rate = sum(f.may_contain(k) for k in absent) / len(absent)
    assert rate < 0.03, rate


def test_more_bits_fewer_false_positives() -> None:
    keys = _keys("k", 2000)
    absent = _keys("x", 5000)
    rates = []
    for bits in (4, 10, 20):
        f = BloomFilter(bloom.build(keys, bits))
        rates.append(sum(f.may_contain(k) for k in absent))
    assert rates[0] > rates[1] >= rates[2]


def test_zero_bits_means_no_filter() -> None:
    assert bloom.build(_keys("k", 10), 0) == b""
    assert BloomFilter(b"").may_contain(b"anything")


def test_tiny_and_empty_key_sets() -> None:
    data = bloom.build([b"only"], 10)
    assert len(data) == 64 // 8 + 1  # one 64-bit word, then the filter kind
    assert BloomFilter(data).may_contain(b"only")
    empty = BloomFilter(bloom.build([], 10))
    assert not any(empty.may_contain(k) for k in _keys("k", 100))


def test_each_key_sets_at_most_five_bits_of_one_word() -> None:
    import zlib

    for key in _keys("k", 200):
        assert 1 <= bin(bloom.mask(zlib.crc32(key))).count("1") <= bloom.PROBES
    data = bloom.build([b"k"], 10)
    assert data[-1] == bloom.BLOCKED_64
    assert 1 <= bin(int.from_bytes(data[:8], "little")).count("1") <= 5


def test_unknown_filter_kind_is_rejected() -> None:
    import pytest

    with pytest.raises(ValueError, match="unknown filter"):
        BloomFilter(bytes(8) + b"\x09")
