"""Progress: the bar only on a terminal and not quiet; the summary line always."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest

from shaledb.cli.progress import Progress, Ticker, directory_bytes, show_bytes


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_gets_a_bar_with_counts_and_rate_then_the_summary() -> None:
    out, clock = Terminal(), Clock()
    progress = Progress("loading", 4, stream=out, clock=clock)
    clock.now += 1.0
    progress.advance(2, 2000)
    assert out.getvalue() == "\rloading [##########..........]  2/4 entries  2 entries/s\x1b[K"
    progress.advance(1, 10)  # within a tenth of a second: not redrawn
    assert out.getvalue().count("\r") == 1
    clock.now += 1.0
    progress.advance(1, 10)
    assert out.getvalue().endswith("[####################]  4/4 entries  2 entries/s\x1b[K")
    progress.finish("loaded", "into ./data")
    assert out.getvalue().endswith("\r\x1b[Kloaded 4 entries (2.0 KB) into ./data in 2.00 s\n")


def test_without_a_total_there_are_counts_and_rate_but_no_bar() -> None:
    out, clock = Terminal(), Clock()
    progress = Progress("dumping", stream=out, clock=clock)
    clock.now += 0.5
    progress.advance(1, 5)
    assert out.getvalue() == "\rdumping  1 entries  2 entries/s\x1b[K"


@pytest.mark.parametrize("stream, quiet", [(io.StringIO(), False), (Terminal(), True)])
def test_no_terminal_or_quiet_prints_only_the_summary(stream: io.StringIO, quiet: bool) -> None:
    clock = Clock()
    progress = Progress("loading", 10, quiet=quiet, stream=stream, clock=clock)
    for _ in range(10):
        clock.now += 1.0
        progress.advance(1, 100)
    progress.finish("loaded", "into d")
    assert stream.getvalue() == "loaded 10 entries (1.0 KB) into d in 10.00 s\n"


@pytest.mark.parametrize(
    "count, shown",
    [
        (0, "0 bytes"),
        (999, "999 bytes"),
        (1000, "1.0 KB"),
        (1_234_567, "1.2 MB"),
        (5 * 10**12, "5000.0 GB"),
    ],
)
def test_show_bytes(count: int, shown: str) -> None:
    assert show_bytes(count) == shown


def test_a_ticker_draws_bytes_and_rate_while_open_and_clears_on_exit() -> None:
    out = Terminal()
    written = iter(range(0, 10**9, 1000))
    with Ticker("backing up d", lambda: next(written), stream=out):
        time.sleep(0.35)
    text = out.getvalue()
    assert re.search(r"\rbacking up d  [0-9.]+ (bytes|KB)  [0-9.]+ (bytes|KB|MB)/s  0\.\d s", text)
    assert text.endswith("\r\x1b[K")


def test_a_ticker_is_silent_off_a_terminal_or_quiet_and_survives_a_failing_measure() -> None:
    def vanished() -> int:
        raise FileNotFoundError("moved away")

    for stream, quiet, measure in [
        (io.StringIO(), False, lambda: 1),
        (Terminal(), True, lambda: 1),
        (Terminal(), False, vanished),
    ]:
        with Ticker("repairing d", measure, quiet=quiet, stream=stream):
            time.sleep(0.25)
        assert stream.getvalue() == ""


def test_directory_bytes_counts_files_written_since(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"x" * 10)
    since = time.time_ns()
    time.sleep(0.01)
    (tmp_path / "new").write_bytes(b"y" * 7)
    (tmp_path / "sub").mkdir()
    assert directory_bytes(str(tmp_path)) == 17
    assert directory_bytes(str(tmp_path), since) == 7
    assert directory_bytes(str(tmp_path / "missing")) == 0
