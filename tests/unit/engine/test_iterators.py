"""Merging sorted streams: newest source wins; tombstones and expiry filtered by live()."""

from __future__ import annotations

import random

import pytest

from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.iterators import live, merge


def _src(*pairs: tuple[bytes, bytes], reverse: bool = False):
    entries = sorted(((k, 0, 0, v) for k, v in pairs), reverse=reverse)
    return iter(entries)


@pytest.mark.parametrize("reverse", [False, True])
def test_newest_source_wins(reverse: bool) -> None:
    newest = _src((b"b", b"new"), (b"d", b"new"), reverse=reverse)
    older = _src((b"a", b"old"), (b"b", b"old"), (b"c", b"old"), reverse=reverse)
    oldest = _src((b"b", b"oldest"), (b"d", b"oldest"), (b"e", b"oldest"), reverse=reverse)
    got = [(k, v) for k, _, _, v in merge([newest, older, oldest], reverse)]
    expected = [(b"a", b"old"), (b"b", b"new"), (b"c", b"old"), (b"d", b"new"), (b"e", b"oldest")]
    assert got == (expected[::-1] if reverse else expected)


@pytest.mark.parametrize("reverse", [False, True])
def test_merge_matches_a_dict_model(reverse: bool) -> None:
    rng = random.Random(11)
    sources = []
    for i in range(6):
        keys = {rng.randbytes(1) for _ in range(30)}
        sources.append({k: f"s{i}".encode() for k in keys})
    model: dict[bytes, bytes] = {}
    for src in reversed(sources):  # oldest first, so newer ones overwrite
        model.update(src)
    iters = [_src(*s.items(), reverse=reverse) for s in sources]
    got = [(k, v) for k, _, _, v in merge(iters, reverse)]
    assert got == sorted(model.items(), reverse=reverse)


def test_single_and_no_sources() -> None:
    assert list(merge([_src((b"a", b"1"))])) == [(b"a", 0, 0, b"1")]
    assert list(merge([])) == []
    assert list(merge([iter([]), iter([])])) == []


def test_tombstone_in_newer_source_hides_older_value_but_passes_merge() -> None:
    newer = iter([(b"k", TOMBSTONE, 0, b"")])
    older = iter([(b"k", 0, 0, b"v")])
    merged = list(merge([newer, older]))
    assert merged == [(b"k", TOMBSTONE, 0, b"")]
    assert list(live(iter(merged), 0)) == []


def test_live_drops_tombstones_and_expired_entries() -> None:
    entries = [
        (b"a", 0, 0, b"plain"),
        (b"b", TOMBSTONE, 0, b""),
        (b"c", HAS_TTL, 999, b"expired"),
        (b"d", HAS_TTL, 1000, b"expires exactly now"),
        (b"e", HAS_TTL, 1001, b"alive"),
    ]
    assert [e[0] for e in live(iter(entries), 1000)] == [b"a", b"e"]


def test_merge_windows_newest_wins_skips_dead_and_runs_both_ways() -> None:
    from shaledb.engine.entry import HAS_TTL, TOMBSTONE
    from shaledb.engine.iterators import merge_windows

    def source(entries: list[tuple[bytes, int, bytes]]):  # type: ignore[no-untyped-def]
        def window(lo: bytes | None, hi: bytes | None):  # type: ignore[no-untyped-def]
            picked = [
                e for e in entries if (lo is None or e[0] >= lo) and (hi is None or e[0] < hi)
            ]
            return [e[0] for e in picked], bytes(e[1] for e in picked), [e[2] for e in picked]

        return window

    expired = (1000).to_bytes(8, "little") + b"old"
    alive = (9000).to_bytes(8, "little") + b"ttl"
    newest = source([(b"b", 0, b"B2"), (b"d", TOMBSTONE, b""), (b"f", HAS_TTL, alive)])
    oldest = source([(b"a", 0, b"A"), (b"b", 0, b"B1"), (b"d", 0, b"D"), (b"e", HAS_TTL, expired)])
    expected = [(b"a", 0, 0, b"A"), (b"b", 0, 0, b"B2"), (b"f", HAS_TTL, 9000, b"ttl")]
    for bounds in ([], [b"b", b"c", b"e"], [b"a", b"z"]):
        got = list(merge_windows([newest, oldest], bounds, b"", None, 5000))
        assert got == expected, bounds
        back = list(merge_windows([newest, oldest], bounds, b"", None, 5000, reverse=True))
        assert back == expected[::-1], bounds
    assert list(merge_windows([newest, oldest], [b"c"], b"b", b"e", 5000)) == [(b"b", 0, 0, b"B2")]
