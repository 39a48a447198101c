"""Child process for the crash tests: writes until it is killed, reporting each acknowledgement.

    python writer_child.py <data dir> <seed> <fsync mode> [hashlog]

With ``hashlog`` the database is a hash-log store with tiny segments (so seals and
merges run all the time) instead of the tiny LSM tree.

Protocol on stdout, one line each, flushed at once:

    READY                      the database is open
    W <json list of ops>       about to write these ops as one atomic write
    OK                         the write just announced returned (it is acknowledged)

An op is ``["put", key, value]`` or ``["del", key]``. The parent kills this process
with SIGKILL at a random moment; whatever was announced but not acknowledged may or
may not be in the database, atomically.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import shaledb
from shaledb.engine.hashlog import HashLogEngine
from shaledb.options import Options

# The tests' one definition of the tiny tree (this child runs as a script).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_lsm import small_lsm_options  # noqa: E402


def main() -> None:
    directory, seed, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rng = random.Random(seed)
    if sys.argv[4:] == ["hashlog"]:
        options = Options(fsync=mode, hashlog_segment_bytes=4096, hashlog_merge_ratio=0.3)
        db = shaledb.DB.over(HashLogEngine(directory, options))
    else:
        db = shaledb.open(
            directory,
            fsync=mode,
            **small_lsm_options(level_size_ratio=2),
        )
    out = sys.stdout
    out.write("READY\n")
    out.flush()
    n = 0
    while True:
        n += 1
        roll = rng.random()
        key = f"k{rng.randrange(60):02d}"
        value = f"s{seed}-{n}" + "x" * rng.randrange(0, 200)
        if roll < 0.55:
            ops = [["put", key, value]]
        elif roll < 0.7:
            ops = [["del", key]]
        elif roll < 0.85:
            ops = []
            for i in range(rng.randrange(2, 6)):
                k = f"k{rng.randrange(60):02d}"
                ops.append(["put", k, f"{value}-{i}"] if rng.random() < 0.7 else ["del", k])
        else:
            keys = sorted({f"k{rng.randrange(60):02d}" for _ in range(rng.randrange(1, 8))})
            ops = [["put", k, f"{value}-b{i}"] for i, k in enumerate(keys)]
        out.write("W " + json.dumps(ops) + "\n")
        out.flush()
        if len(ops) == 1 and ops[0][0] == "put":
            db.put(ops[0][1], ops[0][2])
        elif len(ops) == 1:
            db.delete(ops[0][1])
        elif all(op[0] == "put" for op in ops) and roll >= 0.85:
            db.batch_put([op[1] for op in ops], [op[2] for op in ops])
        else:
            batch = db.write_batch()
            for op in ops:
                if op[0] == "put":
                    batch.put(op[1], op[2])
                else:
                    batch.delete(op[1])
            db.write(batch)
        out.write("OK\n")
        out.flush()
        if n % 400 == 0:
            db.compact()


if __name__ == "__main__":
    main()
