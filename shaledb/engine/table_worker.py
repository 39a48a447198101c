"""The table worker: a process that builds the SSTables of flushes and compactions.

Building a table is CPU work in Python (encoding blocks, bloom filters, merging); on
the engine's background thread it competes with the callers for the interpreter. Here
it runs in another process, so the callers keep a core to themselves.

The engine keeps everything that decides what is live: the version, the manifest and
the file numbers. A job carries what building needs and nothing more:

- :class:`FlushJob`: the immutable memtable's entries as :class:`PackedMemTable`
  (its dict, unsorted, marshalled into one ``bytes``: the worker sorts them, so all
  the engine's interpreter spends on a flush's entries is one C call of a few
  milliseconds), the file number the engine reserved, the sequence range for the
  footer;
- :class:`CompactionJob`: the input tables' records by level (the worker opens the
  files by number), the output level, whether tombstones may be dropped, the output
  file numbers the engine reserved, the time for expiry and the drop filter.

Both carry the :class:`~shaledb.engine.fs.FileSystem` and the
:class:`~shaledb.engine.table_writer.TableSettings`. The worker writes and fsyncs every
output and the directory, and answers with the outputs' :class:`TableFile` records, or
with the exception the job raised (its outputs removed). The engine then opens the
tables and logs the edit, exactly as when it builds them itself.

The protocol over the job pipe (a :class:`multiprocessing.connection.Connection` over a
socket pair): the engine sends one pickled job at a time; the worker answers each with
``(True, [TableFile, ...])`` or ``(False, exception)``. The worker's command line
carries the engine's ``sys.path``, so that it imports shaledb, and the classes a job
refers to, from where the engine does.

Two workers serve every engine of a process, one for flushes (:data:`for_flushes`) and
one for compactions (:data:`for_compactions`), so a flush never waits behind a long
compaction. Each starts on its first job, as a fresh interpreter (``subprocess``, so no
fork of a threaded process), and runs one job at a time. A worker exits when its job
pipe closes, and at once when the engine process dies (the kernel kills it, and it
watches a second pipe whose other end only the engine holds). The engine reaps it, so
no zombie remains.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import marshal
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection

from shaledb.engine import filenames
from shaledb.engine.block_cache import BlockCache
from shaledb.engine.compaction import executor
from shaledb.engine.compaction.policy import Compaction
from shaledb.engine.fs import FileSystem
from shaledb.engine.iterators import Columns
from shaledb.engine.memtable import MemTable
from shaledb.engine.sstable.reader import SSTable
from shaledb.engine.table_writer import TableOutputs, TableSettings
from shaledb.engine.version import FileMeta
from shaledb.engine.version_edit import TableFile
from shaledb.errors import StorageError


@dataclass(frozen=True)
class PackedMemTable:
    """An immutable memtable's entries in one ``bytes``: its dict, unsorted, in
    :mod:`marshal`'s format version 2.

    marshal writes a dict of ``bytes`` and small tuples in one C loop (about 15 ms for
    a 16 MiB memtable), far faster than pickle, and version 2 skips the back-reference
    table of later versions, which only costs time here. Sorting and building the
    columns (a SortedList update and three list passes, several times the marshal's
    cost) happen in the worker. The format may change between Python versions, but the
    worker runs the engine's own interpreter (``sys.executable``).

    Rejected alternative: the worker replays the memtable's own WAL, so the engine
    sends nothing but a path. Decoding the log in Python costs the worker about 6 us a
    write, longer than the engine takes to fill the next memtable, and a WAL damaged
    since it was written needs a second way anyway.
    """

    data: bytes

    @classmethod
    def of(cls, mem: MemTable) -> PackedMemTable:
        return cls(marshal.dumps(mem.entries, 2))

    def columns(self) -> Columns:
        """The entries as :meth:`MemTable.columns` gives them: sorted, expiry-prefixed."""
        return MemTable.holding(marshal.loads(self.data)).columns()


@dataclass(frozen=True)
class FlushJob:
    """Write one memtable's sorted entries to level-0 table ``number``."""

    fs: FileSystem
    directory: str
    settings: TableSettings
    number: int
    seq_range: tuple[int, int]
    entries: PackedMemTable

    @property
    def numbers(self) -> tuple[int, ...]:
        return (self.number,)


@dataclass(frozen=True)
class CompactionJob:
    """Merge ``inputs`` (records by level, in the version's order) into tables for
    ``output_level``, numbered from ``numbers`` in order."""

    fs: FileSystem
    directory: str
    settings: TableSettings
    inputs: list[tuple[int, list[TableFile]]]
    output_level: int
    drops_tombstones: bool
    numbers: tuple[int, ...]
    now_ms: int
    dropped: Callable[[bytes], bool]


Job = FlushJob | CompactionJob


class WorkerLost(Exception):
    """The worker process died or its pipe broke before it answered. Internal: the
    engine removes the job's outputs and builds the tables itself."""


class JobCancelled(Exception):
    """The engine began to close while a job ran; the worker was stopped. Internal."""


class WorkerUnavailable(Exception):
    """The worker cannot be started, or died in :data:`MAX_LOSSES` jobs in a row; the
    engine builds the tables itself from then on. Internal."""


class NotSendable(Exception):
    """The job cannot be pickled (a file system or drop filter that only lives in this
    process); the engine builds the tables itself. Internal."""


def reserve_numbers(compaction: Compaction, target_file_bytes: int) -> int:
    """How many output numbers to reserve for ``compaction``: outputs are cut at
    ``target_file_bytes`` and hold no more than the inputs, plus room for the last."""
    return 2 * (compaction.input_bytes() // target_file_bytes) + 2


def record_of(meta: TableFile) -> TableFile:
    """The plain record of a live table (without its reader), as a job carries it."""
    return TableFile(meta.number, meta.size, meta.entries, meta.smallest, meta.largest)


def run_job(job: Job) -> list[TableFile]:
    """Carry ``job`` out here: its durable outputs, in order."""
    numbers = iter(job.numbers)

    def next_number() -> int:
        number = next(numbers, None)
        if number is None:
            raise StorageError(
                f"{job.directory}: a compaction needed more than the {len(job.numbers)} "
                "file numbers reserved for it"
            )
        return number

    writer: TableOutputs[TableFile] = TableOutputs(
        job.fs, job.directory, job.settings, next_number, lambda table: table
    )
    if isinstance(job, FlushJob):
        return [writer.write_columns(job.entries.columns(), job.seq_range)]
    cache = BlockCache(0)
    inputs = [
        (
            level,
            [
                FileMeta(
                    t.number,
                    t.size,
                    t.entries,
                    t.smallest,
                    t.largest,
                    table=SSTable(
                        job.fs,
                        filenames.path(job.directory, filenames.table_name(t.number)),
                        t.number,
                        cache,
                    ),
                )
                for t in files
            ],
        )
        for level, files in job.inputs
    ]
    compaction = Compaction(inputs, job.output_level, job.drops_tombstones, "worker")
    return executor.run(compaction, writer, job.now_ms, job.dropped, job.settings.target_file_bytes)


# -- the worker process ----------------------------------------------------------------


def serve(job_fd: int, alive_fd: int, engine_pid: int) -> None:
    """The worker's main loop: run jobs from ``job_fd`` until it closes."""
    _die_with(engine_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine decides when to stop
    threading.Thread(target=_exit_with_parent, args=(alive_fd,), daemon=True).start()
    conn = Connection(job_fd)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        except Exception as exc:  # a job that does not unpickle here
            reply: tuple[bool, object] = (False, exc)
        else:
            try:
                reply = (True, run_job(job))
            except Exception as exc:
                reply = (False, exc)
        try:
            payload = pickle.dumps(reply)
        except Exception as exc:
            payload = pickle.dumps((False, StorageError(f"table worker failed: {exc!r}")))
        try:
            conn.send_bytes(payload)
        except OSError:
            return


#: prctl(2) option: the signal this process gets when the thread that started it ends.
_PR_SET_PDEATHSIG = 1


def _die_with(engine_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its starter ends (on Linux), so that
    after the engine process died no line of a job runs here, not even one that
    would create a table file after the next open looked at the directory."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # no prctl: the alive pipe alone ends this process
    if os.getppid() != engine_pid:
        os._exit(0)  # the engine died before the request took effect


def _exit_with_parent(alive_fd: int) -> None:
    """Block until the engine's end of the alive pipe closes, then exit at once: the
    engine process died (or stopped this worker), so no one waits for the job."""
    while os.read(alive_fd, 1):
        pass
    os._exit(0)


#: The worker's command: its arguments are the two descriptors, the engine's pid and its
#: sys.path (so that it imports shaledb and a job's classes from where the engine does).
_COMMAND = (
    "import json, sys; sys.path[:0] = json.loads(sys.argv[4]); "
    "from shaledb.engine.table_worker import serve; "
    "serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))"
)
#: Workers lost in a row (no job answered between) after which none is started again.
MAX_LOSSES = 3
#: Seconds between checks of ``cancelled`` while a job runs.
_POLL = 0.05
#: Seconds a worker gets to exit after its pipe closed, before it is killed.
_EXIT_WAIT = 5.0


_Launch = tuple[list[str], tuple[int, ...], "Future[subprocess.Popen[bytes]]"]


class _Launcher:
    """Starts worker processes from one thread that lasts as long as the process.

    The kernel kills a worker when the thread that started it ends (the worker asks
    for that, see :func:`_die_with`); an engine's background thread ends when the
    engine closes, while the worker serves on, so that thread must not start it.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[_Launch] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, args: list[str], fds: tuple[int, ...]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="shaledb-worker-launcher", daemon=True
                )
                self._thread.start()
        launched: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((args, fds, launched))
        return launched.result()

    def _serve(self) -> None:
        while True:
            args, fds, launched = self._requests.get()
            try:
                launched.set_result(subprocess.Popen(args, stdin=subprocess.DEVNULL, pass_fds=fds))
            except BaseException as exc:
                launched.set_exception(exc)


class TableWorker:
    """The engine side of one worker process. Thread-safe: jobs run one at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._alive: int | None = None
        self._launcher = _Launcher()
        #: Jobs answered by a worker, and workers lost (died or killed) mid-job.
        self.jobs = 0
        self.losses = 0
        self._lost_in_a_row = 0
        #: Why no worker is used any more in this process (None: one is).
        self.unavailable: str | None = None

    @property
    def pid(self) -> int | None:
        """The running worker's process id; None before the first job or after a loss."""
        process = self._process
        return None if process is None else process.pid

    def run(self, job: Job, cancelled: Callable[[], bool]) -> list[TableFile]:
        """Run ``job`` in the worker (starting it if needed) and return its outputs.

        Raises:
            NotSendable: the job does not pickle; nothing was sent.
            WorkerUnavailable: no worker can be had (see the class); nothing was sent.
            WorkerLost: the worker died before answering (it is reaped; the next job
                starts a new one). Outputs it may have left are the caller's to remove.
            JobCancelled: ``cancelled()`` became true; the worker was killed.
            ShaleDBError: what the job raised in the worker (its outputs removed).
        """
        try:
            payload = pickle.dumps(job, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise NotSendable(repr(exc)) from exc
        with self._lock:
            if self.unavailable is not None:
                raise WorkerUnavailable(self.unavailable)
            conn = self._conn or self._start()
            try:
                conn.send_bytes(payload)
                while not conn.poll(_POLL):
                    if cancelled():
                        self._stop(kill=True)
                        raise JobCancelled
                ok, value = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError) as exc:
                self.losses += 1
                self._lost_in_a_row += 1
                if self._lost_in_a_row >= MAX_LOSSES:
                    self.unavailable = f"the table worker died in {MAX_LOSSES} jobs in a row"
                self._stop(kill=True)
                raise WorkerLost(f"the table worker stopped during a job: {exc!r}") from exc
            self.jobs += 1
            self._lost_in_a_row = 0
        if ok:
            outputs: list[TableFile] = value
            return outputs
        raise value

    def _start(self) -> Connection:
        ours, theirs = socket.socketpair()
        alive_read, alive_write = os.pipe()
        try:
            self._process = self._launcher.start(
                [
                    sys.executable,
                    "-c",
                    _COMMAND,
                    str(theirs.fileno()),
                    str(alive_read),
                    str(os.getpid()),
                    json.dumps(_importable_path()),
                ],
                (theirs.fileno(), alive_read),
            )
        except OSError as exc:
            ours.close()
            os.close(alive_write)
            self.unavailable = f"could not start the table worker: {exc}"
            raise WorkerUnavailable(self.unavailable) from exc
        finally:
            theirs.close()
            os.close(alive_read)
        self._alive = alive_write
        self._conn = Connection(ours.detach())
        return self._conn

    def _stop(self, kill: bool) -> None:
        """Close the pipes (the worker exits), kill it if asked, and reap it."""
        conn, alive, process = self._conn, self._alive, self._process
        self._conn = self._alive = self._process = None
        if conn is not None:
            conn.close()
        if alive is not None:
            os.close(alive)
        if process is None:
            return
        if kill:
            process.kill()
        try:
            process.wait(_EXIT_WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        """Stop the worker after its current job (at process exit)."""
        with self._lock:
            self._stop(kill=False)

    def forget(self) -> None:
        """In a forked child: drop the parent's worker without touching it."""
        if self._conn is not None:
            self._conn.close()
        if self._alive is not None:
            os.close(self._alive)
        self._conn = self._alive = self._process = None
        self._lock = threading.Lock()
        self._launcher = _Launcher()


def _importable_path() -> Sequence[str]:
    return [entry or os.getcwd() for entry in sys.path]


#: The workers of this process, shared by every engine in it: one for flushes, one for
#: compactions, so that a flush never waits behind a long compaction.
for_flushes = TableWorker()
for_compactions = TableWorker()


def serving(job: Job) -> TableWorker:
    """The worker that runs ``job``."""
    return for_flushes if isinstance(job, FlushJob) else for_compactions


for _worker in (for_flushes, for_compactions):
    atexit.register(_worker.stop)
    os.register_at_fork(after_in_child=_worker.forget)
