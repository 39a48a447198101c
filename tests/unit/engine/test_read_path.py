"""The read path: short scans against a dict model, over memtables and every level."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from tiny_lsm import small_lsm_options

from shaledb.engine import read_path
from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.lsm import LSMEngine
from shaledb.options import Options

NOW_MS = 1_000_000


def _expected(
    model: dict[bytes, tuple[int, int, bytes]], bound: bytes, reverse: bool, limit: int
) -> list[tuple[bytes, int, int, bytes]]:
    """Forward: the first ``limit`` live entries from ``bound`` up; reverse: below it, down."""
    if reverse:
        keys = sorted((k for k in model if k < bound), reverse=True)
    else:
        keys = sorted(k for k in model if k >= bound)
    out = []
    for k in keys:
        flags, expire, value = model[k]
        if flags & TOMBSTONE or (flags & HAS_TTL and expire <= NOW_MS):
            continue
        out.append((k, flags, expire, value))
        if len(out) == limit:
            break
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_short_scans_match_a_model_with_tombstones_and_expiry(data_dir: Path, seed: int) -> None:
    rng = random.Random(seed)
    options = Options(**small_lsm_options(memtable_entries=40, clock=lambda: NOW_MS / 1000))
    engine = LSMEngine(str(data_dir), options)
    model: dict[bytes, tuple[int, int, bytes]] = {}
    both = 0  # checks made while level 0 and a deeper level both held tables
    try:
        for step in range(1500):
            key = b"k%03d" % rng.randrange(300)
            r = rng.random()
            if r < 0.3:  # runs of tombstones make the short path fall back to the heap
                op = (TOMBSTONE, key, 0, b"")
            elif r < 0.4:
                op = (HAS_TTL, key, NOW_MS + rng.choice([-5, 5]), b"t%d" % step)
            else:
                op = (0, key, 0, b"v%d" % step)
            engine.write([op])
            model[key] = (op[0], op[2], op[3])
            if step % 100 == 99:
                levels = [len(level) for level in engine._writes.state.version.levels]
                both += bool(levels[0] and sum(levels[1:]))
                for _ in range(20):
                    lo = b"k%03d" % rng.randrange(310)
                    limit = rng.choice([1, 3, 10, 50])
                    for reverse in (False, True):
                        if reverse:
                            got = list(engine.scan(b"", lo, True, limit))[:limit]
                        else:
                            got = list(engine.scan(lo, None, False, limit))[:limit]
                        assert got == _expected(model, lo, reverse, limit), (lo, reverse, limit)
        assert both  # every kind of source took part
    finally:
        engine.close()


def test_the_short_path_gives_up_when_dead_entries_hide_the_answer(data_dir: Path) -> None:
    engine = LSMEngine(str(data_dir), Options(background_compaction=False))
    try:
        engine.write([(0, b"k%02d" % i, 0, b"v") for i in range(30)])
        engine.flush()
        engine.write([(TOMBSTONE, b"k%02d" % i, 0, b"") for i in range(25)])
        engine.flush()
        state = engine._writes.state
        assert read_path._short_scan(state, [], False, b"", None, False, 3, NOW_MS) is None
        assert [e[0] for e in engine.scan(b"", None, False, 3)][:3] == [b"k25", b"k26", b"k27"]
        found = read_path._short_scan(state, [], False, b"k25", None, False, 3, NOW_MS)
        assert found is not None and [e[0] for e in found] == [b"k25", b"k26", b"k27"]
    finally:
        engine.close()
