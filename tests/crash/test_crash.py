"""kill -9 at random moments: nothing acknowledged is lost, nothing unannounced appears.

A child (writer_child.py) writes with a tiny memtable, so flushes and compactions run
all the time, and reports every write before and after it is acknowledged. The parent
SIGKILLs it after a random delay, reopens the directory and checks the database is
exactly the acknowledged state, or that state plus the one write in flight, applied
whole. Each round continues on the same directory.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import shaledb

CHILD = Path(__file__).with_name("writer_child.py")
ROUNDS = 8


def apply(state: dict[str, str], ops: list) -> dict[str, str]:
    after = dict(state)
    for op in ops:
        if op[0] == "put":
            after[op[1]] = op[2]
        else:
            after.pop(op[1], None)
    return after


def run_child_until_killed(
    directory: Path,
    seed: int,
    mode: str,
    delay: float,
    env: dict[str, str],
    engine_args: tuple[str, ...] = (),
) -> list[str]:
    """Run writer_child.py (``engine_args`` after its own) and SIGKILL it after ``delay``."""
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(directory), str(seed), mode, *engine_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("READY"):
                ready.set()
        ready.set()

    reader = threading.Thread(target=read)
    reader.start()
    ready.wait(60)
    time.sleep(delay)
    alive = proc.poll() is None
    if alive:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(60)
    reader.join(60)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    proc.stderr.close()
    assert alive, f"the child died by itself:\n{stderr}"
    assert proc.returncode == -signal.SIGKILL
    assert lines and lines[0] == "READY", stderr
    return lines


def replay(lines: list[str], state: dict[str, str]) -> tuple[dict[str, str], list | None, int]:
    """The acknowledged state after the child's report, the op in flight, writes acked."""
    pending: list | None = None
    acked = 0
    for line in lines[1:]:
        if line.startswith("W "):
            pending = json.loads(line[2:])
        elif line == "OK":
            assert pending is not None
            state = apply(state, pending)
            pending = None
            acked += 1
        else:  # pragma: no cover - a line cut by the kill can only be the last
            assert line is lines[-1], line
    return state, pending, acked


def assert_allowed(
    found: dict[str, str], acknowledged: dict[str, str], pending: list | None, where: str
) -> None:
    """``found`` is the acknowledged state, or that state with the write in flight applied
    (all of it: a write is atomic); else the test fails, naming what differs."""
    allowed = [acknowledged]
    if pending is not None:
        allowed.append(apply(acknowledged, pending))
    if found not in allowed:
        lost = {k: v for k, v in acknowledged.items() if found.get(k) != v}
        extra = {k: v for k, v in found.items() if acknowledged.get(k) != v}
        pytest.fail(
            f"{where}: the database differs from every allowed state; in flight: "
            f"{pending}; differing acknowledged keys: {lost}; unexpected: {extra}"
        )


@pytest.mark.crash
@pytest.mark.parametrize("mode", ["always", "everysec", "never"])
def test_acknowledged_writes_survive_sigkill(
    tmp_path: Path, mode: str, subprocess_env: dict
) -> None:
    directory = tmp_path / "db"
    rng = random.Random(f"crash-{mode}")
    state: dict[str, str] = {}
    total_acked = 0
    last_sequence = 0
    for round_ in range(ROUNDS):
        seed = round_ + 1
        lines = run_child_until_killed(
            directory, seed, mode, rng.uniform(0.05, 0.5), subprocess_env
        )
        acknowledged, pending, acked = replay(lines, state)
        total_acked += acked
        with shaledb.open(str(directory)) as db:
            found = dict(db.scan())
            stats = db.stats()
        assert_allowed(found, acknowledged, pending, f"round {round_} ({mode})")
        state = found
        # Sequence numbers never go back across a kill: each reopen continues after
        # every write the log holds, and there is at least one write per live key.
        assert stats["sequence"] >= max(last_sequence, len(found))
        last_sequence = stats["sequence"]
    # The kills were not all before the first write: real work was interrupted.
    assert total_acked > ROUNDS * 5


@pytest.mark.crash
def test_reopen_after_kill_then_more_writes_then_clean_close(
    tmp_path: Path, subprocess_env: dict
) -> None:
    directory = tmp_path / "db"
    lines = run_child_until_killed(directory, 99, "never", 0.3, subprocess_env)
    state, pending, _ = replay(lines, {})
    with shaledb.open(str(directory), memtable_size=8) as db:
        found = dict(db.scan())
        assert found in [state] + ([apply(state, pending)] if pending else [])
        for i in range(50):
            db.put(f"after{i:02d}", str(i))
        db.compact()
    with shaledb.open(str(directory)) as db:
        final = dict(db.scan())
    assert final == {**found, **{f"after{i:02d}": str(i) for i in range(50)}}
