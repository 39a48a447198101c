"""All engine file I/O goes through shaledb/engine/fs.py, so the FaultFS sees all of it.

The check reads the source of every engine module but fs.py and rejects any use of
the operating system's file functions: ``open``, the ``os`` calls that touch files or
descriptors, and the modules that do file I/O of their own (``shutil``, ``io``,
``tempfile``, ``pathlib``, ``mmap``). ``os.path`` (string manipulation) and a few
harmless ``os`` names are allowed. A second test checks that the FaultFS records every
step of a flush, so an operation added to fs.py without a hook shows up there.
"""

from __future__ import annotations

import ast
from pathlib import Path

from fault_fs import FaultFS

import shaledb
from shaledb.engine.lsm import LSMEngine
from shaledb.options import Options

ENGINE = Path(shaledb.__file__).parent / "engine"
LAYER = ENGINE / "fs.py"
#: ``os`` attributes an engine module may use: no file is touched through them.
ALLOWED_OS = {"path", "fspath", "getpid", "sep", "PathLike", "cpu_count"}
#: The table worker's process plumbing (its pipes, forks, exit); its table files go
#: through the FileSystem a job carries.
WORKER = ENGINE / "table_worker.py"
WORKER_OS = {"pipe", "read", "close", "_exit", "getcwd", "getppid", "register_at_fork"}
FORBIDDEN_MODULES = {"shutil", "io", "tempfile", "pathlib", "mmap", "fcntl", "posix"}


def _violations(path: Path) -> list[str]:
    allowed_os = ALLOWED_OS | WORKER_OS if path == WORKER else ALLOWED_OS
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(ENGINE.parent.parent)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"{where}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".")[0]
            if module in FORBIDDEN_MODULES:
                found.append(f"{where}: from {node.module} import ...")
            if module == "os":
                for alias in node.names:
                    if alias.name not in allowed_os:
                        found.append(f"{where}: from os import {alias.name}")
        elif isinstance(node, ast.Attribute):
            if (
                isinstance(node.value, ast.Name)
                and node.value.id == "os"
                and node.attr not in allowed_os
            ):
                found.append(f"{where}: os.{node.attr}")
        elif isinstance(node, ast.Name) and node.id == "open":
            found.append(f"{where}: open")
    return found


def test_no_engine_module_but_fs_touches_files() -> None:
    modules = sorted(p for p in ENGINE.rglob("*.py") if p != LAYER)
    assert len(modules) > 20, "the engine package moved"
    violations = [v for p in modules for v in _violations(p)]
    assert violations == [], "file I/O outside shaledb/engine/fs.py:\n" + "\n".join(violations)


def test_the_check_itself_finds_file_io(tmp_path: Path) -> None:
    sample = ENGINE / "backup.py"
    source = sample.read_text()
    assert _violations(sample) == []
    assert "os.fsync" not in source and "shutil" not in source
    assert _violations(LAYER), "fs.py does I/O, so the check must see some there"


def test_the_fault_fs_sees_every_step_of_a_flush(tmp_path: Path) -> None:
    directory = str(tmp_path / "db")
    fs = FaultFS(directory)
    engine = LSMEngine(
        directory, Options(memtable_entries=4, fsync="always", background_process=False), fs=fs
    )
    db = shaledb.DB.over(engine)
    start = fs.mark()
    for i in range(3):
        db.put(f"k{i}", "v")
    db.flush()
    db.close()
    ops = [(s.op, s.kind) for s in fs.steps[start:]]
    # Three WAL appends, each fsynced; the rotation; the table; the edit; the WAL removal.
    assert ops.count(("write", "wal")) == 3
    assert ("create", "wal") in ops and ("create", "table") in ops
    assert ("sync", "table") in ops and ("write", "manifest") in ops
    assert ("sync", "manifest") in ops and ("remove", "wal") in ops
    assert ops.index(("sync", "table")) < ops.index(("write", "manifest"))
    assert ops.index(("sync", "manifest")) < ops.index(("remove", "wal"))
