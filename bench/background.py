"""Where flush and compaction run: the table worker process against the background thread.

For each mode (``Options.background_process`` True, "worker", and False, "thread") a
fresh Python process opens a new database with default options otherwise and times:

- ``--puts`` random puts (16-byte keys in random order, 100-byte values) from one
  thread: wall time, that thread's CPU (``time.thread_time``), the process's CPU
  (``time.process_time``), the worker's CPU (from ``/proc``), and the put rate;
- then waits for background work (``flush``, and until no level-0 compaction is due),
  and times random gets of present keys and one full scan.

``--shipping`` times what a flush costs the engine process in worker mode (the engine
marshals the memtable's dict, the worker sorts it; ``--shipping-entries`` entries),
what pickling the entries themselves would cost instead, and the same table built
in-process.

Usage: ``python -m bench.background [--puts 1000000] [--modes worker,thread]
[--shipping]`` (or ``make bench-background``).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

KEY_BYTES = 16
VALUE_BYTES = 100
GETS = 200_000
SEED = 7


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU of process ``pid`` so far (0 when there is none)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_mode(background_process: bool, puts: int) -> dict[str, Any]:
    """One mode's figures, measured in this process (call it in a fresh one)."""
    import shaledb
    from shaledb.engine import table_worker

    rng = random.Random(SEED)
    keys = [rng.randbytes(KEY_BYTES) for _ in range(puts)]
    value = rng.randbytes(VALUE_BYTES)
    directory = tempfile.mkdtemp(prefix="shaledb-bench-background-")
    try:
        db = shaledb.open(directory, background_process=background_process)
        put = db.put
        workers = (table_worker.for_flushes, table_worker.for_compactions)
        worker_cpu = sum(_cpu_seconds(w.pid) for w in workers)
        wall, thread, process = time.perf_counter(), time.thread_time(), time.process_time()
        for key in keys:
            put(key, value)
        wall = time.perf_counter() - wall
        thread = time.thread_time() - thread
        process = time.process_time() - process
        worker_cpu = sum(_cpu_seconds(w.pid) for w in workers) - worker_cpu
        settle = time.perf_counter()
        db.flush()
        # Reads are timed once no compaction is due, in both modes alike.
        trigger = shaledb.Options().l0_compaction_trigger
        while db.stats()["levels"][0]["files"] >= trigger:
            time.sleep(0.05)
        settle = time.perf_counter() - settle
        stats = db.stats()
        present = rng.sample(keys, min(GETS, len(keys)))
        get = db.get
        gets = time.perf_counter()
        for key in present:
            get(key)
        gets = time.perf_counter() - gets
        scan = time.perf_counter()
        scanned = sum(1 for _ in db.scan())
        scan = time.perf_counter() - scan
        db.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "mode": "worker" if background_process else "thread",
        "puts": puts,
        "put_wall_s": round(wall, 2),
        "put_thread_cpu_s": round(thread, 2),
        "put_process_cpu_s": round(process, 2),
        "put_worker_cpu_s": round(worker_cpu, 2),
        "puts_per_s": round(puts / wall),
        "flush_after_s": round(settle, 2),
        "flushes": stats["flushes"],
        "compactions": stats["compactions"],
        "worker_jobs": stats["worker_jobs"],
        "write_stalls": stats["write_stalls"],
        "write_slowdowns": stats["write_slowdowns"],
        "gets_per_s": round(len(present) / gets),
        "scan_entries_per_s": round(scanned / scan),
    }


def shipping(entries: int) -> dict[str, Any]:
    """What a flush of ``entries`` entries costs the engine process in worker mode: the
    entries pickled as lists (the plain way) and as a packed memtable (what the engine
    sends), a whole flush job in the worker, and the same table built in-process."""
    from shaledb.engine import table_worker
    from shaledb.engine.fs import FileSystem
    from shaledb.engine.memtable import MemTable
    from shaledb.engine.table_writer import TableOutputs, TableSettings
    from shaledb.engine.version_edit import TableFile
    from shaledb.options import Options

    rng = random.Random(SEED)
    keys = sorted({rng.randbytes(KEY_BYTES) for _ in range(entries)})
    columns = (keys, bytes(len(keys)), [rng.randbytes(VALUE_BYTES) for _ in keys])
    mem = MemTable(1)
    for key, value in zip(keys, columns[2]):
        mem.put(key, 0, 0, value)
    settings = TableSettings.of(Options())
    directory = tempfile.mkdtemp(prefix="shaledb-bench-shipping-")

    def cpu(call: Any) -> tuple[float, Any]:
        started = time.thread_time()
        result = call()
        return time.thread_time() - started, result

    try:

        def job(number: int) -> table_worker.FlushJob:
            packed = table_worker.PackedMemTable.of(mem)
            return table_worker.FlushJob(
                FileSystem(), directory, settings, number, (1, len(keys)), packed
            )

        table_worker.for_flushes.run(job(1), lambda: False)  # the worker started before timing
        lists_cpu, lists = cpu(lambda: pickle.dumps(columns, pickle.HIGHEST_PROTOCOL))
        packed_cpu, packed = cpu(
            lambda: pickle.dumps(table_worker.PackedMemTable.of(mem), pickle.HIGHEST_PROTOCOL)
        )
        started = time.perf_counter()
        engine_cpu, _ = cpu(lambda: table_worker.for_flushes.run(job(2), lambda: False))
        in_worker = time.perf_counter() - started
        writer: TableOutputs[TableFile] = TableOutputs(
            FileSystem(), directory, settings, lambda: 3, lambda table: table
        )
        started = time.perf_counter()
        writer.write_columns(columns, (1, len(keys)))
        in_process = time.perf_counter() - started
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "entries": len(keys),
        "lists_pickle_cpu_s": round(lists_cpu, 3),
        "lists_mib": round(len(lists) / 2**20, 1),
        "packed_pickle_cpu_s": round(packed_cpu, 3),
        "packed_mib": round(len(packed) / 2**20, 1),
        "flush_in_worker_wall_s": round(in_worker, 3),
        "flush_in_worker_engine_cpu_s": round(engine_cpu, 3),
        "flush_in_process_s": round(in_process, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--puts", type=int, default=1_000_000)
    parser.add_argument("--modes", default="thread,worker")
    parser.add_argument("--shipping", action="store_true")
    parser.add_argument("--shipping-entries", type=int, default=240_000)
    parser.add_argument("--child", choices=["worker", "thread"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_mode(args.child == "worker", args.puts)))
        return
    for mode in args.modes.split(","):
        out = subprocess.run(
            [sys.executable, "-m", "bench.background", "--child", mode, "--puts", str(args.puts)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        print(out.strip(), flush=True)
    if args.shipping:
        print(json.dumps(shipping(args.shipping_entries)), flush=True)


if __name__ == "__main__":
    main()
