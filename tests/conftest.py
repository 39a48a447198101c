"""Shared fixtures: data directories, a controllable clock, and databases over both engines.

The ``db`` fixture runs a test twice, once over the in-memory reference engine and once
over the LSM engine with a tiny memtable (so flushes and compactions really happen).
The bare ``engine`` fixture also runs over the hash-log engine, in both of its forms,
with tiny segments (so seals and merges really happen).
Tests that need durability use ``open_db`` on a directory and reopen it themselves.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tiny_lsm import SMALL_LSM, small_lsm_options

import shaledb
from shaledb.engine.hashlog import HashLogEngine
from shaledb.engine.lsm import LSMEngine
from shaledb.engine.memory import MemoryEngine
from shaledb.options import Options

#: The repository root, so that child processes import this checkout's shaledb.
ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    """A clock that only moves when told: ``Options(clock=FakeClock())``.

    Starts at a whole number of seconds; tests advance it by whole seconds (or by
    binary fractions) so that ``int(seconds * 1000)`` is exact.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def child_env() -> dict[str, str]:
    """Environment for a child Python that imports this checkout's shaledb."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def new_clock() -> type[FakeClock]:
    """The FakeClock class, for tests that need a clock of their own."""
    return FakeClock


@pytest.fixture
def small_lsm() -> Callable[..., dict[str, Any]]:
    """:func:`small_lsm_options`: ``small_lsm(level_size_ratio=2)`` and so on."""
    return small_lsm_options


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    return child_env()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A path for a database directory that does not exist yet."""
    return tmp_path / "db"


@pytest.fixture
def open_db(data_dir: Path) -> Iterator[Callable[..., shaledb.DB]]:
    """``open_db(path=data_dir, **options)``: opens a DB, closed again at teardown."""
    opened: list[shaledb.DB] = []

    def _open(path: Path | str | None = None, **options: Any) -> shaledb.DB:
        db = shaledb.open(str(path or data_dir), **options)
        opened.append(db)
        return db

    yield _open
    for db in opened:
        db.close()


#: Hash-log settings that make segments seal and merges run under a test's feet.
SMALL_HASHLOG = {"hashlog_segment_bytes": 2048, "hashlog_merge_ratio": 0.3}


def make_engine(kind: str, path: Path, clock: FakeClock | None = None, **options: Any) -> Any:
    """A bare engine: ``"memory"``, ``"lsm"``, ``"hashlog"`` (directory form) or
    ``"hashlog-two-files"`` (``path`` is then a directory holding the two files);
    small settings unless overridden."""
    opts: dict[str, Any] = {}
    if kind == "lsm":
        opts = dict(SMALL_LSM)
        opts["memtable_entries"] = opts.pop("memtable_size")
    elif kind.startswith("hashlog"):
        opts = dict(SMALL_HASHLOG)
    opts.update(options)
    if clock is not None:
        opts["clock"] = clock
    if kind == "memory":
        return MemoryEngine(Options(**opts))
    if kind == "hashlog":
        return HashLogEngine(str(path), Options(**opts))
    if kind == "hashlog-two-files":
        path.mkdir(parents=True, exist_ok=True)
        return HashLogEngine.two_files(str(path / "data"), str(path / "index"), Options(**opts))
    return LSMEngine(str(path), Options(**opts))


@pytest.fixture(params=["memory", "lsm", "hashlog"])
def engine_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["memory", "lsm", "hashlog", "hashlog-two-files"])
def any_engine_kind(request: pytest.FixtureRequest) -> str:
    """Every engine kind, for the bare-engine contract (the ``db`` fixture opens
    databases through ``shaledb.open``, over ``engine_kind``)."""
    return str(request.param)


@pytest.fixture
def engine(any_engine_kind: str, data_dir: Path, clock: FakeClock) -> Iterator[Any]:
    """A bare engine of each kind, with the fake clock."""
    eng = make_engine(any_engine_kind, data_dir, clock)
    yield eng
    eng.close()


@pytest.fixture
def db(engine_kind: str, data_dir: Path, clock: FakeClock) -> Iterator[shaledb.DB]:
    """A database over each engine (``DB.over`` for memory, ``shaledb.open`` for the
    LSM and the hash-log engines, with small settings)."""
    if engine_kind == "memory":
        database = shaledb.DB.over(make_engine("memory", data_dir, clock))
    elif engine_kind == "hashlog":
        database = shaledb.open(str(data_dir), engine="hashlog", clock=clock, **SMALL_HASHLOG)
    else:
        database = shaledb.open(str(data_dir), clock=clock, **SMALL_LSM)
    yield database
    database.close()


def dir_bytes(path: Path | str) -> int:
    """Total bytes of the regular files in a directory."""
    return sum(
        os.path.getsize(os.path.join(path, n))
        for n in os.listdir(path)
        if os.path.isfile(os.path.join(path, n))
    )


def files_of(path: Path | str, suffix: str) -> list[str]:
    """Names in ``path`` ending with ``suffix``, sorted."""
    return sorted(n for n in os.listdir(path) if n.endswith(suffix))
