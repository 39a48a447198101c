"""Progress of long commands on a terminal, and the one-line summary they end with.

``load`` and ``dump`` count entries as they go (:class:`Progress`); ``backup``,
``repair`` and the shell's ``compact`` run inside the engine, so a :class:`Ticker`
samples the bytes they have written so far from another thread. Either is drawn on
standard error, redrawn in place at most ten times a second, and only when standard
error is a terminal and ``--quiet`` was not given, so piped or logged output holds
nothing but the summary::

    loading [##########..........]  50,000/100,000 entries  212,000 entries/s
    loaded 100,000 entries (4.1 MB) into ./data in 0.47 s
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

#: Seconds between two redraws of the bar.
_REDRAW = 0.1
_WIDTH = 20


def show_bytes(count: int) -> str:
    """``count`` bytes in the largest unit that keeps the figure at or above 1."""
    size = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{count} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def show_entries(count: int) -> str:
    """``1 entry``, ``3,000 entries``."""
    return f"{count:,} {'entry' if count == 1 else 'entries'}"


class Progress:
    """Counts entries and bytes of one long command, and draws its bar.

    Args:
        label: what is happening, e.g. ``"loading"``.
        total: how many entries there will be, or None when not known (no bar then,
            only the counts and the rate).
        quiet: never draw, whatever the terminal.
        stream: where the bar and the summary go (standard error by default).
        clock: seconds, for tests.

    Not thread-safe: one command advances it.
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.entries = 0
        self.bytes = 0
        self._stream = stream if stream is not None else sys.stderr
        self._draws = not quiet and self._stream.isatty()
        self._clock = clock
        self._started = clock()
        self._drawn_at = float("-inf")
        self._drawn = False

    @property
    def seconds(self) -> float:
        """Seconds since the command started."""
        return self._clock() - self._started

    def advance(self, entries: int = 1, nbytes: int = 0) -> None:
        """Count ``entries`` more entries and ``nbytes`` more bytes; redraw when due."""
        self.entries += entries
        self.bytes += nbytes
        if self._draws and self._clock() - self._drawn_at >= _REDRAW:
            self._draw()

    def _draw(self) -> None:
        self._drawn_at = self._clock()
        rate = self.entries / max(self.seconds, 1e-9)
        counts = f"{self.entries:,}"
        bar = ""
        if self.total:
            filled = min(_WIDTH, _WIDTH * self.entries // self.total)
            bar = f" [{'#' * filled}{'.' * (_WIDTH - filled)}]"
            counts += f"/{self.total:,}"
        line = f"{self.label}{bar}  {counts} entries  {rate:,.0f} entries/s"
        self._stream.write(f"\r{line}\x1b[K")
        self._stream.flush()
        self._drawn = True

    def finish(self, verb: str, where: str) -> None:
        """Clear the bar and print the summary, ``<verb> <n> entries (<bytes>) <where>
        in <s> s`` (e.g. ``loaded 3 entries (42 bytes) into ./data in 0.01 s``)."""
        if self._drawn:
            self._stream.write("\r\x1b[K")
        self._stream.write(
            f"{verb} {show_entries(self.entries)} ({show_bytes(self.bytes)}) {where} "
            f"in {self.seconds:.2f} s\n"
        )
        self._stream.flush()


def directory_bytes(directory: str, since_ns: int = 0) -> int:
    """The bytes of the files in ``directory`` (not below it) last modified at or after
    ``since_ns`` (``time.time_ns()``); files that vanish meanwhile count nothing, and a
    directory that does not exist (yet) holds 0 bytes."""
    total = 0
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if entry.is_file(follow_symlinks=False) and info.st_mtime_ns >= since_ns:
                    total += info.st_size
    except FileNotFoundError:
        return 0
    return total


class Ticker:
    """A context manager that shows ``label``, bytes so far and their rate while it is open.

    Args:
        label: what is happening, e.g. ``"backing up ./data"``.
        measure: bytes written so far; called from the drawing thread, so it must be
            safe to call while the work runs (a directory's size, an engine counter).
            An exception from it stops the drawing, never the work.
        quiet: never draw, whatever the terminal.
        stream: where to draw (standard error by default).

    The line is cleared on exit, so what the command prints next starts clean.
    """

    def __init__(
        self,
        label: str,
        measure: Callable[[], int],
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        self._label = label
        self._measure = measure
        self._stream = stream if stream is not None else sys.stderr
        self._draws = not quiet and self._stream.isatty()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn = False

    def __enter__(self) -> Ticker:
        if self._draws:
            self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._done.wait(_REDRAW):
            try:
                written = self._measure()
            except Exception:  # the work may have moved a file away: stop drawing
                return
            seconds = time.monotonic() - started
            rate = show_bytes(int(written / max(seconds, 1e-9)))
            line = f"{self._label}  {show_bytes(written)}  {rate}/s  {seconds:.1f} s"
            if self._done.is_set():
                return
            self._stream.write(f"\r{line}\x1b[K")
            self._stream.flush()
            self._drawn = True
