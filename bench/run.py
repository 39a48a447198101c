"""Benchmark ShaleDB's embedded engine against its peers in one process run.

    python -m bench.run [--quick] [--keys N] [--only name,...] [--output docs/benchmarks.md]

Stores that cannot be imported are skipped with a printed reason and listed in the
report. Each store works in its own directory under a temporary directory that is
removed at the end.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

from bench import report
from bench.engines import all_stores
from bench.workloads import Config, StoreRun, make_dataset

QUICK_KEYS = 20_000
FULL_KEYS = 1_000_000


def _log(text: str) -> None:
    print(text, flush=True)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def parse_args(argv: list[str]) -> argparse.Namespace:
    names = [s.name for s in all_stores()]
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick", action="store_true", help=f"{QUICK_KEYS:,} keys (default {FULL_KEYS:,})"
    )
    p.add_argument("--keys", type=int, help="number of keys (overrides --quick)")
    p.add_argument("--only", help=f"comma-separated stores to run, from: {', '.join(names)}")
    p.add_argument("--output", default="docs/benchmarks.md", help="markdown report to write")
    p.add_argument("--json", help="also write the raw results to this JSON file")
    p.add_argument("--seed", type=int, default=Config(keys=1).seed)
    p.add_argument("--workdir", help="where the stores' temporary directories go")
    p.add_argument(
        "--phase-limit",
        type=float,
        help="seconds after which a read/scan/YCSB/delete phase stops early "
        "(default 10 with --quick, else 30)",
    )
    p.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    args = p.parse_args(argv)
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            p.error(f"unknown store(s) {', '.join(unknown)}; known: {', '.join(names)}")
        args.only = wanted
    if args.keys is not None and args.keys < 100:
        p.error("--keys must be at least 100")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    keys = args.keys or (QUICK_KEYS if args.quick else FULL_KEYS)
    started = time.time()
    load_before = _load()

    stores, skipped = [], {}
    for store in all_stores():
        if args.only and store.name not in args.only:
            continue
        reason = store.available()
        if reason:
            skipped[store.name] = reason
            banner = f"!!! SKIPPING {store.name}: {reason}"
            _log("!" * len(banner))
            _log(banner)
            _log("!" * len(banner))
            continue
        stores.append(store)

    phase_limit = args.phase_limit or (10.0 if args.quick else 30.0)
    config = Config(keys=keys, seed=args.seed)
    _log(f"Generating {keys:,} keys (seed {config.seed}) ...")
    data = make_dataset(config)

    results: dict[str, Any] = {}
    workdir = tempfile.mkdtemp(prefix="shaledb-bench-", dir=args.workdir)
    try:
        for store in stores:
            _log(f"== {store.name}: {store.description}")
            results[store.name] = StoreRun(store, data, workdir, _log, phase_limit).run()
            gc.collect()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    run = {
        "command": "python -m bench.run" + ("" if not argv else " " + " ".join(argv)),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "elapsed": time.time() - started,
        "load_before": load_before,
        "load_after": _load(),
        "quick": args.quick or keys < FULL_KEYS,
        "config": vars(config),
        "phase_limit": phase_limit,
        "stores": [
            {
                "name": s.name,
                "description": s.description,
                "version": s.version(),
                "range_scans": s.RANGE_SCANS,
            }
            for s in stores
        ],
        "skipped": skipped,
        "results": results,
    }
    report.write(run, args.output, chart=not args.no_chart)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(run, f, indent=1, default=str)
    _log(f"Wrote {args.output} in {run['elapsed']:.0f} s")
    for name, reason in skipped.items():
        _log(f"!!! skipped {name}: {reason}")
    failures = [e for r in results.values() for e in r["errors"]]
    for e in failures:
        _log(f"!!! check failed: {e}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
