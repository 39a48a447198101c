"""Helpers for the server and client tests: a real server process and a raw JSON-lines link.

Every test here talks to ``python -m shaledb.cli.main serve`` over real sockets, so
what they check is what a user gets.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

#: Seconds a server gets to start listening or to exit.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
#: The repository root, so that the child imports this checkout's shaledb.
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("SHALEDB_PASSWORD", None)
    return env


class ServerProcess:
    """``shaledb serve`` on a free port in a child process."""

    def __init__(self, data_dir: Path, *args: str, port: int = 0) -> None:
        self.data_dir = data_dir
        self.args = args
        self.port = port  # 0: a free port when started
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    def _new_log(self) -> Path:
        # One log per start, so that a restart cannot mistake the last run's lines.
        n = 1
        while (path := self.data_dir.parent / f"{self.data_dir.name}-server-{n}.log").exists():
            n += 1
        return path

    def start(self) -> ServerProcess:
        self.port = self.port or free_port()
        self.log_path = self._new_log()
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it while it runs
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shaledb.cli.main",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--log-level",
                "info",
                *self.args,
            ],
            stdout=log,
            stderr=log,
            env=child_env(),
            cwd=ROOT,
        )
        log.close()
        # Wait for this process's own "listening" line: a connect alone could reach
        # another process that took the port in the meantime (tests run in parallel).
        ready = f"listening on 127.0.0.1:{self.port} "
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if ready in self.log():
                return self
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"server did not start listening:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait; the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"server did not stop on signal {sig}:\n{self.log()}") from None

    def wait(self) -> int:
        """Wait for the process to exit (after a signal sent elsewhere); its status."""
        assert self.proc is not None
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"server did not exit:\n{self.log()}") from None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown at all."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Link:
    """A raw JSON-lines connection: send objects or bytes, read replies one line at a time."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def send(self, request: dict[str, Any] | bytes) -> None:
        data = request if isinstance(request, bytes) else json.dumps(request).encode() + b"\n"
        self.sock.sendall(data)

    def recv(self) -> dict[str, Any]:
        line = self.file.readline()
        assert line.endswith(b"\n"), f"connection closed or partial reply: {line!r}"
        reply = json.loads(line)
        assert isinstance(reply, dict)
        return reply

    def call(self, request: dict[str, Any] | bytes) -> dict[str, Any]:
        self.send(request)
        return self.recv()

    def closed_by_server(self) -> bool:
        """True when the server has closed the connection (EOF with nothing more)."""
        try:
            return self.file.readline() == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def start_server(tmp_path_factory: pytest.TempPathFactory, *args: str) -> ServerProcess:
    return ServerProcess(tmp_path_factory.mktemp("srv") / "data", *args).start()


def run_shaledb(
    *args: str, stdin: str = "", timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """``shaledb ARGS`` in a child process, with ``stdin`` as its input."""
    return subprocess.run(
        [sys.executable, "-m", "shaledb.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        cwd=ROOT,
    )
