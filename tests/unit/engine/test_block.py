"""SSTable blocks: encode, seal, unseal, decode, search."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shaledb.engine import block as blocks
from shaledb.engine.block import Block, value_with_expiry
from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.errors import CorruptionError

ENTRIES = [
    (b"apple", 0, 0, b"red"),
    (b"banana", HAS_TTL, 1_700_000_000_000, b"yellow"),
    (b"cherry", TOMBSTONE, 0, b""),
    (b"date", 0, 0, b""),
    (b"\xff\xfe", HAS_TTL, 5, b"\x00" * 300),
]


def _contents(entries: list = ENTRIES) -> bytes:
    keys = [e[0] for e in entries]
    flags = bytes(e[1] for e in entries)
    values = [value_with_expiry(e[1], e[2], e[3]) for e in entries]
    return blocks.encode(keys, flags, values)


def test_round_trip() -> None:
    block = Block(blocks.unseal(blocks.seal(_contents()), "f.sst", 0, "data block"))
    assert len(block) == len(ENTRIES)
    assert block.keys == [e[0] for e in ENTRIES]
    assert list(block.iter_from(0, None)) == ENTRIES
    for key, flags, expire, value in ENTRIES:
        assert block.get(key) == (flags, expire, value)


def test_absent_keys() -> None:
    block = Block(_contents())
    for key in [b"a", b"applf", b"zzz", b"\xff\xff"]:
        assert block.get(key) is None


def test_empty_block() -> None:
    block = Block(blocks.encode([], b"", []))
    assert len(block) == 0 and block.get(b"x") is None
    assert list(block.iter_from(0, None)) == []


def test_iter_from_and_down_respect_bounds() -> None:
    block = Block(_contents())
    assert [e[0] for e in block.iter_from(1, b"date")] == [b"banana", b"cherry"]
    assert [e[0] for e in block.iter_down(3, b"b")] == [b"date", b"cherry", b"banana"]
    assert [e[0] for e in block.iter_down(4, b"")] == [e[0] for e in reversed(ENTRIES)]


@pytest.mark.parametrize("position", [0, 10, -1, -3])
def test_a_flipped_byte_fails_the_checksum(position: int) -> None:
    sealed = bytearray(blocks.seal(_contents()))
    sealed[position] ^= 0x10
    with pytest.raises(CorruptionError) as info:
        blocks.unseal(bytes(sealed), "db/000007.sst", 4096, "data block")
    message = str(info.value)
    assert "db/000007.sst" in message and "4096" in message and "data block" in message
    assert info.value.path == "db/000007.sst" and info.value.offset == 4096


def test_truncated_block_is_corruption() -> None:
    with pytest.raises(CorruptionError, match="truncated"):
        blocks.unseal(b"\x01\x02", "f", 0, "index block")


def test_unknown_compression_is_corruption() -> None:
    from shaledb.engine.checksum import crc32c

    contents = _contents()
    raw = contents + blocks.TRAILER.pack(9, crc32c(contents + b"\x09"))
    with pytest.raises(CorruptionError, match="compression"):
        blocks.unseal(raw, "f", 0, "data block")


@pytest.mark.parametrize(
    "contents", [b"", b"\x01\x00", b"\xff\xff\xff\xff", b"abc\x05\x00\x00\x00"]
)
def test_contents_that_do_not_decode_are_corruption(contents: bytes) -> None:
    with pytest.raises(CorruptionError) as info:
        Block(contents, "f.sst", 77)
    assert "f.sst" in str(info.value) and "77" in str(info.value)


def test_find_skips_matches_inside_and_across_keys() -> None:
    # "bc" occurs inside "abcd" and across "ab" | "cd"; only the real key counts, and
    # after a run of false matches the lookup bisects instead.
    keys = [b"ab", b"abcd", b"b", b"bc", b"cd"]
    block = Block(blocks.encode(keys, bytes(len(keys)), [k.upper() for k in keys]))
    for i, key in enumerate(keys):
        assert block.find(key) == i and block.get(key) == (0, 0, key.upper())
    assert block.find(b"bcd") == -1 and block.find(b"abc") == -1 and block.find(b"") == -1
    many = [b"a" * n for n in range(1, 40)]
    block = Block(blocks.encode(many, bytes(len(many)), many))
    assert [block.find(k) for k in many] == list(range(len(many)))
    assert block.find(b"a" * 40) == -1


def test_lower_bound_and_entries_decode_only_a_range() -> None:
    block = Block(_contents())
    keys = [e[0] for e in ENTRIES]
    for probe in [b"", b"apple", b"b", b"banana", b"cherry", b"d", b"zz"]:
        import bisect

        assert block.lower_bound(probe) == bisect.bisect_left(keys, probe)
    assert block.entries(1, 4) == ENTRIES[1:4]
    assert block.entries(3, 3) == []
    assert [block.key(i) for i in range(len(block))] == keys


def _short_block(entries: list) -> Block:
    return Block(_contents(entries))


@pytest.mark.parametrize("with_ttl", [False, True])
@pytest.mark.parametrize("fixed_width", [False, True])
def test_entries_from_and_before_match_the_entries(with_ttl: bool, fixed_width: bool) -> None:
    import bisect

    keys = [b"k%03d" % i if fixed_width else b"k" + b"x" * (i % 4) + b"%d" % i for i in range(40)]
    keys.sort()
    entries = []
    for i, k in enumerate(keys):
        if with_ttl and i % 3 == 0:
            entries.append((k, HAS_TTL, 1000 + i, b"t%d" % i))
        elif i % 7 == 0:
            entries.append((k, TOMBSTONE, 0, b""))
        else:
            entries.append((k, 0, 0, b"v" * (i % 5)))
    block = _short_block(entries)
    probes = [None, b"", b"k", b"zz", *keys, *(k + b"\x00" for k in keys)]
    for lo in probes:
        start = 0 if lo is None else bisect.bisect_left(keys, lo)
        for hi in [None, b"zz", *keys[::3]]:
            end = len(keys) if hi is None else bisect.bisect_left(keys, hi)
            for n in (1, 2, 3, 10, 40, 50):
                want = entries[start : max(start, min(end, start + n))]
                assert block.entries_from(lo, hi, n) == want, (lo, hi, n)
                if lo is None:
                    continue
                top = len(keys) if hi is None else bisect.bisect_left(keys, hi)
                down = [e for e in entries[:top] if e[0] >= lo][::-1][:n]
                assert block.entries_before(hi, lo, n) == down, (lo, hi, n)


def test_entries_from_an_empty_block() -> None:
    block = Block(blocks.encode([], b"", []))
    assert block.entries_from(b"a", None, 5) == [] and block.entries_from(None, b"z", 5) == []
    assert block.entries_before(None, b"", 5) == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text("ab", min_size=1, max_size=4).map(str.encode), unique=True, max_size=30),
    st.lists(st.text("ab", max_size=5).map(str.encode), max_size=10),
    st.data(),
)
def test_get_is_entry_of_find_for_keys_and_probes(
    keys: list[bytes], probes: list[bytes], data: st.DataObject
) -> None:
    # A two-letter alphabet makes keys occur inside and across each other (false matches).
    keys.sort()
    flags = bytes(data.draw(st.sampled_from([0, HAS_TTL])) for _ in keys)
    values = [value_with_expiry(f, 1000 + i, k * 2) for i, (k, f) in enumerate(zip(keys, flags))]
    block = Block(blocks.encode(keys, flags, values))
    for probe in keys + probes:
        i = block.find(probe)
        assert block.get(probe) == (None if i < 0 else block.entry(i))
        assert (i >= 0) == (probe in keys)
