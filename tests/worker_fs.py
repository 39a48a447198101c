"""File systems for the table worker's tests.

Each is a plain value, so a job pickles it with its state at that moment and the worker
process acts on it there (a fault fires in whichever process builds the table). Both
leave a note naming the process they acted in, so a test can tell the worker's I/O
from the engine's.
"""

from __future__ import annotations

import os
import time

from shaledb.engine.fs import AppendFile, FileSystem, storage_error

#: Seconds a held job waits for its gate to open before it goes on anyway.
HOLD_LIMIT = 60.0


def note(directory: str, what: str) -> None:
    """Record that ``what`` happened in this process: a file ``what.<pid>``."""
    with open(os.path.join(directory, f"{what}.{os.getpid()}"), "w") as f:
        f.write(str(os.getpid()))


def noted_pids(directory: str, what: str) -> list[int]:
    return sorted(int(n.rsplit(".", 1)[1]) for n in os.listdir(directory) if n.startswith(what))


class GatedFS(FileSystem):
    """Holds a worker's job just before its directory fsync (every output table
    written, none reported) while the file ``gate`` exists, after a note "held".

    Only processes other than ``engine_pid`` are held, so a job that falls back to the
    engine goes through; with ``only_pid`` set, only that process.
    """

    def __init__(self, engine_pid: int, notes: str) -> None:
        self.engine_pid = engine_pid
        self.notes = notes
        self.gate = ""
        self.only_pid: int | None = None

    def sync_dir(self, directory: str) -> None:
        pid = os.getpid()
        if self.gate and pid != self.engine_pid and self.only_pid in (None, pid):
            note(self.notes, "held")
            deadline = time.monotonic() + HOLD_LIMIT
            while os.path.exists(self.gate) and time.monotonic() < deadline:
                time.sleep(0.01)
        super().sync_dir(directory)


class FailingTableFS(FileSystem):
    """While ``armed``, every write (``op="write"``) or fsync (``op="sync"``) of a
    table file fails with ``code`` (an errno), after a note "failed"."""

    def __init__(self, op: str, code: int, notes: str) -> None:
        self.op = op
        self.code = code
        self.notes = notes
        self.armed = False

    def open_append(self, path: str, truncate_to: int | None = None) -> AppendFile:
        file = super().open_append(path, truncate_to)
        if not (self.armed and path.endswith(".sst")):
            return file
        return _FailingFile(file.path, file.fd, file.size, self)


class _FailingFile(AppendFile):
    def __init__(self, path: str, fd: int, size: int, fs: FailingTableFS) -> None:
        super().__init__(path, fd, size)
        self._fs = fs

    def _fail(self, op: str) -> None:
        if self._fs.op == op:
            note(self._fs.notes, "failed")
            action = "fsync" if op == "sync" else op
            raise storage_error(
                action, self.path, OSError(self._fs.code, os.strerror(self._fs.code))
            )

    def write(self, data: bytes) -> None:
        self._fail("write")
        super().write(data)

    def sync(self) -> None:
        self._fail("sync")
        super().sync()
