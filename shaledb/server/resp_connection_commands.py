"""Connection commands: PING, ECHO, QUIT, RESET, AUTH, HELLO, SELECT and CLIENT.

Tables over RESP: ``SELECT n`` with a number picks database n as Redis numbers them
(0 is the default table that JSON lines and ``shaledb.open`` use, n > 0 is table
``dbN`` of the default namespace, created on first use); ``SELECT ns:table`` or
``SELECT table`` (default namespace) picks any existing table by name.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING, Any

from shaledb import NotFoundError
from shaledb.keyspace import DEFAULT_NAMESPACE
from shaledb.server.resp_commands import (
    RespError,
    command,
    text,
    to_int,
    upper,
    wrong_args,
)
from shaledb.server.resp_protocol import OK, PONG, RESP2, RESP3, SimpleString

if TYPE_CHECKING:
    from shaledb.server.resp_session import RespSession, RespState

#: The Redis version ShaleDB answers as (clients pick features by it).
REDIS_VERSION = "7.0.0"
_WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


@command("ping", -1, "fast pubsub noauth", group="connection", summary="Ping the server")
def _ping(s: RespSession, args: list[bytes]) -> Any:
    if len(args) > 1:
        raise wrong_args("ping")
    if s.protocol == RESP2 and s.subscribed:
        return [b"pong", args[0] if args else b""]
    return args[0] if args else PONG


@command("echo", 2, "fast", group="connection", summary="Echo the message")
def _echo(s: RespSession, args: list[bytes]) -> Any:
    return args[0]


@command("quit", -1, "fast pubsub noauth", group="connection", summary="Close the connection")
def _quit(s: RespSession, args: list[bytes]) -> Any:
    s.closing = True
    return OK


@command(
    "reset",
    1,
    "fast pubsub noauth nomulti",
    group="connection",
    summary="Reset the connection's state",
    since="6.2.0",
)
def _reset(s: RespSession, args: list[bytes]) -> Any:
    s.reset()
    return SimpleString("RESET")


def _check_password(state: RespState, user: bytes | None, password: bytes) -> None:
    if state.password is None:
        raise RespError(
            "ERR AUTH <password> called without any password configured for the default "
            "user. Are you sure your configuration is correct?"
        )
    expected = state.password.encode("utf-8", "surrogatepass")
    if (user is not None and user != b"default") or not hmac.compare_digest(password, expected):
        raise RespError(_WRONGPASS)


@command("auth", -2, "fast noauth", group="connection", summary="Authenticate the connection")
def _auth(s: RespSession, args: list[bytes]) -> Any:
    if len(args) > 2:
        raise RespError("ERR syntax error")
    user, password = (args[0], args[1]) if len(args) == 2 else (None, args[0])
    _check_password(s.state, user, password)
    s.authenticated = True
    return OK


@command(
    "hello",
    -1,
    "fast noauth",
    group="connection",
    summary="Handshake: protocol version, AUTH, SETNAME",
    since="6.0.0",
)
def _hello(s: RespSession, args: list[bytes]) -> Any:
    proto = s.protocol
    if args:
        try:
            proto = to_int(args[0])
        except RespError:
            raise RespError("ERR Protocol version is not an integer or out of range") from None
        if proto not in (RESP2, RESP3):
            raise RespError("NOPROTO unsupported protocol version")
    name: bytes | None = None
    authed = False
    i = 1
    while i < len(args):
        opt = upper(args[i])
        if opt == b"AUTH" and i + 2 < len(args):
            _check_password(s.state, args[i + 1], args[i + 2])
            authed = True
            i += 3
        elif opt == b"SETNAME" and i + 1 < len(args):
            name = _client_name(args[i + 1])
            i += 2
        else:
            raise RespError(f"ERR Syntax error in HELLO option '{text(args[i])}'")
    if not s.authenticated and not authed:
        raise RespError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise "
            "the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the "
            "client and select the RESP protocol version at the same time"
        )
    if authed:
        s.authenticated = True
    if name is not None:
        s.name = name
    s.protocol = proto
    return {
        b"server": b"redis",
        b"version": REDIS_VERSION.encode(),
        b"proto": proto,
        b"id": s.id,
        b"mode": b"standalone",
        b"role": b"master",
        b"modules": [],
    }


@command(
    "select", 2, "fast", group="connection", summary="Pick a table: a database number, or ns:table"
)
def _select(s: RespSession, args: list[bytes]) -> Any:
    from shaledb.server.resp_session import DATABASES

    raw = args[0]
    if raw.isdigit() or raw[:1] == b"-":
        index = to_int(raw)
        if not 0 <= index < DATABASES:
            raise RespError("ERR DB index is out of range")
        s.table = s.state.numbered_table(index)
        s.db_label = str(index)
        return OK
    name = raw.decode("utf-8", "replace")
    namespace, _, table = name.rpartition(":")
    try:
        s.table = s.state.table(namespace or DEFAULT_NAMESPACE, table)
    except NotFoundError as exc:
        raise RespError(f"ERR {exc} (create it with the shell or the JSON protocol)") from None
    s.db_label = name
    return OK


# -- CLIENT --------------------------------------------------------------------------


def _client_name(raw: bytes) -> bytes:
    if any(c <= 32 or c >= 127 for c in raw):
        raise RespError("ERR Client names cannot contain spaces, newlines or special characters.")
    return raw


def client_line(c: RespSession) -> str:
    """One line of CLIENT LIST, with Redis's fields."""
    now = time.time()
    flags = "P" if c.subscribed else ("x" if c.in_multi else "N")
    return (
        f"id={c.id} addr={c.peer} laddr=127.0.0.1:{c.state.config.port} fd=-1 "
        f"name={c.name.decode('utf-8', 'replace')} age={int(now - c.created)} "
        f"idle={int(now - c.last_active)} flags={flags} db={c.db_label} "
        f"sub={len(c.channels)} psub={len(c.patterns)} ssub=0 "
        f"multi={len(c.queued) if c.in_multi else -1} qbuf=0 qbuf-free=0 argv-mem=0 "
        f"multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r "
        f"cmd={c.last_command} user=default redir=-1 resp={c.protocol} "
        f"lib-name={c.lib_name.decode('utf-8', 'replace')} "
        f"lib-ver={c.lib_ver.decode('utf-8', 'replace')}"
    )


@command("client", -2, "", group="connection", summary="Connection commands", since="2.4.0")
def _client(s: RespSession, args: list[bytes]) -> Any:
    sub = upper(args[0])
    rest = args[1:]
    if sub == b"SETNAME" and len(rest) == 1:
        s.name = _client_name(rest[0])
        return OK
    if sub == b"GETNAME" and not rest:
        return s.name or None
    if sub == b"SETINFO" and len(rest) == 2:
        attr = upper(rest[0])
        if attr == b"LIB-NAME":
            s.lib_name = _client_name(rest[1])
        elif attr == b"LIB-VER":
            s.lib_ver = _client_name(rest[1])
        else:
            raise RespError(f"ERR Unrecognized option '{text(rest[0])}'")
        return OK
    if sub == b"ID" and not rest:
        return s.id
    if sub == b"INFO" and not rest:
        return (client_line(s) + "\n").encode()
    if sub == b"LIST":
        return _client_list(s, rest)
    if sub == b"KILL" and rest:
        return _client_kill(s, rest)
    if sub in (b"NO-EVICT", b"NO-TOUCH") and len(rest) == 1:
        return OK
    if sub == b"HELP":
        return [
            "CLIENT SETNAME <name>",
            "CLIENT GETNAME",
            "CLIENT SETINFO LIB-NAME|LIB-VER <v>",
            "CLIENT ID",
            "CLIENT INFO",
            "CLIENT LIST [TYPE normal|pubsub] [ID id ...]",
            "CLIENT KILL <addr> | ID <id> | ADDR <addr> | SKIPME yes|no",
        ]
    raise RespError(
        f"ERR unknown subcommand or wrong number of arguments for '{text(args[0])}'. "
        "Try CLIENT HELP."
    )


def _client_list(s: RespSession, rest: list[bytes]) -> Any:
    clients = sorted(s.state.sessions(), key=lambda c: c.id)
    if len(rest) >= 2 and upper(rest[0]) == b"TYPE":
        kind = rest[1].lower()
        if kind not in (b"normal", b"pubsub", b"master", b"replica", b"slave"):
            raise RespError(f"ERR Unknown client type '{text(rest[1])}'")
        clients = [c for c in clients if (kind == b"pubsub") == c.subscribed]
        clients = [] if kind not in (b"normal", b"pubsub") else clients
    elif len(rest) >= 2 and upper(rest[0]) == b"ID":
        wanted = {to_int(r) for r in rest[1:]}
        clients = [c for c in clients if c.id in wanted]
    elif rest:
        raise RespError("ERR syntax error")
    return "".join(client_line(c) + "\n" for c in clients).encode()


def _client_kill(s: RespSession, rest: list[bytes]) -> Any:
    clients = s.state.sessions()
    if len(rest) == 1:  # the old form: CLIENT KILL addr:port
        for c in clients:
            if c.peer.encode() == rest[0]:
                c.kill()
                return OK
        raise RespError("ERR No such client")
    if len(rest) % 2:
        raise RespError("ERR syntax error")
    skipme = True
    chosen = clients
    for opt, value in zip(rest[::2], rest[1::2]):
        opt = upper(opt)
        if opt == b"ID":
            wanted = to_int(value)
            chosen = [c for c in chosen if c.id == wanted]
        elif opt == b"ADDR":
            chosen = [c for c in chosen if c.peer.encode() == value]
        elif opt == b"SKIPME":
            skipme = value.lower() != b"no"
        elif opt == b"USER":
            chosen = chosen if value == b"default" else []
        else:
            raise RespError("ERR syntax error")
    killed = 0
    for c in chosen:
        if c is s and skipme:
            continue
        c.kill()
        killed += 1
    return killed
