"""docs/benchmarks.md and its chart, from the results of one run of bench.run.

The "Scale run" section belongs to bench.scale and the "Network server" section to
bench/bench_network.py: each sits between two HTML comment markers, and writing the
main report keeps whatever is between them.
"""

from __future__ import annotations

import os
import platform
import re
import sqlite3
from typing import Any

from bench.workloads import PHASE_LABELS, PHASES, SCAN_LENGTH

#: Sections other scripts own, each kept between its two markers when the report is rewritten.
SECTIONS = {
    "scale-run": (
        "## Scale run\n\n"
        "Not run yet. `python -m bench.scale` (default 10,000,000 keys) loads ShaleDB alone, "
        "then writes its load rate, peak RSS, disk bytes and random-read rate here.\n"
    ),
    "scale-run-hashlog": (
        "## Scale run (hash-log engine)\n\n"
        "Not run yet. `python -m bench.scale --engine hashlog` loads the hash-log engine "
        "alone and writes its figures, with the index memory per key, here.\n"
    ),
    "analysis": (
        "## Where the time goes\n\n"
        "Profiles of the phases that miss their targets go here (written by hand from "
        "cProfile runs; see the closing notes of the engine issues).\n"
    ),
    "network": (
        "## Network server\n\n"
        "Not run yet. `python bench/bench_network.py --output docs/benchmarks.md` measures "
        "the server over the JSON-lines protocol and writes its figures here.\n"
    ),
    "redis": (
        "## Redis protocol\n\n"
        "Not run yet. `make bench-redis` runs redis-benchmark against ShaleDB and against "
        "redis-server in one run and writes the ratios here.\n"
    ),
}


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


SUBJECT = "shaledb"
#: The peer the targets are stated against.
BASELINE = "plyvel"
TARGET_KEYS = 1_000_000

#: (description, store, phase or "disk", peer, minimum ratio) or, for disk, the maximum.
#: The engine-speed targets (second step) for the LSM engine, and the hash-log engine's.
TARGETS: list[tuple[str, str, str, str, float]] = [
    ("random put >= 0.6x plyvel", SUBJECT, "random_put", "plyvel", 0.6),
    ("batched put >= 0.5x plyvel write_batch", SUBJECT, "batch_put", "plyvel", 0.5),
    ("random get (present) >= 0.6x plyvel", SUBJECT, "get", "plyvel", 0.6),
    ("get (absent) >= 0.8x plyvel", SUBJECT, "get_absent", "plyvel", 0.8),
    ("range scan (10 keys) >= 0.3x plyvel", SUBJECT, "scan_range", "plyvel", 0.3),
    ("YCSB E >= 0.4x plyvel", SUBJECT, "ycsb_e", "plyvel", 0.4),
    ("random delete >= 0.3x plyvel", SUBJECT, "delete", "plyvel", 0.3),
    *(
        (f"{label} >= 1.5x diskcache", SUBJECT, phase, "diskcache", 1.5)
        for label, phase in [
            ("random put", "random_put"),
            ("batched put", "batch_put"),
            ("random get (present)", "get"),
            ("get (absent)", "get_absent"),
            ("full scan", "scan_all"),
            ("YCSB A", "ycsb_a"),
            ("YCSB B", "ycsb_b"),
            ("YCSB C", "ycsb_c"),
            ("random delete", "delete"),
        ]
    ),
    ("disk bytes after random put + full compaction <= 1.3x raw", SUBJECT, "disk", "", 1.3),
    ("hash-log: random get (present) >= 1.0x plyvel", "shaledb-hashlog", "get", "plyvel", 1.0),
    ("hash-log: random put >= 0.6x plyvel", "shaledb-hashlog", "random_put", "plyvel", 0.6),
]


# -- machine ------------------------------------------------------------------------------


def _first_line(path: str, prefix: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def machine_info() -> dict[str, str]:
    mem = _first_line("/proc/meminfo", "MemTotal")
    if mem.endswith("kB"):
        mem = f"{int(mem.split()[0]) / 1024 / 1024:.1f} GiB"
    return {
        "CPU": _first_line("/proc/cpuinfo", "model name"),
        "cores (nproc)": str(os.cpu_count()),
        "memory": mem,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "SQLite": sqlite3.sqlite_version,
    }


# -- formatting -----------------------------------------------------------------------------


def _rate(x: float) -> str:
    return f"{x:,.0f}"


def _ratio(x: float) -> str:
    if x < 0.1:
        return f"{x:.2g}x"
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"


def _bytes(n: int) -> str:
    return f"{n / 1024 / 1024:,.1f} MiB"


def _table(header: list[str], rows: list[list[str]], numeric: bool = True) -> str:
    """A markdown table; ``numeric`` right-aligns every column but the first."""
    rest = "---:" if numeric else "---"
    rule = "|".join(["---"] + [rest] * (len(header) - 1))
    out = ["| " + " | ".join(header) + " |", f"|{rule}|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def rate_of(results: dict[str, Any], store: str, phase: str) -> float | None:
    r = results.get(store)
    if r is None or phase not in r["phases"]:
        return None
    return float(r["phases"][phase]["ops_per_s"])


def _cell(results: dict[str, Any], store: str, phase: str, supported: bool) -> str:
    rate = rate_of(results, store, phase)
    if rate is not None:
        return _rate(rate) + (" *" if results[store]["phases"][phase].get("partial") else "")
    return "error" if supported else "n/a"


# -- sections -------------------------------------------------------------------------------


def _targets(results: dict[str, Any], keys: int) -> str:
    lines = ["## Targets", ""]
    if keys != TARGET_KEYS:
        lines += [
            f"The targets are stated at {TARGET_KEYS:,} keys; this run used {keys:,}, so the "
            "verdicts below are indicative only.",
            "",
        ]
    rows = []
    for text, store, phase, peer, bound in TARGETS:
        if phase == "disk":
            r = results.get(store)
            if r is None or not r.get("disk_bytes"):
                rows.append([text, "not measured", "-"])
                continue
            ratio = r["disk_bytes"] / r["raw_bytes"]
            rows.append([text, f"{ratio:.2f}x raw", "yes" if ratio <= bound else "**no**"])
            continue
        mine, theirs = rate_of(results, store, phase), rate_of(results, peer, phase)
        if mine is None or theirs is None:
            rows.append([text, "not measured", "-"])
            continue
        ratio = mine / theirs
        rows.append([text, _ratio(ratio), "yes" if ratio >= bound else "**no**"])
    lines.append(_table(["target", "measured", "met"], rows, numeric=False))
    return "\n".join(lines)


def _latency(results: dict[str, Any], order: list[str]) -> str:
    lines = [
        "## Latency per operation (microseconds)",
        "",
        "A separate pass after the read phases: each operation timed alone with "
        "`time.perf_counter_ns` (overwrites of present keys, then gets of present keys; "
        "the sample count is in the last column). It includes the adapter call.",
        "",
    ]
    rows = []
    for name in order:
        lat = results[name].get("latency") or {}
        if not lat:
            continue
        row = [f"**{name}**" if name == SUBJECT else name]
        for op in ("put", "get"):
            p = lat.get(op, {})
            row += [f"{p[q]:.1f}" if q in p else "-" for q in ("p50", "p99", "p99.9")]
        row.append(f"{lat.get('get', {}).get('samples', 0):,}")
        rows.append(row)
    header = [
        "store",
        "put p50",
        "put p99",
        "put p99.9",
        "get p50",
        "get p99",
        "get p99.9",
        "samples",
    ]
    lines.append(_table(header, rows))
    return "\n".join(lines)


def _disk(results: dict[str, Any], order: list[str]) -> str:
    lines = [
        "## Disk bytes and write amplification",
        "",
        "Bytes allocated under the store's directory after the random put phase, the read "
        "phases and a full compaction where the store has one (ShaleDB `compact()`, "
        "LevelDB `compact_range()`, RocksDB `compact_range(None, None)`, SQLite `VACUUM` "
        "for sqlitedict; diskcache and LMDB have none). Raw bytes are keys plus values. "
        "Values are random bytes, so compression cannot help any store.",
        "",
    ]
    rows = []
    for name in order:
        r = results[name]
        if r.get("disk_bytes") is None:
            continue
        rows.append(
            [
                name,
                _bytes(r["disk_bytes"]),
                _bytes(r["raw_bytes"]),
                f"{r['disk_bytes'] / r['raw_bytes']:.2f}x",
            ]
        )
    lines.append(_table(["store", "on disk", "raw", "ratio"], rows))
    st = (results.get(SUBJECT) or {}).get("stats")
    if st:
        levels = ", ".join(
            f"L{lv['level']}: {lv['files']} files / {_bytes(lv['bytes'])}"
            for lv in st.get("levels", [])
            if lv["files"]
        )
        lines += [
            "",
            f"ShaleDB `stats()` after the compaction: write amplification "
            f"**{st.get('write_amplification')}** (bytes written by flushes and compactions "
            f"over bytes logged to the WAL); table bytes {_bytes(st.get('table_bytes', 0))}; "
            f"levels {levels or 'none'}; write stalls {st.get('write_stalls', 0)}, "
            f"slowdowns {st.get('write_slowdowns', 0)}.",
        ]
    return "\n".join(lines)


def _kept_section(name: str, existing: str | None) -> str:
    start, end = _markers(name)
    if existing and start in existing and end in existing:
        inner = existing.split(start, 1)[1].split(end, 1)[0].strip("\n")
        return f"{start}\n{inner}\n{end}"
    return f"{start}\n{SECTIONS[name]}{end}"


def replace_section(path: str, name: str, body: str) -> None:
    """Put ``body`` (markdown starting with its "## " heading) into section ``name`` of
    the report at ``path``, adding the section at the end if it is not there yet."""
    start, end = _markers(name)
    text = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _m: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# -- chart ----------------------------------------------------------------------------------


def write_chart(results: dict[str, Any], order: list[str], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = [p for p, _, _ in PHASES if any(rate_of(results, s, p) for s in order)]
    width = 0.85 / max(1, len(order))
    fig, ax = plt.subplots(figsize=(max(12, 1.5 * len(phases)), 6.5), dpi=110)
    cmap = plt.get_cmap("tab10")
    for i, store in enumerate(order):
        xs, ys = [], []
        for j, phase in enumerate(phases):
            rate = rate_of(results, store, phase)
            if rate:
                xs.append(j + (i - (len(order) - 1) / 2) * width)
                ys.append(rate)
        edge = "black" if store == SUBJECT else "none"
        ax.bar(xs, ys, width, label=store, color=cmap(i % 10), edgecolor=edge, linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xticks(range(len(phases)))
    ax.set_xticklabels([PHASE_LABELS[p] for p in phases], rotation=30, ha="right", fontsize=9)
    ax.set_ylabel("operations per second (log scale)")
    ax.set_title(title)
    ax.grid(axis="y", which="major", alpha=0.4)
    ax.legend(ncol=min(5, len(order)), fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.3))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- the document ---------------------------------------------------------------------------


def render(run: dict[str, Any], existing: str | None, chart_name: str | None) -> str:
    results: dict[str, Any] = run["results"]
    order = [s["name"] for s in run["stores"] if s["name"] in results]
    cfg = run["config"]
    keys = cfg["keys"]
    mode = "quick mode" if run["quick"] else "full mode"
    out: list[str] = [
        "# ShaleDB benchmarks",
        "",
        f"ShaleDB's embedded engine against its peers, all in one process run ({mode}, "
        f"{keys:,} keys). Regenerate with `make bench` (full) or `make bench-quick`.",
        "",
    ]
    if run["quick"]:
        out += [
            f"> **Quick mode**: {keys:,} keys only. Most data sets fit in every store's "
            "memory buffers, so these numbers say little about behaviour at scale.",
            "",
        ]
    out += [
        f"- Command: `{run['command']}`",
        f"- Date: {run['date']} (run took {run['elapsed']:.0f} s)",
        f"- Load average before / after: {run['load_before']} / {run['load_after']} "
        "(other work on the machine makes timings noisy)",
        "",
        "## Machine",
        "",
        _table(["", ""], [[k, v] for k, v in machine_info().items()], numeric=False),
        "",
        "## Stores",
        "",
        _table(
            ["store", "what", "version"],
            [[s["name"], s["description"], s["version"]] for s in run["stores"]],
            numeric=False,
        ),
        "",
    ]
    if run["skipped"]:
        out += ["**Skipped stores:**", ""]
        out += [f"- `{name}`: {reason}" for name, reason in run["skipped"].items()]
        out.append("")
    out += [
        "## Workload",
        "",
        f"- {keys:,} distinct random 16-byte keys, 100-byte random values (raw "
        f"{_bytes(keys * 116)}), seed {cfg['seed']}; the same keys and operation sequences "
        "for every store.",
        f"- Gets: {cfg['read_ops']:,} present keys chosen uniformly, then {cfg['read_ops']:,} "
        f"absent keys; range scans: {cfg['scan_ops']:,} scans of {SCAN_LENGTH} keys from "
        f"random present keys; deletes: {cfg['delete_ops']:,} random present keys.",
        f"- YCSB-style mixes: {cfg['ycsb_ops']:,} operations each over the loaded keys, key "
        "choice zipfian (theta 0.99); E scans 1 to 10 keys and inserts new keys.",
        "- Each rate is operations over the wall time of the whole phase (full scan: pairs "
        "per second). Reads run after `settle()`: ShaleDB `flush()`, RocksDB `flush()`, "
        "LevelDB close and reopen, LMDB `sync()`, sqlitedict `commit()`.",
        "- No store fsyncs each write (ShaleDB fsyncs every second; LMDB runs with "
        "`sync=False`; LevelDB and RocksDB defaults; sqlitedict commits once per write "
        "phase). LMDB uses one write transaction per put and one read transaction per get.",
        "- Phases group as: sequential put on a fresh directory; random put, reads, "
        "compaction, latencies, YCSB, delete on a second; batched put on a third.",
        "",
        "## Throughput (operations per second)",
        "",
    ]
    supported = {s["name"]: s["range_scans"] for s in run["stores"]}
    rows = []
    for phase, label, _ in PHASES:
        row = [label]
        for name in order:
            scan_phase = phase in ("scan_range", "ycsb_e")
            row.append(_cell(results, name, phase, supported[name] or not scan_phase))
        rows.append(row)
    out += [_table(["phase"] + [f"**{n}**" if n == SUBJECT else n for n in order], rows), ""]
    partial = [
        f"{name} {PHASE_LABELS[phase]} ({r['ops']:,} of {r['planned']:,} operations)"
        for name in order
        for phase, r in results[name]["phases"].items()
        if r.get("partial")
    ]
    if partial:
        out += [
            f"\\* Stopped at the {run['phase_limit']:.0f} s phase limit, rate over the "
            "operations done: " + "; ".join(partial) + ".",
            "",
        ]
    out += ["n/a: the store has no ordered seek in its API (its YCSB E is not run either).", ""]

    peers = [n for n in order if n != SUBJECT]
    if SUBJECT in results and peers:
        out += [
            "## ShaleDB relative to each peer",
            "",
            "ShaleDB's ops/s divided by the peer's: above 1 means ShaleDB was faster.",
            "",
        ]
        rows = []
        for phase, label, _ in PHASES:
            mine = rate_of(results, SUBJECT, phase)
            row = [label]
            for peer in peers:
                theirs = rate_of(results, peer, phase)
                row.append(_ratio(mine / theirs) if mine and theirs else "-")
            rows.append(row)
        out += [_table(["phase"] + peers, rows), ""]

    out += [_latency(results, order), "", _disk(results, order), ""]
    if chart_name:
        out += [
            "## Chart",
            "",
            f"![Operations per second per phase and store, log scale]({chart_name})",
            "",
        ]
    out += [_targets(results, keys), ""]

    errors = [e for n in order for e in results[n]["errors"]]
    out += ["## Correctness checks", ""]
    if errors:
        out += ["Checks that failed during this run:", ""] + [f"- {e}" for e in errors]
    else:
        out.append(
            "Every store passed the run's checks (present keys found with the right "
            "values, absent keys missing, scans complete and in order, range scans "
            "equal to the expected pairs, deleted keys gone)."
        )
    for name in SECTIONS:
        out += ["", _kept_section(name, existing), ""]
    return "\n".join(out)


def write(run: dict[str, Any], output: str, chart: bool = True) -> None:
    existing = None
    if os.path.exists(output):
        with open(output, encoding="utf-8") as f:
            existing = f.read()
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    chart_name = None
    if chart:
        chart_path = os.path.splitext(output)[0] + ".png"
        mode = "quick" if run["quick"] else "full"
        order = [s["name"] for s in run["stores"] if s["name"] in run["results"]]
        write_chart(
            run["results"],
            order,
            chart_path,
            f"ShaleDB and peers, {run['config']['keys']:,} keys ({mode} mode)",
        )
        chart_name = os.path.basename(chart_path)
    with open(output, "w", encoding="utf-8") as f:
        f.write(render(run, existing, chart_name))
