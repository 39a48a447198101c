"""redis-benchmark against ShaleDB and against redis-server, in one run.

Starts ``shaledb serve`` (LSM engine, fsync ``everysec``) and ``redis-server``
(``appendonly yes``, ``appendfsync everysec``, no RDB snapshots: each makes every
write durable in its log within about a second), both on temporary directories and
free loopback ports, then runs

    redis-benchmark -t set,get,incr,mset -n N -c 50 -P P

for P = 1 and P = 16 against each and writes requests per second and the ratios to
the "Redis protocol" section of docs/benchmarks.md (``--output``).

    python bench/bench_redis.py                     # N = 200000, as the issue states
    python bench/bench_redis.py --requests 20000    # a quick look, nothing written
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import replace_section  # noqa: E402

TESTS = ("SET", "GET", "INCR", "MSET (10 keys)")
PIPELINES = (1, 16)
#: The targets of the issue: ShaleDB / redis-server at least this, per pipeline depth.
TARGETS = {1: 0.35, 16: 0.2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def program(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        sys.exit(f"{name} is not installed: apt-get install redis-tools redis-server")
    return path


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"server on port {port} did not answer PING")


def start_shaledb(workdir: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shaledb.cli.main",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            os.path.join(workdir, "shaledb"),
            "--fsync",
            "everysec",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    wait_ready(port, proc)
    return proc, port


def start_redis(workdir: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    data = os.path.join(workdir, "redis")
    os.makedirs(data)
    proc = subprocess.Popen(
        [
            program("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            data,
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    wait_ready(port, proc)
    return proc, port


def run_benchmark(port: int, requests: int, pipeline: int) -> dict[str, float]:
    done = subprocess.run(
        [
            program("redis-benchmark"),
            "-p",
            str(port),
            "-t",
            "set,get,incr,mset",
            "-n",
            str(requests),
            "-c",
            "50",
            "-P",
            str(pipeline),
            "--csv",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    rates: dict[str, float] = {}
    for row in csv.reader(io.StringIO(done.stdout)):
        if row and row[0] in TESTS:
            rates[row[0]] = float(row[1])
    return rates


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def render(results: dict[tuple[str, int], dict[str, float]], requests: int) -> str:
    version = subprocess.run(
        [program("redis-server"), "--version"], capture_output=True, text=True
    ).stdout.split()[2]
    lines = [
        "## Redis protocol",
        "",
        "`redis-benchmark -t set,get,incr,mset -n {n} -c 50 -P 1|16` against `shaledb serve` "
        "(LSM, `--fsync everysec`) and against Debian's `redis-server` {v} started in the same "
        "run (`appendonly yes`, `appendfsync everysec`, no RDB snapshots: both log every write "
        "and fsync the log once a second). Both on loopback, on the same {cpus} cores as the "
        "benchmark client.".format(
            n=f"{requests:,}", v=version.replace("v=", ""), cpus=os.cpu_count()
        ),
        "",
        f"- Command: `python bench/bench_redis.py --requests {requests} "
        "--output docs/benchmarks.md`",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"Python {platform.python_version()}",
        "",
        "| test | pipeline | ShaleDB req/s | redis-server req/s | ratio | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for pipeline in PIPELINES:
        for test in TESTS:
            ours = results[("shaledb", pipeline)].get(test, 0.0)
            theirs = results[("redis", pipeline)].get(test, 0.0)
            ratio = ours / theirs if theirs else 0.0
            target = TARGETS[pipeline]
            verdict = f">= {target}x: {'met' if ratio >= target else 'missed'}"
            lines.append(
                f"| {test} | {pipeline} | {ours:,.0f} | {theirs:,.0f} | {ratio:.2f}x | {verdict} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--output", help="write the section into this markdown file")
    args = parser.parse_args()
    results: dict[tuple[str, int], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir:
        for name, start in (("shaledb", start_shaledb), ("redis", start_redis)):
            proc, port = start(workdir)
            try:
                for pipeline in PIPELINES:
                    results[(name, pipeline)] = run_benchmark(port, args.requests, pipeline)
                    print(name, f"-P {pipeline}", results[(name, pipeline)], flush=True)
            finally:
                stop(proc)
    body = render(results, args.requests)
    print(body)
    if args.output:
        replace_section(args.output, "redis", body)


if __name__ == "__main__":
    main()
