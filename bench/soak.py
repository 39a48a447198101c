"""Soak: many clients over a real server that is SIGKILLed and restarted at random.

Starts ``shaledb serve`` on a free port with ``--data-dir`` in a temporary directory,
runs ``--clients`` clients (threads, or threads in ``--processes`` processes), each a
``shaledb.KVClient`` doing a mixed workload (put, put with a TTL, get, delete,
batch_put, get_range) on a small key space of its own, and kills the server with
SIGKILL every ``--kill-interval`` seconds, restarting it on the same directory. Clients
reconnect and go on. Every reply is checked against a model (bench/soak_model.py): an
acknowledged write stays visible until the next write to its key, a write in flight
at a kill may or may not have happened (a later read tells which, and it must be one
of the two), a TTL'd value is never gone before its expiry and never seen after it.

At the end every client stops, the server is killed once more and restarted, and
every key is read back and checked; then the server is stopped with SIGTERM (it must
exit 0) and ``shaledb check`` must find the directory healthy.

    python -m bench.soak --duration 600 --clients 16 --fsync everysec
    python -m bench.soak --duration 600 --fsync everysec,always --output docs/reliability.md

Why each client owns its keys: the server runs requests of different connections on
a pool of threads, so the engine still sees concurrent writers (group commit,
memtable, flush and compaction under load), while the writes to any one key come from
one client in order. That keeps the model exact; shared keys would need a
linearizability checker over concurrent histories, which would accept more.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as bench/soak.py as well as python -m bench.soak
    sys.path.insert(0, str(ROOT))

import shaledb  # noqa: E402
from bench.soak_client import (  # noqa: E402
    MIX,
    START_TIMEOUT,
    ClientStats,
    Config,
    Generations,
    run_clients,
    run_process,
)

#: Seconds between a kill and the restart (clients see the server down).
DOWNTIME = 0.2

# -- the server ----------------------------------------------------------------------------


class Server:
    """``shaledb serve`` on one data directory, started again after every kill."""

    def __init__(self, workdir: Path, fsync: str, cfg: Config) -> None:
        self.data_dir = workdir / "data"
        self.workdir = workdir
        self.fsync = fsync
        self.cfg = cfg
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = workdir / "server-0.log"
        self.start_seconds: list[float] = []
        self.exited_alone: list[str] = []
        #: Kills while starting (--early-kills), and how many came before it listened.
        self.early_kills = 0
        self.early_kills_in_recovery = 0
        #: Engine counters summed over the server's lives, read just before each kill.
        self.work: Counter[str] = Counter()

    def start(self, kill_after: float | None = None) -> None:
        """Spawn the server and wait until it listens; with ``kill_after``, SIGKILL it
        that many seconds after the spawn instead (in recovery, if it is not up yet)."""
        self.starts += 1
        self.log_path = self.workdir / f"server-{self.starts}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env.pop("SHALEDB_PASSWORD", None)
        args = [
            sys.executable,
            "-m",
            "shaledb.cli.main",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--fsync",
            self.fsync,
            "--log-level",
            "info",
        ]
        if self.cfg.memtable_size:
            args += ["--memtable-size", str(self.cfg.memtable_size)]
        args += self.cfg.server_args
        began = time.time()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env, cwd=ROOT)
        ready = f"listening on 127.0.0.1:{self.port} "
        if kill_after is not None:
            time.sleep(kill_after)
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            self.early_kills += 1
            self.early_kills_in_recovery += ready not in self.log()
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            return
        while time.time() < began + START_TIMEOUT:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if ready in self.log():
                self.start_seconds.append(time.time() - began)
                return
            time.sleep(0.02)
        self.proc.kill()
        raise RuntimeError(f"server did not start listening:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        assert self.proc is not None
        try:
            with shaledb.KVClient("127.0.0.1", self.port, timeout=5.0) as client:
                stats = client.stats()
            self.work.update({k: int(stats.get(k, 0)) for k in ("flushes", "compactions")})
        except shaledb.ShaleDBError:
            pass  # counted as far as known; the kill matters, not the figure
        if self.proc.poll() is not None:
            self.exited_alone.append(
                f"start {self.starts}: exit {self.proc.returncode}: " + self.log()[-2000:]
            )
        else:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


# -- one run -------------------------------------------------------------------------------


@dataclass
class RunResult:
    fsync: str
    cfg: Config
    seconds: float
    restarts: int
    stats: ClientStats
    start_seconds: list[float]
    exited_alone: list[str]
    work: dict[str, int]
    early_kills: tuple[int, int]
    stop_status: int
    check_status: int
    check_output: str

    @property
    def operations(self) -> int:
        return sum(self.stats.acked.values()) + sum(self.stats.no_reply.values())

    @property
    def ok(self) -> bool:
        return (
            self.stats.mismatches == 0
            and not self.exited_alone
            and self.stop_status == 0
            and self.check_status == 0
            and self.stats.final_keys == self.cfg.clients * self.cfg.keys
        )

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        # asdict rebuilds a Counter from (key, value) pairs, counting the pairs.
        d["stats"]["acked"] = dict(self.stats.acked)
        d["stats"]["no_reply"] = dict(self.stats.no_reply)
        d["operations"] = self.operations
        d["ok"] = self.ok
        return d


def run(cfg: Config, fsync: str, log: Any = print) -> RunResult:
    ctx = mp.get_context("spawn")
    gens = Generations(ctx)
    rng = random.Random(cfg.seed)
    workdir = Path(tempfile.mkdtemp(prefix="shaledb-soak-"))
    server = Server(workdir, fsync, cfg)
    keep = False
    try:
        gens.started.value = 1
        server.start()
        began = time.time()
        end = began + cfg.duration
        groups = [list(range(cfg.clients))]
        if cfg.processes:
            groups = [list(range(cfg.clients))[i :: cfg.processes] for i in range(cfg.processes)]
        queue = ctx.Queue()
        stats = ClientStats()
        workers: list[Any] = []
        client_thread = None
        failures: list[str] = []
        if cfg.processes:
            for cids in groups:
                p = ctx.Process(target=run_process, args=(cids, cfg, server.port, gens, end, queue))
                p.start()
                workers.append(p)
        else:

            def threads() -> None:
                try:
                    stats.merge(run_clients(groups[0], cfg, server.port, gens, end))
                except BaseException as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")

            client_thread = threading.Thread(target=threads, daemon=True)
            client_thread.start()
        restarts = 0
        while True:
            pause = rng.uniform(cfg.kill_min, cfg.kill_max)
            if time.time() + pause >= end:
                break
            time.sleep(pause)
            server.kill()
            gens.dead.value = gens.started.value
            restarts += 1
            time.sleep(DOWNTIME)
            while rng.random() < cfg.early_kills:
                # Killed again while it opens the directory: recovery must survive that.
                gens.started.value += 1
                typical = server.start_seconds[-1] if server.start_seconds else 0.5
                server.start(kill_after=rng.uniform(0, typical))
                gens.dead.value = gens.started.value
            gens.started.value += 1
            server.start()
            log(
                f"  {time.time() - began:6.1f} s: kill -9 #{restarts}, back in "
                f"{server.start_seconds[-1]:.2f} s"
            )
        # The end: wait for every client to stop, then one last kill and a full read-back.
        while gens.parked.value < cfg.clients and time.time() < end + 2 * START_TIMEOUT:
            time.sleep(0.05)
        seconds = time.time() - began
        server.kill()
        gens.dead.value = gens.started.value
        restarts += 1
        gens.started.value += 1
        server.start()
        gens.final.set()
        if cfg.processes:
            for _ in workers:
                status, payload = queue.get(timeout=4 * START_TIMEOUT)
                if status == "ok":
                    stats.merge(payload)
                else:
                    failures.append(payload)
            for p in workers:
                p.join(START_TIMEOUT)
        else:
            assert client_thread is not None
            client_thread.join(4 * START_TIMEOUT)
        if failures:
            raise RuntimeError("a client failed: " + "; ".join(failures))
        stop_status = server.stop()
        check = subprocess.run(
            [sys.executable, "-m", "shaledb.cli.main", "check", str(server.data_dir)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=600,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        result = RunResult(
            fsync,
            cfg,
            seconds,
            restarts,
            stats,
            server.start_seconds,
            server.exited_alone,
            dict(server.work),
            (server.early_kills, server.early_kills_in_recovery),
            stop_status,
            check.returncode,
            (check.stdout + check.stderr)[-2000:],
        )
        keep = not result.ok
        return result
    except BaseException:
        keep = True
        raise
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
        if keep:
            log(f"kept the data directory and server logs in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# -- reporting -----------------------------------------------------------------------------


def _text(r: RunResult) -> str:
    s = r.stats
    kinds = ", ".join(f"{k} {s.acked[k]:,}" for k in (*MIX, "batch_check") if s.acked[k])
    lost = sum(s.no_reply.values())
    lines = [
        f"fsync {r.fsync}: {r.seconds:.0f} s, {r.cfg.clients} clients, "
        f"{r.operations:,} operations ({r.operations / r.seconds:,.0f}/s)",
        f"  acknowledged: {kinds}",
        f"  no reply (in flight at a kill): {lost:,} ({dict(s.no_reply)})",
        f"  in-flight writes a read later showed applied: {s.in_flight_applied}, "
        f"not applied: {s.in_flight_not_applied}; batches checked whole: {s.batch_checks}",
        f"  restarts: {r.restarts} (kill -9), reconnects: {s.reconnects}, "
        f"restart time: mean {sum(r.start_seconds) / len(r.start_seconds):.2f} s, "
        f"max {max(r.start_seconds):.2f} s",
        f"  kills while starting: {r.early_kills[0]} ({r.early_kills[1]} before it listened)",
        f"  engine work seen before the kills: {r.work.get('flushes', 0)} flushes, "
        f"{r.work.get('compactions', 0)} compactions",
        f"  error replies: {s.error_replies}, final read-back: {s.final_keys:,} keys, "
        f"SIGTERM exit: {r.stop_status}, shaledb check exit: {r.check_status}",
        f"  MISMATCHES: {s.mismatches}",
    ]
    lines += [f"    {m}" for m in s.mismatch_samples]
    lines += [f"    error: {e}" for e in s.error_samples]
    lines += [f"    server exited by itself: {e}" for e in r.exited_alone]
    if r.check_status:
        lines.append(f"    shaledb check: {r.check_output}")
    return "\n".join(lines)


def _markdown(command: str, results: list[RunResult]) -> str:
    import datetime

    cfg = results[0].cfg
    how = f"threads in {cfg.processes} processes" if cfg.processes else "threads"
    lines = [
        "## Soak",
        "",
        "`bench/soak.py` runs many clients against a real `shaledb serve` process and kills "
        "that process with SIGKILL at random, restarting it on the same directory, while "
        "every reply is checked against a model of what each key may hold "
        "(`bench/soak_model.py`):",
        "",
        "- an acknowledged write is visible afterwards, in every fsync mode, until the "
        "client's next acknowledged write to that key (kill -9 of the process loses nothing "
        "acknowledged: the log write reaches the OS before the reply);",
        "- a write in flight when the server died may or may not have happened; the next "
        "read of the key must show one of the two, and then settles it. A batch in flight "
        "is read back whole at once: applied to all its keys or to none;",
        "- every `get` and `get_range` result must be allowed by the model (ranges: sorted, "
        "inside their bounds, no key that was never written, every key's value allowed);",
        "- a value written with a TTL is never gone before `sent + ttl` and never seen after "
        f"`acknowledged + ttl` (both widened by {cfg.slack} s);",
        "- a `delete` that reports an existing key must have found one the model allows;",
        "- after the run: one more kill -9, restart, every key read back and checked; then "
        "SIGTERM (exit status 0) and `shaledb check` on the directory (exit 0).",
        "",
        f"Workload: {cfg.clients} clients ({how}), "
        f"each on its own {cfg.keys} keys so that keys are overwritten and deleted "
        "all the time (one owner per key keeps the model exact, while the server's worker "
        "threads still run the clients' requests concurrently); mix "
        + ", ".join(f"{k} {w}%" for k, w in MIX.items())
        + f"; values up to {cfg.value_size} bytes (1% of 8-40 kB); TTLs {cfg.ttl_min}-"
        f"{cfg.ttl_max} s; server with `--memtable-size {cfg.memtable_size}` so that flushes "
        f"and compactions run throughout; a kill every {cfg.kill_min:g}-{cfg.kill_max:g} s.",
        "",
        f"- Command: `{command}` (`make soak` runs the ten-minute pair; "
        "`tests/integration/test_soak_smoke.py` runs ten seconds of it in `make test`)",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"Python {platform.python_version()}; {os.cpu_count()} CPUs shared by server and clients",
        "",
        "| fsync | seconds | operations | ops/s | kills (final one included) | reconnects | "
        "no reply | in flight: applied / not | batches checked | final keys | "
        "mismatches |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r.stats
        lines.append(
            f"| {r.fsync} | {r.seconds:.0f} | {r.operations:,} | {r.operations / r.seconds:,.0f} | "
            f"{r.restarts} | {s.reconnects:,} | {sum(s.no_reply.values()):,} | "
            f"{s.in_flight_applied:,} / {s.in_flight_not_applied:,} | {s.batch_checks:,} | "
            f"{s.final_keys:,} | **{s.mismatches}** |"
        )
    lines += [
        "",
        "Operations acknowledged, by kind:",
        "",
        "| fsync | " + " | ".join(MIX) + " |",
        "|---|" + "---:|" * len(MIX),
    ]
    for r in results:
        lines.append(f"| {r.fsync} | " + " | ".join(f"{r.stats.acked[k]:,}" for k in MIX) + " |")
    lines.append("")
    for r in results:
        mean = sum(r.start_seconds) / len(r.start_seconds)
        lines.append(
            f"- `{r.fsync}`: restart (spawn to listening, recovery included) mean {mean:.2f} s, "
            f"max {max(r.start_seconds):.2f} s; at least {r.work.get('flushes', 0):,} flushes and "
            f"{r.work.get('compactions', 0):,} compactions; "
            f"{r.early_kills[0]} kills while starting ({r.early_kills[1]} in recovery); "
            "error replies {r.stats.error_replies}; "
            f"SIGTERM exit {r.stop_status}; `shaledb check` exit {r.check_status}."
        )
    return "\n".join(lines) + "\n"


def write_section(path: str, body: str) -> None:
    """Put ``body`` between the soak markers of ``path`` (a new file gets a title)."""
    from bench.report import replace_section

    if not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as f:
            f.write("# ShaleDB reliability\n")
    replace_section(path, "soak", body)


def main(argv: list[str] | None = None) -> int:
    # SIGTERM ends a run like Ctrl-C: the server it started is killed, its files kept.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per fsync mode")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="spread the clients over this many processes (0: threads here)",
    )
    parser.add_argument("--keys", type=int, default=64, help="keys per client")
    parser.add_argument("--value-size", type=int, default=100, help="largest usual value")
    parser.add_argument(
        "--kill-interval", default="5,20", help="MIN,MAX seconds between kills (uniform)"
    )
    parser.add_argument(
        "--memtable-size",
        type=int,
        default=None,
        help="server --memtable-size, in distinct keys (default: a quarter of all the "
        "clients' keys, so that flushes and compactions run all the time; 0: the server's "
        "default)",
    )
    parser.add_argument(
        "--fsync",
        default="everysec",
        help="always, everysec or never, or several separated by commas",
    )
    parser.add_argument(
        "--early-kills",
        type=float,
        default=0.0,
        help="chance that a restart is killed again while it starts (in recovery)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="one more argument for shaledb serve (repeatable); "
        "--server-arg=--in-memory is the check that the checker catches loss",
    )
    parser.add_argument("--output", help="also write the figures into this file's Soak section")
    parser.add_argument("--json", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    modes = args.fsync.split(",")
    if any(m not in ("always", "everysec", "never") for m in modes):
        parser.error("--fsync takes always, everysec or never")
    kill_min, kill_max = (float(x) for x in args.kill_interval.split(","))
    cfg = Config(
        duration=args.duration,
        clients=args.clients,
        processes=args.processes,
        keys=args.keys,
        value_size=args.value_size,
        kill_min=kill_min,
        kill_max=kill_max,
        memtable_size=(
            max(16, args.clients * args.keys // 4)
            if args.memtable_size is None
            else args.memtable_size
        ),
        seed=args.seed,
        early_kills=args.early_kills,
        server_args=tuple(args.server_arg),
    )
    results = []
    for mode in modes:
        print(f"soak: fsync={mode}, {cfg.duration:g} s, {cfg.clients} clients", flush=True)
        result = run(cfg, mode, log=lambda line: print(line, flush=True))
        print(_text(result), flush=True)
        results.append(result)
    command = "python -m bench.soak " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.output:
        write_section(args.output, _markdown(command, results))
        print(f"Wrote the Soak section of {args.output}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([r.summary() for r in results], f, indent=1, default=str)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
