"""Merges while writers and readers run, background merges, and what merges drop."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from close_race import check_close_waits_for_compact

from shaledb.engine.entry import HAS_TTL, TOMBSTONE
from shaledb.engine.hashlog import HashLogEngine, merge
from shaledb.errors import ShaleDBError
from shaledb.options import Options


def open_form(form: str, tmp_path: Path, **options: Any) -> HashLogEngine:
    if form == "directory":
        return HashLogEngine(str(tmp_path / "db"), Options(**options))
    return HashLogEngine.two_files(
        str(tmp_path / "data"), str(tmp_path / "index"), Options(**options)
    )


@pytest.mark.parametrize("form", ["directory", "two files"])
def test_merge_while_writers_and_readers_run(tmp_path: Path, form: str) -> None:
    options = {"fsync": "never", "hashlog_segment_bytes": 4096, "hashlog_merge_ratio": 0.2}
    engine = open_form(form, tmp_path, **options)
    errors: list[BaseException] = []
    done = threading.Event()
    final: dict[int, dict[bytes, bytes]] = {}

    def writer(t: int) -> None:
        mine: dict[bytes, bytes] = {}
        try:
            for i in range(1500):
                key = f"w{t}-{i % 50:02d}".encode()
                if i % 7 == 6:
                    engine.write([(TOMBSTONE, key, 0, b"")])
                    mine.pop(key, None)
                else:
                    value = f"{t}:{i}".encode()
                    engine.write([(0, key, 0, value), (0, f"p{t}".encode(), 0, value)])
                    mine[key] = value
                    mine[f"p{t}".encode()] = value
            final[t] = mine
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def merger() -> None:
        try:
            while not done.is_set():
                engine.compact()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            while not done.is_set():
                for key, _, _, value in engine.scan(b"w", b"x"):
                    t, _ = key[1:].decode().split("-")
                    assert value.split(b":")[0] == t.encode()
                got = engine.get(b"p0")
                assert got is None or got[2].startswith(b"0:")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(t,)) for t in range(3)]
    others = [threading.Thread(target=merger), threading.Thread(target=reader)]
    for th in writers + others:
        th.start()
    for th in writers:
        th.join()
    done.set()
    for th in others:
        th.join()
    assert errors == []
    expected = {k: v for mine in final.values() for k, v in mine.items()}
    assert {k: v for k, _, _, v in engine.scan(b"", None)} == expected
    stats = engine.stats()
    assert stats["merges"] > 0
    engine.compact()
    assert engine.stats()["dead_bytes"] == 0
    engine.close()
    again = open_form(form, tmp_path)
    assert {k: v for k, _, _, v in again.scan(b"", None)} == expected
    again.close()


def test_background_merge_starts_when_enough_is_dead(tmp_path: Path) -> None:
    engine = HashLogEngine(
        str(tmp_path / "db"),
        Options(fsync="never", hashlog_segment_bytes=2048, hashlog_merge_ratio=0.5),
    )
    for i in range(3000):
        engine.put(0, f"k{i % 20}".encode(), b"x" * 50)
    deadline = threading.Event()
    for _ in range(100):
        if engine.stats()["merges"]:
            break
        deadline.wait(0.05)
    stats = engine.stats()
    assert stats["merges"] >= 1, stats
    assert len(list(engine.scan(b"", None))) == 20
    engine.close()


def test_merge_drops_expired_and_filtered_keys(tmp_path: Path, clock: Any) -> None:
    options = Options(fsync="never", clock=clock, hashlog_merge_ratio=1.0)
    engine = HashLogEngine(str(tmp_path / "db"), options)
    now = engine.now_ms()
    engine.write([(HAS_TTL, b"ttl", now + 1000, b"short"), (0, b"keep", 0, b"1")])
    engine.write([(0, b"\x02drop", 0, b"2")])
    clock.advance(2)
    engine.set_drop_filter(lambda key: key.startswith(b"\x02"))
    engine.compact()
    assert [k for k, *_ in engine.scan(b"", None)] == [b"keep"]
    assert engine.stats()["keys"] == 1
    engine.close()
    engine = HashLogEngine(str(tmp_path / "db"), options)
    assert engine.get(b"\x02drop") is None and engine.get(b"keep") == (0, 0, b"1")
    engine.close()


def test_merge_output_and_inputs_both_present_open_correctly(tmp_path: Path) -> None:
    """A merge cut short after its output was in place and before every input was
    removed: the duplicated records resolve by sequence number."""
    directory = tmp_path / "db"
    options = Options(fsync="never", hashlog_segment_bytes=1024, hashlog_merge_ratio=1.0)
    engine = HashLogEngine(str(directory), options)
    for i in range(200):
        engine.put(0, f"k{i % 15}".encode(), f"v{i}".encode() * 4)
    engine.write([(TOMBSTONE, b"k3", 0, b"")])
    before = {p.name: p.read_bytes() for p in directory.iterdir() if p.suffix in (".hld", ".hli")}
    engine.compact()
    engine.put(0, b"k4", b"newest")
    expected = {k: v for k, _, _, v in engine.scan(b"", None)}
    engine.close()
    # Put the newest half of the inputs back (each segment with its index file), as if
    # their removal never happened.
    segments = sorted(name for name in before if name.endswith(".hld"))
    for segment in segments[len(segments) // 2 :]:
        for name in (segment, segment[:-4] + ".hli"):
            if name in before and not (directory / name).exists():
                (directory / name).write_bytes(before[name])
    engine = HashLogEngine(str(directory), options)
    assert {k: v for k, _, _, v in engine.scan(b"", None)} == expected
    assert engine.get(b"k3") is None and engine.get(b"k4") == (0, 0, b"newest")
    engine.close()


def test_two_file_compaction_never_shows_a_read_an_unwritten_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point reads take no lock: while the records written during a two-file compaction
    are carried over (their copies still in the output's buffer), a get must still find
    the originals, and after the swap the copies."""
    engine = open_form("two files", tmp_path, fsync="never")
    for i in range(50):
        engine.put(0, f"k{i}".encode(), b"old")
    seen: list[Any] = []
    copy_live, finish = merge._copy_live, merge.Output.finish

    def copy_then_write(*args: Any, **kwargs: Any) -> Any:
        result = copy_live(*args, **kwargs)
        engine.put(0, b"k7", b"written meanwhile")  # lands in the tail to carry over
        engine.put(0, b"new", b"also meanwhile")
        return result

    def read_then_finish(self: merge.Output) -> bytes:
        for key in (b"k7", b"new", b"k8"):
            try:
                seen.append(engine.get(key))
            except ShaleDBError as exc:
                seen.append(exc)
        return finish(self)

    monkeypatch.setattr(merge, "_copy_live", copy_then_write)
    monkeypatch.setattr(merge.Output, "finish", read_then_finish)
    engine.compact()
    expected = [(0, 0, b"written meanwhile"), (0, 0, b"also meanwhile"), (0, 0, b"old")]
    assert seen == expected
    assert [engine.get(k) for k in (b"k7", b"new", b"k8")] == expected
    assert engine.stats()["merges"] == 1
    engine.close()
    again = open_form("two files", tmp_path)
    assert [again.get(k) for k in (b"k7", b"new", b"k8")] == expected
    again.close()


@pytest.mark.parametrize("form", ["directory", "two files"])
def test_close_waits_for_a_manual_merge_in_another_thread(
    tmp_path: Path, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_form(form, tmp_path, fsync="never", hashlog_merge_ratio=1.0)
    for i in range(200):
        engine.put(0, f"k{i % 20}".encode(), f"v{i}".encode())
    check_close_waits_for_compact(engine, monkeypatch, merge, "_copy_live")
    again = open_form(form, tmp_path)
    assert {k: v for k, _, _, v in again.scan(b"", None)} == {
        f"k{i}".encode(): f"v{180 + i}".encode() for i in range(20)
    }
    assert again.stats()["dead_bytes"] == 0
    again.close()
