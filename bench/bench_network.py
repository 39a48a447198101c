"""Requests per second and latency of put and get over the JSON-lines protocol.

Starts ``shaledb serve`` on a temporary directory (or uses ``--port`` of a running
server), then for 1 and 50 concurrent connections, without pipelining (one request
in flight per connection) and with pipelining (``--depth`` requests written at once),
runs a bounded number of puts, then gets of the same keys. Loopback only.

Latency is measured per request from the moment its batch was written to the moment
its reply line arrived, so pipelined latencies include queueing behind the batch.

    python bench/bench_network.py                       # defaults: 20000 requests each
    python bench/bench_network.py --requests 50000 --fsync always
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    op: str
    clients: int
    depth: int
    requests: int
    seconds: float
    latencies: list[float]

    def row(self) -> str:
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2] * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        rate = self.requests / self.seconds
        return (
            f"{self.op:<4} {self.clients:>7} {self.depth:>8} {self.requests:>9} "
            f"{rate:>11,.0f} {p50:>9.3f} {p99:>9.3f}"
        )


HEADER = (
    f"{'op':<4} {'clients':>7} {'pipeline':>8} {'requests':>9} {'req/s':>11} "
    f"{'p50 ms':>9} {'p99 ms':>9}"
)


async def _connection(
    host: str, port: int, lines: list[bytes], depth: int, latencies: list[float]
) -> None:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
    ok = b'{"status":"ok"'
    for i in range(0, len(lines), depth):
        batch = lines[i : i + depth]
        started = time.perf_counter()
        writer.write(b"".join(batch))
        for _ in batch:
            reply = await reader.readline()
            latencies.append(time.perf_counter() - started)
            if not reply.startswith(ok):
                raise RuntimeError(f"server error: {reply[:200]!r}")
    writer.close()
    await writer.wait_closed()


def _requests(op: str, client: int, count: int, value: str) -> list[bytes]:
    if op == "put":
        return [
            orjson.dumps({"command": "put", "key": f"bench:{client}:{i}", "value": value}) + b"\n"
            for i in range(count)
        ]
    return [
        orjson.dumps({"command": "get", "key": f"bench:{client}:{i}"}) + b"\n" for i in range(count)
    ]


async def _scenario(
    host: str, port: int, op: str, clients: int, depth: int, total: int, value: str
) -> Result:
    per_client = max(1, total // clients)
    work = [_requests(op, c, per_client, value) for c in range(clients)]
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, lines, depth, latencies) for lines in work))
    seconds = time.perf_counter() - started
    return Result(op, clients, depth, per_client * clients, seconds, latencies)


def _start_server(data_dir: str, fsync: str) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shaledb.cli.main",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            data_dir,
            "--fsync",
            fsync,
            "--log-level",
            "warning",
        ],
        env=env,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("the server failed to start") from None
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the server did not start listening")


async def _run(args: argparse.Namespace, host: str, port: int) -> list[Result]:
    value = "v" * args.value_size
    results = []
    print(HEADER)
    for clients in (1, 50):
        for depth in (1, args.depth):
            for op in ("put", "get"):
                result = await _scenario(host, port, op, clients, depth, args.requests, value)
                print(result.row(), flush=True)
                results.append(result)
    return results


def _markdown(args: argparse.Namespace, runs: dict[str, list[Result]]) -> str:
    import datetime
    import platform

    lines = [
        "## Network server",
        "",
        "`shaledb serve` in its own process, clients in this one, over loopback, both on the "
        f"same {os.cpu_count()} cores; {args.value_size}-byte values; puts then gets of the "
        "same keys; latency from writing a request (or its pipelined batch) to reading its "
        "reply.",
        "",
        f"- Command: `python bench/bench_network.py --fsync {','.join(runs)} "
        f"--requests {args.requests} --depth {args.depth} --output {args.output}`",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"Python {platform.python_version()}",
    ]
    for mode, results in runs.items():
        lines += [
            "",
            f"fsync `{mode}`:",
            "",
            "| op | clients | pipeline | requests | req/s | p50 ms | p99 ms |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results:
            lat = sorted(r.latencies)
            p50 = lat[len(lat) // 2] * 1000
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
            lines.append(
                f"| {r.op} | {r.clients} | {r.depth} | {r.requests:,} | "
                f"{r.requests / r.seconds:,.0f} | {p50:.3f} | {p99:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="per scenario")
    parser.add_argument("--depth", type=int, default=32, help="pipelined requests in flight")
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument(
        "--fsync",
        default="everysec",
        help="fsync mode of the server, or several separated by commas (always,everysec,never)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="use a running server")
    parser.add_argument("--output", help="also write the figures into this report's section")
    args = parser.parse_args()
    modes = args.fsync.split(",")
    bad = [m for m in modes if m not in ("always", "everysec", "never")]
    if bad:
        parser.error(f"--fsync takes always, everysec or never; got {', '.join(bad)}")
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    if args.port:
        runner(_run(args, args.host, args.port))
        return
    runs: dict[str, list[Result]] = {}
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="shaledb-bench-") as data_dir:
            proc, port = _start_server(data_dir, mode)
            print(
                f"server: fsync={mode}, value {args.value_size} bytes, "
                f"{os.cpu_count()} CPUs (client and server share them)"
            )
            try:
                runs[mode] = runner(_run(args, "127.0.0.1", port))
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    if args.output:
        sys.path.insert(0, str(ROOT))
        from bench.report import replace_section

        replace_section(args.output, "network", _markdown(args, runs))
        print(f"Wrote the Network server section of {args.output}")


if __name__ == "__main__":
    main()
