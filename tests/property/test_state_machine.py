"""A hypothesis state machine: ShaleDB on disk against a plain dict.

Rules put (str and bytes), delete, write batches mixing both, read (get, get_range,
scan with reverse/limit), flush, compact, close-and-reopen, and move a fake clock so
TTLs expire. A tiny memtable and low compaction triggers make every rule run through
memtables, level 0 and deeper levels. The model stores, per key, the value and the
moment it expires (or None).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from tiny_lsm import small_lsm_options

import shaledb


class Clock:
    """Whole seconds only, so expiry times in ms are exact."""

    def __init__(self) -> None:
        self.now = 1_700_000_000

    def __call__(self) -> float:
        return float(self.now)


# A small key space (so keys collide, get overwritten and deleted), as str and as bytes.
# b"a" and b"k1" are the same keys as "a" and "k1": the latest write decides the type.
STR_KEYS = st.sampled_from(["a", "b", "c", "k1", "k10", "k2", "é", "z", "zz", "\u4e2d"])
BYTES_KEYS = st.sampled_from([b"a", b"k1", b"\x80", b"\xff", b"\xff\x00", b"\xc3", b"\xfe\xfe"])
KEYS = st.one_of(STR_KEYS, BYTES_KEYS)
VALUES = st.one_of(st.text(max_size=12), st.binary(max_size=40))
TTLS = st.one_of(st.none(), st.integers(min_value=1, max_value=5))


def sort_key(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


class ShaleDBMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="shaledb-sm-")
        self.clock = Clock()
        self.model: dict[bytes, tuple[str | bytes, str | bytes, int | None]] = {}
        self.db = self._open()

    def _open(self) -> shaledb.DB:
        return shaledb.open(
            self.dir,
            fsync="never",
            clock=self.clock,
            # Smaller still than the usual tiny tree: every rule runs in a few steps.
            **small_lsm_options(
                block_size=128,
                target_file_bytes=512,
                max_bytes_for_level_base=1024,
                level_size_ratio=2,
            ),
        )

    def teardown(self) -> None:
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the model --------------------------------------------------------------------

    def _live(self) -> list[tuple[Any, Any]]:
        out = []
        for raw in sorted(self.model):
            key, value, expires = self.model[raw]
            if expires is None or self.clock.now < expires:
                out.append((key, value))
        return out

    def _exists(self, key: Any) -> bool:
        return any(sort_key(k) == sort_key(key) for k, _ in self._live())

    def _model_put(self, key: Any, value: Any, ttl: int | None) -> None:
        self.model[sort_key(key)] = (key, value, None if ttl is None else self.clock.now + ttl)

    # -- writes -----------------------------------------------------------------------

    @rule(key=KEYS, value=VALUES, ttl=TTLS)
    def put(self, key: Any, value: Any, ttl: int | None) -> None:
        self.db.put(key, value, ttl=ttl)
        self._model_put(key, value, ttl)

    @rule(key=KEYS)
    def delete(self, key: Any) -> None:
        existed = self._exists(key)
        assert self.db.delete(key) is existed
        self.model.pop(sort_key(key), None)

    @rule(ops=st.lists(st.tuples(st.booleans(), KEYS, VALUES, TTLS), min_size=1, max_size=8))
    def batch(self, ops: list) -> None:
        with self.db.write_batch() as batch:
            for is_put, key, value, ttl in ops:
                if is_put:
                    batch.put(key, value, ttl=ttl)
                else:
                    batch.delete(key)
        for is_put, key, value, ttl in ops:
            if is_put:
                self._model_put(key, value, ttl)
            else:
                self.model.pop(sort_key(key), None)

    @rule(keys=st.lists(STR_KEYS, max_size=6, unique=True), value=st.text(max_size=5))
    def batch_put(self, keys: list, value: str) -> None:
        self.db.batch_put(keys, [value + k for k in keys])
        for k in keys:
            self._model_put(k, value + k, None)

    @rule(key=KEYS, value=VALUES)
    def update(self, key: Any, value: Any) -> None:
        if self._exists(key):
            self.db.update(key, value)
            self._model_put(key, value, None)
        else:
            with pytest.raises(KeyError):
                self.db.update(key, value)

    # -- time, maintenance, restarts -------------------------------------------------------

    @rule(seconds=st.integers(min_value=1, max_value=3))
    def advance_clock(self, seconds: int) -> None:
        self.clock.now += seconds

    @rule()
    def flush(self) -> None:
        self.db.flush()

    @rule()
    def compact(self) -> None:
        self.db.compact()

    @rule()
    def reopen(self) -> None:
        self.db.close()
        self.db = self._open()

    # -- reads ------------------------------------------------------------------------

    @rule(key=KEYS)
    def get(self, key: Any) -> None:
        expected = dict((sort_key(k), v) for k, v in self._live()).get(sort_key(key))
        got = self.db.get(key)
        assert got == expected and type(got) is type(expected)

    @rule(a=KEYS, b=KEYS)
    def get_range(self, a: Any, b: Any) -> None:
        lo, hi = sorted([a, b], key=sort_key)
        expected = [(k, v) for k, v in self._live() if sort_key(lo) <= sort_key(k) <= sort_key(hi)]
        assert self.db.get_range(lo, hi) == expected

    @rule(
        reverse=st.booleans(),
        limit=st.one_of(st.none(), st.integers(0, 6)),
        start=st.one_of(st.none(), KEYS),
        prefix=st.sampled_from([None, "k", "z", b"\xff", ""]),
    )
    def scan(self, reverse: bool, limit: int | None, start: Any, prefix: Any) -> None:
        expected = self._live()
        if start is not None:
            expected = [(k, v) for k, v in expected if sort_key(k) >= sort_key(start)]
        if prefix is not None:
            expected = [(k, v) for k, v in expected if sort_key(k).startswith(sort_key(prefix))]
        if reverse:
            expected = expected[::-1]
        if limit is not None:
            expected = expected[:limit]
        got = list(self.db.scan(start=start, prefix=prefix, reverse=reverse, limit=limit))
        assert got == expected
        assert [type(k) for k, _ in got] == [type(k) for k, _ in expected]
        assert [type(v) for _, v in got] == [type(v) for _, v in expected]

    @invariant()
    def everything_matches(self) -> None:
        assert list(self.db.scan()) == self._live()


# In CI (the CI environment variable set) the examples are derandomized, so a run is
# reproducible from the commit alone; elsewhere each run explores new ones.
ShaleDBMachine.TestCase.settings = settings(
    max_examples=400,
    stateful_step_count=50,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestShaleDBAgainstADict = ShaleDBMachine.TestCase


class LongRun(ShaleDBMachine):
    pass


LongRun.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.slow
def test_state_machine_long_run() -> None:
    LongRun.TestCase().runTest()
