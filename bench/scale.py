"""ShaleDB alone at scale: load N keys with default settings, then reads, scans, YCSB A.

    python -m bench.scale [--keys 10000000] [--reads 100000] [--scans 20000]
                          [--ycsb-ops 100000] [--output docs/benchmarks.md]
                          [--engine lsm|hashlog]

Keys are 16 bytes derived from their index (BLAKE2b), so any key can be recomputed
without holding the whole key set in memory, and arrive in effectively random order;
values are 100 random bytes. Reports the load rate (one ``put`` per key), peak RSS
(``ru_maxrss``), bytes on disk after ``flush()``, ShaleDB's write amplification, then
the rates of the phases run on the loaded store, in order: random gets of present
keys; range scans of 10 keys from random present keys; YCSB A (50% reads, 50%
updates of zipfian-chosen keys). Then it writes the "Scale run" section of the
report. ``--keys 1000000`` makes a run of a few minutes for quick checks.
With ``--engine hashlog`` the same run goes to the hash-log engine and its own section,
"Scale run (hash-log engine)", without the LSM's rows and with the memory per key: the
growth of peak RSS over the load and flush divided by the keys (the engine holds every
key in memory, so this grows with the keys).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import random
import resource
import shutil
import sys
import tempfile
import time

import shaledb
from bench.engines import disk_bytes
from bench.report import replace_section
from bench.workloads import KEY_BYTES, SCAN_LENGTH, VALUE_BYTES, Zipfian


def key_of(i: int) -> bytes:
    return hashlib.blake2b(i.to_bytes(8, "big"), digest_size=KEY_BYTES).digest()


def peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    p.add_argument("--keys", type=int, default=10_000_000)
    p.add_argument("--reads", type=int, default=100_000)
    p.add_argument("--scans", type=int, default=20_000, help="range scans of 10 keys")
    p.add_argument("--ycsb-ops", type=int, default=100_000, help="operations of YCSB A")
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--output", default="docs/benchmarks.md")
    p.add_argument("--workdir", help="where the database's temporary directory goes")
    p.add_argument("--engine", choices=("lsm", "hashlog"), default="lsm")
    args = p.parse_args(argv)
    n = args.keys
    rng = random.Random(args.seed)
    rss_start = peak_rss_mib()
    workdir = tempfile.mkdtemp(prefix="shaledb-scale-", dir=args.workdir)
    path = os.path.join(workdir, "db")
    try:
        db = shaledb.open(path, engine=args.engine)
        try:
            put, randbytes = db.put, rng.randbytes
            report_every = max(1, n // 20)
            t0 = time.perf_counter()
            for i in range(n):
                put(key_of(i), randbytes(VALUE_BYTES))
                if (i + 1) % report_every == 0:
                    rate = (i + 1) / (time.perf_counter() - t0)
                    print(
                        f"  loaded {i + 1:,} keys, {rate:,.0f} puts/s, "
                        f"peak RSS {peak_rss_mib():,.0f} MiB",
                        flush=True,
                    )
            load_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            db.flush()
            flush_s = time.perf_counter() - t1
            on_disk = disk_bytes(path)
            stats = db.stats()
            rss_loaded = peak_rss_mib()  # before the reads allocate anything

            wanted = [key_of(rng.randrange(n)) for _ in range(args.reads)]
            get = db.get
            misses = 0
            t2 = time.perf_counter()
            for k in wanted:
                if get(k) is None:
                    misses += 1
            read_s = time.perf_counter() - t2

            scan_s, short_scans = scan_phase(db, rng, n, args.scans)
            ycsb_s = ycsb_a_phase(db, rng, n, args.ycsb_ops)
        finally:
            db.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    raw = n * (KEY_BYTES + VALUE_BYTES)
    levels = ", ".join(
        f"L{lv['level']}: {lv['files']}" for lv in stats.get("levels", []) if lv["files"]
    )
    command = "python -m bench.scale" + (" " + " ".join(argv) if argv else "")
    lines = [
        "## Scale run",
        "",
        f"ShaleDB alone, default options, {n:,} keys (16-byte keys, 100-byte random values, "
        "one `put` each, keys in random order).",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; load average "
        f"after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| load rate | {n / load_s:,.0f} puts/s ({load_s:,.1f} s) |",
        f"| final flush | {flush_s:,.1f} s |",
        f"| peak RSS (ru_maxrss) | {peak_rss_mib():,.0f} MiB "
        f"(before opening: {rss_start:,.0f} MiB) |",
        f"| disk bytes after flush | {on_disk / 2**20:,.1f} MiB ({on_disk / raw:.2f}x raw "
        f"{raw / 2**20:,.1f} MiB) |",
        f"| write amplification (stats) | {stats.get('write_amplification')} |",
        f"| tables per level | {levels or 'none'} |",
        f"| write stalls / slowdowns | {stats.get('write_stalls', 0)} / "
        f"{stats.get('write_slowdowns', 0)} |",
        f"| random get of present keys | {args.reads / read_s:,.0f} gets/s "
        f"({args.reads:,} gets, {misses} not found) |",
        f"| range scan ({SCAN_LENGTH} keys from a random present key) | "
        f"{args.scans / max(scan_s, 1e-9):,.0f} scans/s "
        f"({args.scans:,} scans, {short_scans} short) |",
        f"| YCSB A (50/50 read/update, zipfian) | {args.ycsb_ops / ycsb_s:,.0f} ops/s "
        f"({args.ycsb_ops:,} ops) |",
    ]
    body = "\n".join(lines) + "\n"
    section = "scale-run"
    if args.engine == "hashlog":
        section = "scale-run-hashlog"
        per_key = (rss_loaded - rss_start) * 2**20 / n
        # The LSM's rows (write amplification, levels, stalls) say nothing here.
        lsm_only = ("| write amplification", "| tables per level", "| write stalls")
        kept = [line for line in body.splitlines() if not line.startswith(lsm_only)]
        body = (
            "\n".join(kept)
            .replace("## Scale run\n", "## Scale run (hash-log engine)\n", 1)
            .replace("ShaleDB alone,", "ShaleDB's hash-log engine alone,", 1)
            + "\n| memory per key: peak RSS growth over the load and flush, divided by "
            + f"the keys (the in-memory index holds every key) | {per_key:,.0f} bytes |\n"
        )
    print(body)
    replace_section(args.output, section, body)
    print(f"Wrote the Scale run section of {args.output}")
    return 1 if misses else 0


def scan_phase(db: shaledb.DB, rng: random.Random, n: int, scans: int) -> tuple[float, int]:
    """Seconds for ``scans`` range scans of SCAN_LENGTH keys from random present keys,
    and how many returned fewer (only those starting near the end of the key space)."""
    starts = [key_of(rng.randrange(n)) for _ in range(scans)]
    scan = db.scan
    short = 0
    t0 = time.perf_counter()
    for start in starts:
        if len(list(scan(start=start, limit=SCAN_LENGTH))) < SCAN_LENGTH:
            short += 1
    return time.perf_counter() - t0, short


def ycsb_a_phase(db: shaledb.DB, rng: random.Random, n: int, ops: int) -> float:
    """Seconds for ``ops`` operations of YCSB A: half gets, half updates (puts of new
    values) of keys chosen by a zipfian over the loaded keys, drawn before timing."""
    if n < 2 or ops <= 0:
        return float("inf")
    zipf = Zipfian(n, rng)
    mix = [
        (key_of(zipf.next()), rng.randbytes(VALUE_BYTES) if rng.random() < 0.5 else None)
        for _ in range(ops)
    ]
    get, put = db.get, db.put
    t0 = time.perf_counter()
    for key, value in mix:
        if value is None:
            get(key)
        else:
            put(key, value)
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
