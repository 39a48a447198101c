"""RESP on raw sockets: framing errors, limits, pipelining, dispatch, memory bounds."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest
from resp_fixtures import RespLink
from server_fixtures import Link, ServerProcess, start_server

from shaledb.server.resp_protocol import NULL_ARRAY, ErrorReply, Push, encode_command


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory, "--max-request-bytes", "1048576", "--pubsub-buffer-bytes", "65536"
    )
    yield proc
    proc.stop()


@pytest.fixture
def link(server: ServerProcess) -> Iterator[RespLink]:
    conn = RespLink(server.port)
    yield conn
    conn.close()


def test_framing_error_answers_and_closes_after_earlier_replies(link: RespLink) -> None:
    link.send_raw(
        encode_command("SET", "fr:k", "v") + encode_command("GET", "fr:k") + b"*1\r\n:x\r\n"
    )
    data = link.read_all()
    assert data == b"+OK\r\n$1\r\nv\r\n-ERR Protocol error: expected '$', got ':'\r\n"


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (b"*abc\r\n", "invalid multibulk length"),
        (b"*1\r\n$-5\r\n", "invalid bulk length"),
        (b'SET k "unterminated\r\n', "unbalanced quotes"),
    ],
)
def test_framing_errors(link: RespLink, frame: bytes, words: str) -> None:
    link.send_raw(frame)
    data = link.read_all()
    assert data.startswith(b"-ERR Protocol error: ") and words.encode() in data


def test_oversized_frame_is_refused_and_the_server_goes_on(server: ServerProcess) -> None:
    link = RespLink(server.port)
    link.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n")
    data = link.read_all()
    assert data.startswith(b"-ERR Protocol error: request frame longer than 1048576 bytes")
    link.close()
    other = RespLink(server.port)
    assert other.call("PING") == "PONG"
    # A value just under the limit is fine.
    assert other.call("SET", "big", b"x" * 1_000_000) == "OK"
    assert other.call("STRLEN", "big") == 1_000_000
    other.close()


def test_unterminated_inline_line_is_bounded(server: ServerProcess) -> None:
    link = RespLink(server.port)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        link.send_raw(b"GET " + b"k" * 200_000)
    assert b"too big inline request" in link.read_all()
    link.close()


def test_inline_commands_like_telnet(link: RespLink) -> None:
    link.send_raw(b'SET inline:k "hello world"\r\nGET inline:k\r\n\r\nPING\n')
    assert [link.recv(), link.recv(), link.recv()] == ["OK", b"hello world", "PONG"]


def test_pipelining_thousands_of_commands(link: RespLink) -> None:
    n = 20_000
    link.send_raw(b"".join(encode_command("SET", f"pipe:{i}", i) for i in range(n)))
    link.send_raw(b"".join(encode_command("INCR", f"pipe:{i}") for i in range(n)))
    assert all(link.recv() == "OK" for _ in range(n))
    assert [link.recv() for _ in range(n)] == [i + 1 for i in range(n)]


def test_hello_switches_protocol(link: RespLink) -> None:
    assert link.call("GET", "hello:none") is None
    link.send_raw(encode_command("GET", "hello:none"))
    reply = link.call("HELLO", "3")
    assert reply is None  # the earlier GET's nil, as $-1
    hello = link.recv()
    assert hello[b"proto"] == 3 and hello[b"server"] == b"redis"
    link.send("GET", "hello:none")
    raw = link.sock.recv(100)
    assert raw == b"_\r\n"
    assert link.call("HELLO", "4") == ErrorReply("NOPROTO unsupported protocol version")
    flat = link.call("HELLO", "2")  # a map is a flat array in RESP2
    assert dict(zip(flat[::2], flat[1::2]))[b"proto"] == 2


def test_exec_abort_is_a_nil_array(server: ServerProcess, link: RespLink) -> None:
    assert link.call("WATCH", "w:k") == "OK"
    other = RespLink(server.port)
    assert other.call("SET", "w:k", "x") == "OK"
    other.close()
    assert link.call("MULTI") == "OK"
    assert link.call("SET", "w:k", "y") == "QUEUED"
    assert link.call("EXEC") is NULL_ARRAY


def test_resp2_subscribed_mode_limits_commands(link: RespLink, server: ServerProcess) -> None:
    assert link.call("SUBSCRIBE", "ch1") == [b"subscribe", b"ch1", 1]
    reply = link.call("GET", "k")
    assert isinstance(reply, ErrorReply) and "only (P|S)SUBSCRIBE" in reply
    assert link.call("PING") == [b"pong", b""]
    pub = RespLink(server.port)
    assert pub.call("PUBLISH", "ch1", "m") == 1
    pub.close()
    assert link.recv() == [b"message", b"ch1", b"m"]
    assert link.call("UNSUBSCRIBE") == [b"unsubscribe", b"ch1", 0]
    assert link.call("PING") == "PONG"


def test_resp3_push_frames_and_commands_while_subscribed(
    link: RespLink, server: ServerProcess
) -> None:
    link.call("HELLO", "3")
    assert link.call("SUBSCRIBE", "ch3") == Push([b"subscribe", b"ch3", 1])
    assert link.call("SET", "sub3:k", "v") == "OK"
    pub = RespLink(server.port)
    pub.call("PUBLISH", "ch3", "pushed")
    pub.close()
    assert link.recv() == Push([b"message", b"ch3", b"pushed"])


def test_slow_subscriber_is_disconnected_not_the_publisher(server: ServerProcess) -> None:
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(encode_command("SUBSCRIBE", "firehose"))
    time.sleep(0.3)
    pub = RespLink(server.port)
    payload = b"x" * 10_000
    counts = []
    start = time.monotonic()
    while len(counts) < 10_000 and (not counts or counts[-1] == 1):
        counts.append(pub.call("PUBLISH", "firehose", payload))
    assert time.monotonic() - start < 30  # the publisher was never blocked
    assert counts[0] == 1 and counts[-1] == 0  # the subscriber was dropped on the way
    pub.close()
    slow.close()


def test_json_client_starting_with_blanks_or_a_bom(server: ServerProcess) -> None:
    for prefix in (b"\n", b"  ", b"\t\r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf \n"):
        link = Link(server.port)
        link.send(prefix + b'{"command": "ping"}\n')
        assert link.recv() == {"status": "ok", "message": "PONG"}
        link.close()
    # The blanks may even arrive on their own, before the object.
    link = Link(server.port)
    link.send(b"\n")
    time.sleep(0.1)
    link.send(b'{"command": "ping"}\n')
    assert link.recv()["message"] == "PONG"
    link.close()


def test_client_kill_and_list(server: ServerProcess) -> None:
    victim = RespLink(server.port)
    victim_id = victim.call("CLIENT", "ID")
    victim.call("CLIENT", "SETNAME", "victim")
    killer = RespLink(server.port)
    listing = killer.call("CLIENT", "LIST")
    assert b"name=victim" in listing
    assert killer.call("CLIENT", "KILL", "ID", str(victim_id)) == 1
    assert victim.read_all() == b""
    killer.close()


def test_quit_and_reset(link: RespLink) -> None:
    link.call("SELECT", "2")
    assert link.call("RESET") == "RESET"
    link.send("QUIT")
    assert link.read_all() == b"+OK\r\n"


# -- memory bounds and timeouts ---------------------------------------------------------------


def test_unauthenticated_connections_get_small_frames(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    proc = start_server(tmp_path_factory, "--password", "pw")
    try:
        link = RespLink(proc.port)
        assert link.call("GET", "k") == ErrorReply("NOAUTH Authentication required.")
        link.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n")
        assert b"longer than 16384 bytes" in link.read_all()
        link.close()
        json_link = Link(proc.port)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            json_link.send(b'{"command": "ping", "message": "' + b"x" * 100_000 + b'"}\n')
        assert json_link.recv()["code"] == "protocol"
        json_link.close()
        ok = RespLink(proc.port)
        assert ok.call("AUTH", "wrong") == ErrorReply(
            "WRONGPASS invalid username-password pair or user is disabled."
        )
        assert ok.call("AUTH", "pw") == "OK"
        assert ok.call("SET", "k", b"v" * 100_000) == "OK"
        ok.close()
    finally:
        proc.stop()


def test_total_buffered_bytes_are_bounded(tmp_path_factory: pytest.TempPathFactory) -> None:
    proc = start_server(tmp_path_factory, "--max-buffer-bytes", "1000000")
    try:
        holders = []
        for _ in range(3):
            holder = RespLink(proc.port)
            holder.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$900000\r\n" + b"x" * 400_000)
            holders.append(holder)
            time.sleep(0.2)
        # Two hold 800 KB; the third would pass 1 MB and is refused.
        assert b"input buffers are full" in holders[2].read_all()
        json_link = Link(proc.port)
        json_link.send(b'{"command": "ping", "message": "' + b"y" * 300_000)
        assert "input buffers are full" in json_link.recv()["message"]
        json_link.close()
        holders[0].close()
        time.sleep(0.2)
        fresh = RespLink(proc.port)
        assert fresh.call("SET", "k", b"z" * 300_000) == "OK"
        fresh.close()
        holders[1].close()
    finally:
        proc.stop()


def test_idle_timeout_closes_both_protocols(tmp_path_factory: pytest.TempPathFactory) -> None:
    proc = start_server(tmp_path_factory, "--idle-timeout", "1")
    try:
        resp = RespLink(proc.port)
        assert resp.call("PING") == "PONG"
        sub = RespLink(proc.port)
        sub.call("SUBSCRIBE", "c")
        json_link = Link(proc.port)
        assert json_link.call({"command": "ping"})["status"] == "ok"
        time.sleep(2.5)
        assert resp.read_all() == b""
        assert json_link.closed_by_server()
        assert sub.call("PING") == [b"pong", b""]  # subscribers are exempt, as in Redis
        sub.close()
    finally:
        proc.stop()


def test_incrbyfloat_refuses_numbers_beyond_a_long_double(link: RespLink) -> None:
    """As Redis: out of a long double's range is "not a valid float", never an internal
    error or a megabyte of digits."""
    for value in ("1e10000000", "1e5000", "1e-1000000"):
        link.call("DEL", "lf")
        assert link.call("INCRBYFLOAT", "lf", value) == ErrorReply("ERR value is not a valid float")
    link.call("SET", "lf", "1e10000000")
    assert link.call("INCRBYFLOAT", "lf", "1") == ErrorReply("ERR value is not a valid float")
    link.call("SET", "lf", "1e4932")
    assert link.call("INCRBYFLOAT", "lf", "1e4932") == ErrorReply(
        "ERR increment would produce NaN or Infinity"
    )
    assert link.call("INCRBYFLOAT", "ok", "1.5e3") == b"1500"


def test_exec_answers_a_queued_subscribe_as_redis_does(server: ServerProcess) -> None:
    link = RespLink(server.port)
    assert link.call("MULTI") == "OK"
    assert link.call("SET", "execsub", "1") == "QUEUED"
    assert link.call("SUBSCRIBE", "execch") == "QUEUED"
    assert link.call("EXEC") == ["OK", [b"subscribe", b"execch", 1]]
    link.close()
    other = RespLink(server.port)
    assert other.call("GET", "execsub") == b"1"
    other.close()


def test_minus_zero_is_not_an_integer_as_in_redis(link: RespLink) -> None:
    link.call("SET", "mz", "-0")
    assert link.call("INCR", "mz") == ErrorReply("ERR value is not an integer or out of range")
    assert link.call("INCRBY", "mz2", "-0") == ErrorReply(
        "ERR value is not an integer or out of range"
    )
    assert link.call("SET", "z0", "0") == "OK" and link.call("INCR", "z0") == 1
