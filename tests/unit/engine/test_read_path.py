"""The read path: short scans against a dict model, over memtables and every level,
and against a state replaced while a scan runs."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from tiny_lsm import small_lsm_options

from shaledb.engine import read_path
from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.lsm import LSMEngine
from shaledb.engine.memtable import MemTable
from shaledb.engine.state import EngineState
from shaledb.engine.version import Version
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
        # The entry-by-entry fallback stops at the limit too.
        assert [e[0] for e in engine.scan(b"", None, False, 3)] == [b"k25", b"k26", b"k27"]
        assert [e[0] for e in engine.scan(b"", None, True, 2)] == [b"k29", b"k28"]
        found = read_path._short_scan(state, [], False, b"k25", None, False, 3, NOW_MS)
        assert found is not None and [e[0] for e in found] == [b"k25", b"k26", b"k27"]
    finally:
        engine.close()


def _fill(
    target: MemTable, rng: random.Random, model: dict[bytes, tuple[int, int, bytes]], n: int
) -> None:
    for step in range(n):
        key = b"k%03d" % rng.randrange(300)
        r = rng.random()
        if r < 0.25:
            entry = (TOMBSTONE, 0, b"")
        elif r < 0.35:
            entry = (HAS_TTL, NOW_MS + rng.choice([-5, 5]), b"t%d" % step)
        else:
            entry = (0, 0, b"m%d" % step)
        target.put(key, *entry)
        model[key] = entry


def _check_scans(
    state_of: Callable[[], EngineState],
    model: dict[bytes, tuple[int, int, bytes]],
    rng: random.Random,
) -> None:
    lock = threading.Lock()
    for _ in range(60):
        bound = b"k%03d" % rng.randrange(310)
        for limit in (1, 2, 5, 12):
            got = list(read_path.scan(state_of, lock, bound, None, False, limit, NOW_MS))
            assert got == _expected(model, bound, False, limit), (bound, limit)
            got = list(read_path.scan(state_of, lock, b"", bound, True, limit, NOW_MS))
            assert got == _expected(model, bound, True, limit), (bound, limit, "reverse")


@pytest.mark.parametrize("seed", [4, 5])
def test_short_scans_over_immutable_memtables_and_the_memtable(data_dir: Path, seed: int) -> None:
    # States made by hand: tables, two immutable memtables and the active one, newest
    # winning, with tombstones and expiry in every kind of source.
    rng = random.Random(seed)
    engine = LSMEngine(str(data_dir), Options(**small_lsm_options(memtable_entries=40)))
    model: dict[bytes, tuple[int, int, bytes]] = {}
    try:
        for step in range(400):
            key = b"k%03d" % rng.randrange(300)
            if rng.random() < 0.2:
                engine.write([(TOMBSTONE, key, 0, b"")])
                model[key] = (TOMBSTONE, 0, b"")
            else:
                engine.write([(0, key, 0, b"v%d" % step)])
                model[key] = (0, 0, b"v%d" % step)
        engine.flush()
        version = engine._writes.state.version
        assert sum(len(level) for level in version.levels) > 1
        old, new, mem = MemTable(0), MemTable(0), MemTable(0)
        for target in (old, new, mem):  # oldest first: each newer one overrides the model
            _fill(target, rng, model, 40)
        state = EngineState(mem, (new, old), version)
        _check_scans(lambda: state, model, rng)
    finally:
        engine.close()


def test_a_state_replaced_between_the_tables_and_the_memtable_copy(data_dir: Path) -> None:
    # The tables are read from the first state; when the lock finds another one, the
    # scan starts over on the new state alone (never a mix of the two).
    rng = random.Random(6)
    engine = LSMEngine(str(data_dir), Options(**small_lsm_options(memtable_entries=40)))
    try:
        engine.write([(0, b"k%03d" % i, 0, b"old") for i in range(0, 300, 2)])
        engine.flush()
        stale = EngineState(MemTable(0), (), engine._writes.state.version)
        engine.write([(0, b"k%03d" % i, 0, b"new") for i in range(1, 300, 2)])
        engine.write([(TOMBSTONE, b"k%03d" % i, 0, b"") for i in range(0, 300, 6)])
        engine.flush()
        model: dict[bytes, tuple[int, int, bytes]] = {}
        for key, flags, expire, value in engine.scan(b"", None):
            model[key] = (flags, expire, value)
        mem = MemTable(0)
        _fill(mem, rng, model, 60)
        current = EngineState(mem, (), engine._writes.state.version)
        calls: list[int] = []

        def state_of() -> EngineState:
            calls.append(1)
            return stale if len(calls) % 3 == 1 else current

        _check_scans(state_of, model, rng)
        assert len(calls) >= 3 * 60 * 8  # every scan saw the change and started over
    finally:
        engine.close()


def test_scan_plans_read_the_largest_source_first_and_hold_no_version(data_dir: Path) -> None:
    import gc

    engine = LSMEngine(str(data_dir), Options(**small_lsm_options(memtable_entries=40)))
    try:
        engine.write([(0, b"k%04d" % i, 0, b"v" * 50) for i in range(2000)])
        engine.flush()
        engine.compact()
        engine.write([(0, b"k%04d" % i, 0, b"w") for i in range(0, 2000, 50)])
        engine.flush()
        version = engine._writes.state.version
        plan = version.scan_plan
        assert plan.sizes[plan.largest] == max(plan.sizes) and len(plan.sources) >= 2
        assert sum(plan.sizes) == sum(f.entries for _, f in version.files())
        # A plan referring to its version would make a cycle, keeping replaced tables
        # (and their files) until a garbage collection.
        for _, _, read in plan.sources:
            assert version not in gc.get_referents(read)
        assert Version().scan_plan.largest == -1
    finally:
        engine.close()
