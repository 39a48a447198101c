"""Sharding behind twemproxy (Debian's nutcracker): three ShaleDB nodes, ketama hashing.

twemproxy speaks RESP2 and refuses HELLO and CLIENT SETINFO, so redis-py connects with
``protocol=2`` and no library name (docs/scaling.md has the same configuration).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import redis
from resp_fixtures import program
from server_fixtures import ServerProcess, free_port

KEYS = 10_000
# lib_name=None is how redis-py 5 to 8 all skip CLIENT SETINFO; 8 calls it deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:Call to '__init__':DeprecationWarning")


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"nutcracker exited:\n{log.read_text(errors='replace')}")
        try:
            redis.Redis(
                port=port, protocol=2, socket_timeout=2, lib_name=None, lib_version=None
            ).get("probe")
            return
        except redis.RedisError:
            time.sleep(0.1)
    raise AssertionError(f"nutcracker did not start:\n{log.read_text(errors='replace')}")


def test_three_nodes_behind_twemproxy(tmp_path: Path) -> None:
    nutcracker = program("nutcracker")
    nodes = [ServerProcess(tmp_path / f"node{i}") for i in range(3)]
    proxy: subprocess.Popen[bytes] | None = None
    try:
        for node in nodes:
            node.start()
        proxy_port, stats_port = free_port(), free_port()
        servers = "\n".join(f"    - 127.0.0.1:{n.port}:1 node{i}" for i, n in enumerate(nodes))
        conf = tmp_path / "nutcracker.yml"
        conf.write_text(
            "shaledb:\n"
            f"  listen: 127.0.0.1:{proxy_port}\n"
            "  hash: fnv1a_64\n"
            "  distribution: ketama\n"
            "  redis: true\n"
            "  auto_eject_hosts: false\n"
            "  timeout: 5000\n"
            "  server_retry_timeout: 500\n"
            "  servers:\n"
            f"{servers}\n"
        )
        log = tmp_path / "nutcracker.log"
        proxy = subprocess.Popen(
            [
                nutcracker,
                "-c",
                str(conf),
                "-o",
                str(log),
                "-s",
                str(stats_port),
                "-a",
                "127.0.0.1",
                "-p",
                str(tmp_path / "nutcracker.pid"),
            ],
        )
        _wait_port(proxy_port, proxy, log)
        client = redis.Redis(port=proxy_port, protocol=2, lib_name=None, lib_version=None)
        with client.pipeline(transaction=False) as pipe:
            for i in range(KEYS):
                pipe.set(f"shard:{i}", f"v{i}")
            assert all(pipe.execute())
        # Every node holds a share...
        shares = [redis.Redis(port=n.port, protocol=2).dbsize() for n in nodes]
        assert sum(shares) == KEYS and all(s > KEYS // 10 for s in shares), shares
        # ...and every key reads back through the proxy.
        with client.pipeline(transaction=False) as pipe:
            for i in range(KEYS):
                pipe.get(f"shard:{i}")
            assert pipe.execute() == [f"v{i}".encode() for i in range(KEYS)]
        assert client.mget([f"shard:{i}" for i in range(100)])[99] == b"v99"
        # A node's data survives its restart (same port, same data directory).
        assert nodes[1].stop() == 0
        nodes[1].start()
        time.sleep(1.0)  # past server_retry_timeout, so the proxy reconnects
        with client.pipeline(transaction=False) as pipe:
            for i in range(KEYS):
                pipe.get(f"shard:{i}")
            assert pipe.execute() == [f"v{i}".encode() for i in range(KEYS)]
        assert redis.Redis(port=nodes[1].port, protocol=2).dbsize() == shares[1]
        client.close()
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(10)
        for node in nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.stop()
