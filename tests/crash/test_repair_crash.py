"""A repair SIGKILLed at every file-system step leaves the old database or the repaired one:
a second repair then finds every readable entry (docs/format.md, "Repair")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import shaledb
from shaledb.engine import filenames
from shaledb.engine.repair import repair_directory

pytestmark = pytest.mark.crash

#: Runs repair with a file system that SIGKILLs the process before its Nth mutation.
CHILD = """
import os, signal, sys
from shaledb.engine.fs import FileSystem
from shaledb.engine.repair import repair_directory

class Killing(FileSystem):
    def __init__(self, at):
        self.left = at
    def _step(self):
        self.left -= 1
        if self.left < 0:
            os.kill(os.getpid(), signal.SIGKILL)
for name in ("open_append", "write_atomic", "rename", "remove", "sync_dir", "make_dirs"):
    def wrap(name=name):
        real = getattr(FileSystem, name)
        def step(self, *args, **kwargs):
            self._step()
            return real(self, *args, **kwargs)
        setattr(Killing, name, step)
    wrap()
repair_directory(sys.argv[1], fs=Killing(int(sys.argv[2])))
print("DONE")
"""


def test_repair_killed_at_every_step_loses_nothing(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    template = tmp_path / "template"
    model: dict[str, str] = {}
    with shaledb.open(str(template), memtable_size=40, block_size=256) as db:
        for i in range(200):
            db.put(f"k{i:03d}", f"v{i}")
            model[f"k{i:03d}"] = f"v{i}"
        db.flush()
        for i in range(0, 200, 3):
            db.put(f"k{i:03d}", f"w{i}")
            model[f"k{i:03d}"] = f"w{i}"
    manifest = template / (template / "CURRENT").read_text().splitlines()[0]
    os.truncate(manifest, 100)  # cut inside its first edits: a damaged manifest
    inputs = {p.name for p in template.iterdir() if filenames.parse(p.name) is not None}
    repaired_opens = 0
    step = 0
    while True:
        work = tmp_path / f"kill-{step}"
        shutil.copytree(template, work)
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(work), str(step)],
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        finished = "DONE" in child.stdout
        assert finished or child.returncode == -9, child.stderr
        current = (work / "CURRENT").read_text().splitlines()[0]
        if current != manifest.name:
            # The repaired state is durable: an open (no second repair) serves it and
            # finishes moving the inputs aside; none of them is deleted.
            with shaledb.open(str(work)) as db:
                assert dict(db.scan()) == model, f"killed before step {step}"
            lost = list((work / "lost").iterdir()) if (work / "lost").exists() else []
            kept = {p.name for p in work.iterdir()} | {p.name.split("~")[0] for p in lost}
            assert inputs <= kept, f"killed before step {step}: lost {inputs - kept}"
            repaired_opens += 1
        repair_directory(str(work))  # after a crash, repair again
        with shaledb.open(str(work)) as db:
            assert dict(db.scan()) == model, f"killed before step {step}"
        shutil.rmtree(work)
        if finished:
            break
        step += 1
    assert step > 5 and repaired_opens > 2
