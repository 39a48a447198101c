"""Power cuts at every step of a hash-log merge and of the two-file compaction's swap.

The FaultFS (fault_fs.py) records every file operation of a compaction; for each step
``k`` the disk image a power cut just before it would leave (strict rules, and with
names reaching the disk early) is opened: it must hold exactly the data, since every
write was acknowledged with ``fsync="always"`` before the compaction began.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from fault_fs import FaultFS, images_with_holes, write_image

from shaledb.engine.entry import TOMBSTONE
from shaledb.engine.hashlog import HashLogEngine
from shaledb.options import Options

OPTIONS = {"fsync": "always", "hashlog_segment_bytes": 1024, "hashlog_merge_ratio": 1.0}


def workload(engine: HashLogEngine) -> dict[bytes, bytes]:
    model: dict[bytes, bytes] = {}
    for i in range(120):
        key = f"k{(i * 7) % 40:02d}".encode()
        if i % 5 == 4:
            engine.write([(TOMBSTONE, key, 0, b"")])
            model.pop(key, None)
        else:
            value = f"value-{i}".encode() * 3
            engine.write([(0, key, 0, value), (0, b"pair" + key, 0, value)])
            model[key] = model[b"pair" + key] = value
    return model


def contents(engine: HashLogEngine) -> dict[bytes, bytes]:
    found = {k: v for k, _, _, v in engine.scan(b"", None)}
    assert all(engine.get(k) == (0, 0, v) for k, v in found.items())
    return found


def check_images(
    fs: FaultFS,
    start: int,
    root: Path,
    opener: Callable[[Path], HashLogEngine],
    expected: dict[bytes, bytes],
) -> int:
    """Open the image of a power cut before each step from ``start`` on (strict, and
    with names on disk early); each must hold ``expected``. The number checked."""
    checked = 0
    for k in range(start, len(fs.steps) + 1):
        for early in (False, True):
            target = root / f"cut-{k}-{int(early)}"
            write_image(fs.image(k, early_names=early), str(target))
            engine = opener(target)
            try:
                found = contents(engine)
            finally:
                engine.close()
            assert found == expected, f"power cut before step {k} ({fs.steps[k - 1]})"
            checked += 1
    return checked


def test_power_cut_at_every_step_of_a_directory_merge(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    os.makedirs(directory)
    fs = FaultFS(str(directory))
    engine = HashLogEngine(str(directory), Options(**OPTIONS), fs=fs)  # type: ignore[arg-type]
    expected = workload(engine)
    start = fs.mark()
    engine.compact()
    assert engine.stats()["merges"] == 1
    assert contents(engine) == expected
    engine.close()
    checked = check_images(
        fs, start, tmp_path, lambda d: HashLogEngine(str(d), Options(fsync="never")), expected
    )
    assert checked > 20


def test_power_cut_at_every_step_of_the_two_file_swap(tmp_path: Path) -> None:
    directory = tmp_path / "pair"
    os.makedirs(directory)
    fs = FaultFS(str(directory))
    engine = HashLogEngine.two_files(
        str(directory / "data"),
        str(directory / "index"),
        Options(**OPTIONS),
        fs=fs,  # type: ignore[arg-type]
    )
    expected = workload(engine)
    start = fs.mark()
    engine.compact()
    engine.close()
    names = [os.path.basename(s.path) for s in fs.steps[start:] if s.op == "rename"]
    assert names[:2] == ["data.tmp", "index.tmp"]  # data first, then its index
    checked = check_images(
        fs,
        start,
        tmp_path,
        lambda d: HashLogEngine.two_files(str(d / "data"), str(d / "index")),
        expected,
    )
    assert checked > 10


def test_pages_of_the_active_segment_lost_out_of_order(tmp_path: Path) -> None:
    """The active segment's unsynced pages, each lost or kept at random: every image
    opens, to exactly the writes before the first page lost."""
    directory = str(tmp_path / "db")
    fs = FaultFS(directory)
    engine = HashLogEngine(directory, Options(fsync="never"), fs=fs)
    puts = [(f"k{i:03d}".encode(), bytes([i % 250 + 1]) * 400) for i in range(150)]
    for key, value in puts:
        engine.put(0, key, value)
    lengths = set()
    for image in images_with_holes(fs, str(tmp_path / "images"), 20):
        reopened = HashLogEngine(image)
        found = sorted(contents(reopened).items())
        reopened.close()
        assert found == puts[: len(found)], f"{image}: not a prefix of the writes"
        lengths.add(len(found))
    assert len(lengths) > 3 and max(lengths) < len(puts)
    engine.close()
