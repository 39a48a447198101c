"""kill -9 of a process writing to a hash-log store, at random moments, in each fsync mode.

The child (writer_child.py with ``hashlog``) writes single puts, deletes and atomic
batches with tiny segments, so seals and merges run under the kill; the parent SIGKILLs
it, reopens the store and checks it holds exactly the acknowledged state, or that state
plus the one write in flight applied whole (every mode promises that much across the
death of the process: a write is in the OS before it returns). Rounds continue on the
same directory. The default run is short; the slow variant runs many more rounds.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from test_crash import assert_allowed, replay, run_child_until_killed

import shaledb
from shaledb.engine.hashlog import HashLogEngine, check_hashlog


def rounds(tmp_path: Path, mode: str, count: int, env: dict[str, str]) -> int:
    directory = tmp_path / "db"
    rng = random.Random(f"hashlog-crash-{mode}-{count}")
    state: dict[str, str] = {}
    total_acked = 0
    for round_ in range(count):
        lines = run_child_until_killed(
            directory, round_ + 1, mode, rng.uniform(0.1, 0.5), env, ("hashlog",)
        )
        acknowledged, pending, acked = replay(lines, state)
        total_acked += acked
        report = check_hashlog(str(directory))
        assert report.healthy, report.damage
        with shaledb.DB.over(HashLogEngine(str(directory))) as db:
            found = dict(db.scan())
        assert_allowed(found, acknowledged, pending, f"round {round_} ({mode})")
        state = found
    return total_acked


@pytest.mark.crash
@pytest.mark.parametrize("mode", ["always", "everysec", "never"])
def test_acknowledged_writes_survive_sigkill(
    tmp_path: Path, mode: str, subprocess_env: dict[str, str]
) -> None:
    assert rounds(tmp_path, mode, 2, subprocess_env) > 10


@pytest.mark.crash
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["always", "everysec", "never"])
def test_acknowledged_writes_survive_many_sigkills(
    tmp_path: Path, mode: str, subprocess_env: dict[str, str]
) -> None:
    assert rounds(tmp_path, mode, 25, subprocess_env) > 25 * 5
