"""Recognising a power cut's unwritten sectors (shaledb.engine.unwritten)."""

from __future__ import annotations

import pytest

from shaledb.engine.unwritten import SECTOR, starts_unwritten

DATA = bytes(range(1, 256)) * 40  # no zero byte anywhere: 10,200 bytes


def with_zeros(start: int, stop: int) -> bytes:
    return DATA[:start] + bytes(stop - start) + DATA[stop:]


@pytest.mark.parametrize("at", [0, 100, SECTOR - 1, 3 * SECTOR])
def test_zeros_from_the_damage_to_its_sector_end(at: int) -> None:
    end = (at // SECTOR + 1) * SECTOR
    assert starts_unwritten(with_zeros(at, end), at, len(DATA))
    # One written byte before the sector ends: not a hole that starts here.
    assert not starts_unwritten(with_zeros(at, end - 1), at, len(DATA))


def test_a_whole_aligned_sector_of_zeros_before_the_limit() -> None:
    data = with_zeros(4 * SECTOR, 5 * SECTOR)
    assert starts_unwritten(data, 100, len(data))
    assert starts_unwritten(data, 100, 5 * SECTOR)
    assert not starts_unwritten(data, 100, 5 * SECTOR - 1)  # the sector is not reached
    assert not starts_unwritten(data, 5 * SECTOR, len(data))  # the hole is before


def test_zeros_that_are_not_a_whole_aligned_sector_are_not_a_hole() -> None:
    data = with_zeros(4 * SECTOR + 1, 5 * SECTOR + 1)  # 512 zeros, not aligned
    assert not starts_unwritten(data, 100, len(data))
    assert not starts_unwritten(DATA, 0, len(DATA))


def test_out_of_range_offsets() -> None:
    assert not starts_unwritten(with_zeros(0, SECTOR), -1, len(DATA))
    assert not starts_unwritten(DATA, len(DATA), len(DATA) + 10)
    # The limit is cut at the end of the data: the zeros reach it.
    tail = DATA[:1000] + bytes(24)
    assert starts_unwritten(tail, 1000, 10_000)
