"""redis-py against ``shaledb serve``, unchanged: RESP2 and RESP3 connections.

redis-py 8 sends ``HELLO 3`` and ``CLIENT SETINFO`` on every connect when asked for
protocol 3; protocol 2 connections send neither. Every test runs on both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from server_fixtures import Link, ServerProcess, start_server

import shaledb


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory)
    yield proc
    proc.stop()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def r(request: pytest.FixtureRequest, server: ServerProcess) -> Iterator[redis.Redis]:
    client = redis.Redis(port=server.port, protocol=request.param, socket_timeout=10)
    yield client
    client.close()


def key(r: redis.Redis, name: str) -> str:
    """A key of this test and this protocol (the two runs share one server)."""
    return f"{name}:{r.connection_pool.connection_kwargs['protocol']}"


def test_handshake_and_connection_commands(r: redis.Redis) -> None:
    assert r.ping() is True
    assert r.echo("hi") == b"hi"
    assert r.client_setname("tester") is True
    assert r.client_getname() in ("tester", b"tester")
    assert isinstance(r.client_id(), int)
    info = r.info()
    assert info["redis_mode"] == "standalone" and "uptime_in_seconds" in info
    assert r.info("keyspace") is not None
    assert r.config_get("save") == {"save": ""}
    assert "appendonly" in r.config_get("append*")
    seconds, micros = r.time()
    assert abs(seconds - time.time()) < 5 and 0 <= micros < 1_000_000
    assert any(c["name"] == "tester" for c in r.client_list())
    assert r.command_count() > 50
    assert r.lastsave() is not None
    assert r.dbsize() >= 0


def test_strings(r: redis.Redis) -> None:
    k = key(r, "str")
    assert r.set(k, "v1") is True
    assert r.get(k) == b"v1"
    assert r.set(k, "v2", nx=True) is None
    assert r.set(k, "v2", xx=True) is True
    assert r.set(k, "v3", get=True) == b"v2"
    assert r.getset(k, "v4") == b"v3"
    assert r.append(k, "!") == 3
    assert r.strlen(k) == 3
    assert r.getrange(k, 0, 1) == b"v4"
    assert r.setrange(k, 1, "XYZ") == 4
    assert r.get(k) == b"vXYZ"
    assert r.getdel(k) == b"vXYZ"
    assert r.get(k) is None
    assert r.setnx(k, "a") is True and r.setnx(k, "b") is False
    assert r.mset({k + "a": "1", k + "b": "2"}) is True
    assert r.mget([k + "a", k + "b", k + "none"]) == [b"1", b"2", None]
    assert r.msetnx({k + "a": "x", k + "c": "3"}) is False
    assert r.get(k + "c") is None
    binary = bytes(range(256))
    r.set(k + "bin", binary)
    assert r.get(k + "bin") == binary


def test_counters(r: redis.Redis) -> None:
    k = key(r, "counter")
    r.delete(k)
    assert r.incr(k) == 1
    assert r.incrby(k, 10) == 11
    assert r.decr(k) == 10
    assert r.decrby(k, 4) == 6
    assert r.incrbyfloat(k, 0.5) == 6.5
    r.set(k, "abc")
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.incr(k)
    r.set(k, str(2**63 - 1))
    with pytest.raises(redis.ResponseError, match="overflow"):
        r.incr(k)


def test_expiry(r: redis.Redis) -> None:
    k = key(r, "ttl")
    r.set(k, "v", ex=100)
    assert 98 <= r.ttl(k) <= 100
    assert 98_000 <= r.pttl(k) <= 100_000
    assert r.expire(k, 50, gt=True) is False
    assert r.expire(k, 200, gt=True) is True
    assert r.expire(k, 300, lt=True) is False
    assert r.expire(k, 10, nx=True) is False
    assert r.expire(k, 10, xx=True) is True
    assert abs(r.expiretime(k) - (time.time() + 10)) < 3
    assert r.persist(k) is True and r.ttl(k) == -1
    assert r.expire(k, 10, xx=True) is False
    assert r.ttl(k + "none") == -2
    r.set(k, "v", keepttl=True)
    r.set(k, "short", px=150)
    r.set(k + "2", "v")
    r.pexpireat(k + "2", int(time.time() * 1000) + 150)
    r.setex(k + "3", 100, "v")
    r.expire(k + "3", -1)  # a deadline in the past deletes the key
    assert r.exists(k + "3") == 0
    assert r.getex(k + "2", persist=False) == b"v"
    time.sleep(0.3)
    assert r.get(k) is None and r.get(k + "2") is None
    assert r.exists(k, k + "2") == 0
    with pytest.raises(redis.ResponseError, match="invalid expire time"):
        r.set(k, "v", ex=0)


def test_keys_scan_and_types(r: redis.Redis) -> None:
    prefix = key(r, "scan")
    names = {f"{prefix}:{i:04d}".encode() for i in range(500)}
    r.mset({name: b"x" for name in names})
    assert set(r.scan_iter(match=f"{prefix}:*", count=37)) == names
    assert set(r.keys(f"{prefix}:00*")) == {
        n for n in names if n.startswith(f"{prefix}:00".encode())
    }
    assert r.type(f"{prefix}:0001") == b"string"
    assert r.type(f"{prefix}:none") == b"none"
    assert r.object("encoding", f"{prefix}:0001") in (b"embstr", "embstr")
    assert list(r.scan_iter(match=f"{prefix}:*", _type="hash")) == []
    assert r.delete(*list(names)[:10]) == 10
    assert r.unlink(*list(names)[:10]) == 0
    assert r.randomkey() is not None


def test_rename_and_copy(r: redis.Redis) -> None:
    a, b, c = key(r, "ren:a"), key(r, "ren:b"), key(r, "ren:c")
    r.delete(a, b, c)
    r.set(a, "v", ex=100)
    assert r.rename(a, b) is True
    assert r.get(a) is None and r.get(b) == b"v" and r.ttl(b) > 90
    r.set(a, "other")
    assert r.renamenx(a, b) is False
    assert r.copy(b, c) is True and r.get(c) == b"v"
    assert r.copy(a, c) is False
    assert r.copy(a, c, replace=True) is True and r.get(c) == b"other"
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.rename(key(r, "ren:none"), a)


def test_errors_in_redis_forms(r: redis.Redis) -> None:
    with pytest.raises(
        redis.ResponseError, match="unknown command 'FROB', with args beginning with: 'x'"
    ):
        r.execute_command("FROB", "x")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'get' command"):
        r.execute_command("GET")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SET", "k", "v", "BOGUS")
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        r.execute_command("SELECT", "99")
    with pytest.raises(redis.RedisError, match="without any password configured"):
        r.execute_command("AUTH", "pw")
    assert r.ping()  # the connection survives every error


def test_pipeline_transaction_is_atomic(r: redis.Redis) -> None:
    k = key(r, "tx")
    r.delete(k, k + "n")
    with r.pipeline() as pipe:  # redis-py pipelines are MULTI/EXEC by default
        pipe.set(k, "a").incr(k + "n").incr(k + "n").get(k).append(k, "b")
        assert pipe.execute() == [True, 1, 2, b"a", 2]
    with r.pipeline(transaction=False) as pipe:
        for i in range(1000):
            pipe.set(f"{k}:{i}", i)
        pipe.get(f"{k}:999")
        assert pipe.execute()[-1] == b"999"


def test_transaction_errors(r: redis.Redis) -> None:
    k = key(r, "txerr")
    r.set(k, "abc")
    with r.pipeline() as pipe:
        pipe.set(k + "1", "x").incr(k)
        results = pipe.execute(raise_on_error=False)
    assert results[0] is True and isinstance(results[1], redis.ResponseError)
    assert r.get(k + "1") == b"x"  # as Redis: no rollback of the other commands
    r.execute_command("MULTI")
    with pytest.raises(redis.ResponseError):
        r.execute_command("GET")  # wrong arity while queueing
    with pytest.raises(redis.ResponseError, match="Transaction discarded because of previous"):
        r.execute_command("EXEC")
    with pytest.raises(redis.ResponseError, match="EXEC without MULTI"):
        r.execute_command("EXEC")


def test_watch_aborts_on_change_from_another_connection(
    r: redis.Redis, server: ServerProcess
) -> None:
    k = key(r, "watch")
    r.set(k, "0")
    other = redis.Redis(port=server.port, protocol=2)
    with r.pipeline() as pipe:
        pipe.watch(k)
        other.set(k, "changed")
        pipe.multi()
        pipe.set(k, "mine")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get(k) == b"changed"
    # Unchanged: EXEC applies.
    with r.pipeline() as pipe:
        pipe.watch(k)
        value = int(pipe.get(k) == b"changed")
        pipe.multi()
        pipe.set(k, str(value))
        assert pipe.execute() == [True]
    other.close()


def test_watch_aborts_on_change_over_json_lines(r: redis.Redis, server: ServerProcess) -> None:
    k = key(r, "watchjson")
    r.set(k, "0")
    link = Link(server.port)
    # The second round writes the value already there: a write all the same, as over RESP.
    for _ in range(2):
        with r.pipeline() as pipe:
            pipe.watch(k)
            assert link.call({"command": "put", "key": k, "value": "json"})["status"] == "ok"
            pipe.multi()
            pipe.set(k, "resp")
            with pytest.raises(redis.WatchError):
                pipe.execute()
    link.close()
    assert r.get(k) == b"json"


def test_concurrent_increments_lose_nothing(server: ServerProcess) -> None:
    k = "concurrent:counter"
    redis.Redis(port=server.port).delete(k)

    def work() -> None:
        c = redis.Redis(port=server.port, protocol=2)
        for _ in range(200):
            with c.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(k)
                        n = int(pipe.get(k) or 0)
                        pipe.multi()
                        pipe.set(k, n + 1)
                        pipe.execute()
                        break
                    except redis.WatchError:
                        continue
            c.incr(k + ":plain")
        c.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c = redis.Redis(port=server.port)
    assert c.get(k) == b"800" and c.get(k + ":plain") == b"800"


def test_pubsub(r: redis.Redis, server: ServerProcess) -> None:
    channel = key(r, "chan")
    p = r.pubsub()
    p.subscribe(channel)
    p.psubscribe(channel[:3] + "*")
    kinds = {p.get_message(timeout=5)["type"] for _ in range(2)}
    assert kinds == {"subscribe", "psubscribe"}
    publisher = redis.Redis(port=server.port)
    assert publisher.publish(channel, "hello") == 2
    got: list[dict[str, Any]] = []
    deadline = time.time() + 5
    while len(got) < 2 and time.time() < deadline:
        message = p.get_message(timeout=1)
        if message:
            got.append(message)
    assert sorted(m["type"] for m in got) == ["message", "pmessage"]
    assert all(m["data"] == b"hello" for m in got)
    assert channel.encode() in publisher.pubsub_channels()
    assert publisher.pubsub_numsub(channel) == [(channel.encode(), 1)]
    assert publisher.pubsub_numpat() >= 1
    p.unsubscribe()
    p.punsubscribe()
    p.close()
    publisher.close()


def test_select_tables_and_cross_protocol(
    r: redis.Redis, server: ServerProcess, tmp_path: Any
) -> None:
    k = key(r, "cross")
    r.set(k, "from resp")
    link = Link(server.port)
    assert link.call({"command": "get", "key": k}) == {"status": "ok", "value": "from resp"}
    link.call({"command": "put", "key": k + "j", "value": "from json"})
    assert r.get(k + "j") == b"from json"
    # Numbered databases are tables default:dbN; names reach any table.
    r.execute_command("SELECT", "3")
    r.set(k, "in db3")
    assert link.call({"command": "get", "key": k, "table": "db3"})["value"] == "in db3"
    link.call({"command": "create_namespace", "namespace": "app"})
    link.call({"command": "create_table", "namespace": "app", "table": f"t{k[-1]}"})
    r.execute_command("SELECT", f"app:t{k[-1]}")
    r.set(k, "in app")
    assert (
        link.call({"command": "get", "key": k, "namespace": "app", "table": f"t{k[-1]}"})["value"]
        == "in app"
    )
    with pytest.raises(redis.ResponseError, match="does not exist"):
        r.execute_command("SELECT", "app:missing")
    r.execute_command("SELECT", "0")
    assert r.get(k) == b"from resp"
    link.close()


def test_numbered_database_from_the_client_constructor(server: ServerProcess) -> None:
    c = redis.Redis(port=server.port, db=5)
    c.set("in5", "x")
    assert redis.Redis(port=server.port).get("in5") is None
    assert c.get("in5") == b"x"
    assert c.flushdb() is True and c.dbsize() == 0
    c.close()


def test_embedded_api_reads_what_resp_wrote(tmp_path_factory: pytest.TempPathFactory) -> None:
    proc = start_server(tmp_path_factory)
    try:
        c = redis.Redis(port=proc.port)
        c.set("user:1", "John")
        c.set("ttl:1", "v", ex=1000)
        c.close()
    finally:
        assert proc.stop() == 0
    with shaledb.open(proc.data_dir) as db:
        assert db.get("user:1") == b"John"
        assert db.ttl("ttl:1") is not None
        db.put("user:2", "Jane")
    proc.start()
    try:
        assert redis.Redis(port=proc.port).mget("user:1", "user:2") == [b"John", b"Jane"]
    finally:
        proc.stop()


def test_auth(tmp_path_factory: pytest.TempPathFactory) -> None:
    proc = start_server(tmp_path_factory, "--password", "s3cret")
    try:
        anonymous = redis.Redis(port=proc.port, protocol=2)
        with pytest.raises(redis.AuthenticationError):
            anonymous.get("k")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=proc.port, password="wrong", protocol=2).ping()
        for proto in (2, 3):
            c = redis.Redis(port=proc.port, password="s3cret", protocol=proto)
            assert c.set("k", "v") and c.get("k") == b"v"
            c.close()
        c = redis.Redis(port=proc.port, username="default", password="s3cret", protocol=3)
        assert c.ping()
        c.close()
    finally:
        proc.stop()


def test_copy_to_a_new_database_and_select_inside_multi(
    r: redis.Redis, server: ServerProcess
) -> None:
    """Both create a SELECT database while the write lock is held (they once hung the
    server's write path for good)."""
    proto = r.connection_pool.connection_kwargs["protocol"]
    k = key(r, "copysrc")
    r.set(k, "hello")
    assert r.copy(k, k + ":dst", destination_db=6 + proto) is True
    other = redis.Redis(port=server.port, db=6 + proto, socket_timeout=10)
    assert other.get(k + ":dst") == b"hello"
    one = redis.Redis(
        port=server.port, protocol=proto, socket_timeout=10, single_connection_client=True
    )
    pipe = one.pipeline(transaction=True)
    pipe.execute_command("SELECT", 10 + proto)
    pipe.set(k, "in a new database")
    assert pipe.execute() == [True, True]
    assert redis.Redis(port=server.port, db=10 + proto, socket_timeout=10).get(k) == (
        b"in a new database"
    )
    assert r.set(k, "still writable") is True and r.get(k) == b"still writable"
    one.close()
    other.close()
