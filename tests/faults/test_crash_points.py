"""Crash-point tests: a power cut (or a process crash) before every I/O step.

A workload runs once on a :class:`~fault_fs.FaultFS`, which records every I/O step. It
flushes (a memtable of 8 entries), compacts, rewrites the manifest (its size limit is
lowered to 1 KiB), rotates the WAL and, in the ``tables`` workload, creates and drops
tables. Then for each step ``k`` the disk image a power cut before ``k`` would leave is
built, opened with the real engine, and checked against the history
(:mod:`history`): every acknowledged write (for ``always``; for the other modes every
fsynced one) is there, nothing is wrong, and the state is a prefix of history. Then
the recovery of that image is recorded too and cut before each of its own steps: the
image after that second crash must open to the very same state.

The fast variants take a fixed sample of steps; the ``slow`` ones take every step.
docs/reliability.md lists the scenarios and the power-cut rules.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_fs import FaultFS, images_with_holes, write_image
from history import History, State, read_state
from scratch import scratch_dir

import shaledb
import shaledb.engine.version_set as version_set
from shaledb.engine.lsm import LSMEngine
from shaledb.engine.wal import WriteAheadLog
from shaledb.errors import ShaleDBError
from shaledb.options import Options

MODES = ("always", "everysec", "never")
WORKLOADS = ("data", "tables")
EVENTS = 160
TABLE_NAMES = {"default", "t1", "t2"}


def options(fsync: str) -> Options:
    # Background compaction off: compactions run where the workload calls them, so the
    # recorded run is the same every time. Flushes still run on the background thread.
    return Options(
        fsync=fsync,
        memtable_entries=8,
        block_size=256,
        target_file_bytes=1024,
        compression="none",
        background_compaction=False,
        background_process=False,  # the recorded file system sees every table write
    )


@pytest.fixture(autouse=True)
def small_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(version_set, "MAX_MANIFEST_BYTES", 1024)


def run_workload(directory: str, fsync: str, workload: str, seed: int = 9) -> History:
    """Run the workload on a new database in ``directory``; its history."""
    fs = FaultFS(directory)
    history = History(fs, fsync)
    rng = random.Random(seed)
    engine = LSMEngine(directory, options(fsync), fs=fs)
    db = shaledb.DB.over(engine)

    def settle() -> None:
        # Wait for the background flush of every rotated memtable, its WAL's removal
        # included, so the steps are recorded in the same order on every run.
        deadline = time.monotonic() + 30
        while fs.counts[("remove", "wal")] < fs.counts[("create", "wal")] - 1:
            assert time.monotonic() < deadline, "the background flush did not finish"
            time.sleep(0.0005)
        if fsync == "everysec" and len(history.events) % 7 == 6:
            # The once-a-second fsync, at fixed points instead of by the clock (the
            # timer thread is stopped by the `recorded` fixture).
            engine._writes.wal.sync()

    tables: dict[str, shaledb.Table] = {"default": db}
    catalog_plan = {10: ("create", "t1"), 60: ("drop", "t1"), 70: ("create", "t2")}
    catalog_plan.update({95: ("create", "t1"), 130: ("drop", "t2")})
    for i in range(EVENTS):
        if workload == "tables" and i in catalog_plan:
            op, name = catalog_plan[i]
            settle()
            if op == "create":
                history.table(
                    op,
                    name,
                    lambda name=name: tables.update(
                        {name: db.namespace("default").create_table(name)}
                    ),
                )
            else:
                history.table(op, name, lambda name=name: db.namespace("default").drop_table(name))
                del tables[name]
            continue
        names = sorted(tables)
        live = history.states[-1]
        r = rng.random()
        if r < 0.6:
            t, key = rng.choice(names), f"k{rng.randrange(24):02d}"
            value = f"v{i}-{key}"
            history.write(
                {(t, key): value}, lambda t=t, key=key, value=value: tables[t].put(key, value)
            )
        elif r < 0.75 and any(live[t] for t in names):
            t = rng.choice([t for t in names if live[t]])
            key = rng.choice(sorted(live[t]))
            history.write({(t, key): None}, lambda t=t, key=key: tables[t].delete(key))
        else:
            batch = db.write_batch()
            changes: dict[tuple[str, str], str | None] = {}
            for _ in range(rng.randrange(2, 5)):
                t, key = rng.choice(names), f"k{rng.randrange(24):02d}"
                if rng.random() < 0.25:
                    batch.delete(key, table=tables[t])
                    changes[(t, key)] = None
                else:
                    batch.put(key, f"v{i}-{key}", table=tables[t])
                    changes[(t, key)] = f"v{i}-{key}"
            history.write(changes, lambda batch=batch: db.write(batch))
        settle()
        if i % 40 == 39:
            db.flush()  # db.compact() without the race between its flush and compaction
            settle()
            engine.compact()
        elif i % 25 == 12:
            db.flush()
        settle()
    db.close()
    return history


def open_state(directory: str, fsync: str, fs: FaultFS | None = None) -> State:
    """Open ``directory`` (through ``fs`` when given), read every table, close."""
    db = shaledb.DB.over(LSMEngine(directory, options(fsync), fs=fs or FaultFS(directory)))
    try:
        return read_state(db, TABLE_NAMES)
    finally:
        db.close()


class Checker:
    """Builds images of a recorded run and checks what opening them gives."""

    def __init__(self, history: History, scratch: Path) -> None:
        self.history = history
        self.scratch = scratch
        self.count = 0

    def _dir(self) -> str:
        self.count += 1
        return str(self.scratch / f"image{self.count}")

    def power_cut(
        self,
        k: int,
        torn: random.Random | None = None,
        early_names: bool = False,
        holes: random.Random | None = None,
    ) -> State:
        """Open the image of a power cut before step ``k``; the state read.

        Raises AssertionError naming the step when the state is not allowed.
        """
        directory = self._dir()
        image = self.history.fs.image(k, torn=torn, early_names=early_names, holes=holes)
        write_image(image, directory)
        what = "power cut" + (" (torn)" if torn else "") + (" (early names)" if early_names else "")
        what += " (pages lost out of order)" if holes else ""
        state = self._open(directory, k, what)
        problem = self.history.verdict(state, k)
        assert problem is None, problem
        shutil.rmtree(directory)
        return state

    def process_crash(self, k: int) -> None:
        directory = self._dir()
        write_image(self.history.fs.process_crash_image(k), directory)
        state = self._open(directory, k, "process crash")
        problem = self.history.verdict(state, k, power_cut=False)
        assert problem is None, "process crash: " + problem
        shutil.rmtree(directory)

    def _open(self, directory: str, k: int, what: str, fs: FaultFS | None = None) -> State:
        try:
            return open_state(directory, self.history.fsync, fs)
        except ShaleDBError as exc:
            step = self.history.fs.steps[k] if k < len(self.history.fs.steps) else "the end"
            raise AssertionError(f"{what} before {step}: the image does not open: {exc}") from exc

    def crash_during_recovery(
        self, k: int, torn: random.Random | None = None, sample: int | None = None
    ) -> None:
        """Record the recovery of the image of step ``k``, cut it before each of its
        steps (or ``sample`` of them), and check each opens to the same state."""
        image = self.history.fs.image(k, torn=torn)
        first = self._dir()
        write_image(image, first)
        fs = FaultFS(first)
        # Whether this state is allowed is the power-cut tests' concern; here it is the
        # reference that a second crash must not change.
        state = self._open(first, k, "power cut", fs)
        steps = range(len(fs.steps) + 1)
        if sample is not None and len(steps) > sample:
            steps = sorted(random.Random(k).sample(steps, sample))
        for j in steps:
            second = self._dir()
            write_image(fs.image(j), second)
            try:
                again = open_state(second, self.history.fsync)
            except ShaleDBError as exc:
                raise AssertionError(
                    f"power cut before step {k}, then a second one during recovery before "
                    f"{fs.steps[j] if j < len(fs.steps) else 'its end'}: "
                    f"the image does not open: {exc}"
                ) from exc
            assert again == state, (
                f"power cut before step {k}, then a second one during recovery before "
                f"{fs.steps[j] if j < len(fs.steps) else 'its end'}: the state changed"
            )
            shutil.rmtree(second)
        shutil.rmtree(first)


def sample_steps(history: History, count: int, seed: int) -> list[int]:
    """About ``count`` steps of the run, spread out and fixed by ``seed``, plus the
    steps where the rules are easiest to break: just after each catalog change
    returned, and just after each new WAL was created (the middle of a rotation)."""
    total = len(history.fs.steps)
    rng = random.Random(seed)
    picked = {0, total}
    stride = max(1, total // count)
    picked.update(min(total, s + rng.randrange(stride)) for s in range(0, total, stride))
    picked.update(e.end for e in history.events if e.table_op is not None)
    wal_creates = [s.index + 1 for s in history.fs.steps if s.op == "create" and s.kind == "wal"]
    picked.update(rng.sample(wal_creates, min(4, len(wal_creates))))
    return sorted(picked)


@pytest.fixture(scope="module")
def recorded() -> Iterator[dict[tuple[str, str], History]]:
    """One recorded run per (mode, workload), shared by the tests of this module."""
    runs: dict[tuple[str, str], History] = {}
    mp = pytest.MonkeyPatch()
    mp.setattr(version_set, "MAX_MANIFEST_BYTES", 1024)
    mp.setattr(WriteAheadLog, "_sync_every_second", lambda self: None)
    base = scratch_dir("runs")
    try:
        for fsync in MODES:
            for workload in WORKLOADS:
                directory = base / f"{fsync}-{workload}"
                runs[(fsync, workload)] = run_workload(str(directory), fsync, workload)
    finally:
        mp.undo()
        shutil.rmtree(base, ignore_errors=True)
    yield runs


#: Cases that fail because of a known engine defect, by test and id, each with its reason
#: (marked xfail, strict, so a fix shows up). Empty: every case of issue 9 passes.
KNOWN_DEFECTS: dict[str, dict[str, str]] = {}


def _cases(test: str, torn: bool = False) -> list[object]:
    cases: list[object] = []
    for fsync in MODES:
        for workload in WORKLOADS:
            case_id = f"{fsync}-{workload}" + ("-torn" if torn else "")
            reason = KNOWN_DEFECTS.get(test, {}).get(case_id)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(fsync, workload, id=case_id, marks=marks))
    return cases


def test_the_workload_exercises_every_path(recorded: dict[tuple[str, str], History]) -> None:
    history = recorded[("always", "tables")]
    steps = history.fs.steps
    created = [os.path.basename(s.path) for s in steps if s.op == "create"]
    assert sum(n.endswith(".sst") for n in created) > 20  # flushes and compaction outputs
    assert sum(n.endswith(".wal") for n in created) > 10  # WAL rotations
    assert sum(n.startswith("MANIFEST-") for n in created) > 3  # manifest rewrites
    assert any(s.op == "remove" and s.path.endswith(".sst") for s in steps)  # compaction
    assert {e.table_op[0] for e in history.events if e.table_op} == {"create", "drop"}


def test_the_recorded_run_is_the_same_every_time(
    recorded: dict[tuple[str, str], History], scratch: Path
) -> None:
    """Background work is waited for, so a sample of steps means the same every run."""
    first = recorded[("everysec", "tables")].fs
    again = run_workload(str(scratch / "db"), "everysec", "tables").fs

    def steps(fs: FaultFS) -> list[tuple[str, str, bytes]]:
        return [(s.op, os.path.relpath(s.path, fs.root), s.data) for s in fs.steps]

    assert steps(again) == steps(first)


@pytest.mark.parametrize(("fsync", "workload"), _cases("power_cut"))
def test_power_cut_at_sampled_steps(
    recorded: dict[tuple[str, str], History], scratch: Path, fsync: str, workload: str
) -> None:
    checker = Checker(recorded[(fsync, workload)], scratch)
    for k in sample_steps(checker.history, 40, seed=1):
        checker.power_cut(k)


@pytest.mark.parametrize(("fsync", "workload"), _cases("torn_power_cut", torn=True))
def test_torn_power_cut_at_sampled_steps(
    recorded: dict[tuple[str, str], History], scratch: Path, fsync: str, workload: str
) -> None:
    checker = Checker(recorded[(fsync, workload)], scratch)
    for k in sample_steps(checker.history, 40, seed=2):
        checker.power_cut(k, torn=random.Random(k))


@pytest.mark.parametrize(("fsync", "workload"), _cases("holes", torn=True))
def test_power_cut_losing_pages_out_of_order_at_sampled_steps(
    recorded: dict[tuple[str, str], History], scratch: Path, fsync: str, workload: str
) -> None:
    """The pages written since a file's last fsync reach the disk or not, in any order:
    holes of zeros with whole records after them (docs/format.md, "Power-cut gaps")."""
    checker = Checker(recorded[(fsync, workload)], scratch)
    for k in sample_steps(checker.history, 40, seed=7):
        checker.power_cut(k, holes=random.Random(k))


@pytest.mark.parametrize("fsync", ["never", "everysec"])
def test_pages_of_a_long_unsynced_wal_tail_lost_out_of_order(scratch: Path, fsync: str) -> None:
    """A WAL tail of many pages written since the last fsync, each page lost or kept at
    random: every image opens, to exactly the writes before the first page lost."""
    directory = str(scratch / f"db-{fsync}")
    fs = FaultFS(directory)
    engine = LSMEngine(directory, Options(fsync=fsync, background_compaction=False), fs=fs)
    engine._writes.wal.sync()  # the empty log durable; then nothing more is
    puts = [(f"k{i:03d}".encode(), bytes([i % 250 + 1]) * 400) for i in range(150)]
    for key, value in puts:
        engine.put(0, key, value)
    lengths = set()
    for image in images_with_holes(fs, str(scratch / fsync), 20):
        reopened = LSMEngine(image, Options(fsync=fsync, background_compaction=False))
        found = [(k, v) for k, _, _, v in reopened.scan(b"", None)]
        reopened.close()
        assert found == puts[: len(found)], f"{image}: not a prefix of the writes"
        lengths.add(len(found))
    assert len(lengths) > 3 and max(lengths) < len(puts)  # holes at many places
    engine.close()


@pytest.mark.parametrize(("fsync", "workload"), _cases("early_names", torn=True))
def test_power_cut_with_early_metadata_at_sampled_steps(
    recorded: dict[tuple[str, str], History], scratch: Path, fsync: str, workload: str
) -> None:
    """Names reach the disk before their directory is fsynced (metadata committed
    ahead of data, as ext4 does with delayed allocation); contents are torn."""
    checker = Checker(recorded[(fsync, workload)], scratch)
    for k in sample_steps(checker.history, 40, seed=6):
        checker.power_cut(k, torn=random.Random(k), early_names=True)


@pytest.mark.parametrize(("fsync", "workload"), _cases("process_crash"))
def test_process_crash_at_sampled_steps(
    recorded: dict[tuple[str, str], History], scratch: Path, fsync: str, workload: str
) -> None:
    checker = Checker(recorded[(fsync, workload)], scratch)
    for k in sample_steps(checker.history, 30, seed=3):
        checker.process_crash(k)


@pytest.mark.parametrize(("fsync", "workload"), _cases("recovery"))
def test_power_cut_during_recovery_at_sampled_steps(
    recorded: dict[tuple[str, str], History], scratch: Path, fsync: str, workload: str
) -> None:
    checker = Checker(recorded[(fsync, workload)], scratch)
    for k in sample_steps(checker.history, 6, seed=4):
        checker.crash_during_recovery(k, sample=8)


@pytest.mark.parametrize(("fsync", "workload"), _cases("torn_recovery", torn=True))
def test_torn_power_cut_during_recovery_at_sampled_steps(
    recorded: dict[tuple[str, str], History], scratch: Path, fsync: str, workload: str
) -> None:
    checker = Checker(recorded[(fsync, workload)], scratch)
    for k in sample_steps(checker.history, 6, seed=5):
        checker.crash_during_recovery(k, torn=random.Random(k), sample=8)


@pytest.mark.slow
@pytest.mark.parametrize(("fsync", "workload"), _cases("power_cut"))
def test_power_cut_at_every_step(
    recorded: dict[tuple[str, str], History], scratch: Path, fsync: str, workload: str
) -> None:
    checker = Checker(recorded[(fsync, workload)], scratch)
    for k in range(len(checker.history.fs.steps) + 1):
        checker.power_cut(k)
        checker.process_crash(k)


@pytest.mark.slow
@pytest.mark.parametrize(("fsync", "workload"), _cases("torn_power_cut", torn=True))
def test_torn_power_cut_at_every_step(
    recorded: dict[tuple[str, str], History], scratch: Path, fsync: str, workload: str
) -> None:
    checker = Checker(recorded[(fsync, workload)], scratch)
    for k in range(len(checker.history.fs.steps) + 1):
        checker.power_cut(k, torn=random.Random(k))


@pytest.mark.slow
@pytest.mark.parametrize(("fsync", "workload"), _cases("early_names", torn=True))
def test_power_cut_with_early_metadata_at_every_step(
    recorded: dict[tuple[str, str], History], scratch: Path, fsync: str, workload: str
) -> None:
    checker = Checker(recorded[(fsync, workload)], scratch)
    for k in range(len(checker.history.fs.steps) + 1):
        checker.power_cut(k, torn=random.Random(k), early_names=True)


@pytest.mark.slow
@pytest.mark.parametrize(("fsync", "workload"), _cases("recovery"))
def test_power_cut_during_recovery_at_every_step(
    recorded: dict[tuple[str, str], History], scratch: Path, fsync: str, workload: str
) -> None:
    checker = Checker(recorded[(fsync, workload)], scratch)
    for k in range(len(checker.history.fs.steps) + 1):
        checker.crash_during_recovery(k)


@pytest.mark.slow
@pytest.mark.parametrize(("fsync", "workload"), _cases("torn_recovery", torn=True))
def test_torn_power_cut_during_recovery_at_every_step(
    recorded: dict[tuple[str, str], History], scratch: Path, fsync: str, workload: str
) -> None:
    checker = Checker(recorded[(fsync, workload)], scratch)
    for k in range(len(checker.history.fs.steps) + 1):
        checker.crash_during_recovery(k, torn=random.Random(k))
