"""One RESP connection's state, and the rules every command goes through.

:class:`RespState` is shared by all RESP connections of a server: the database, the
keyspace write lock, the WATCH registry, the pub/sub broker, the expiry tracker, the
client list and the counters INFO shows. :class:`RespSession` is one connection:
protocol version, authentication, selected table, MULTI queue, watched keys and
subscriptions. :meth:`RespSession.execute` takes one command's words and returns its
encoded reply frames; it never raises.

Atomicity: every command flagged ``write`` runs under ``RespState.lock``, and so does
a whole EXEC, so a read-modify-write command (INCR, APPEND, SET NX, ...) and a
transaction are atomic with respect to every other RESP command. Reads take no lock.
A JSON-lines request does not take the lock: it is atomic by itself, and WATCH
notices what it changed by comparing values (:mod:`shaledb.server.transactions`).

Thread safety: a session runs one command at a time, on a worker thread; the event
loop only reads ``authenticated``, ``protocol``, ``closing`` and the subscription
counts between commands.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shaledb import DB, AuthenticationError, NotFoundError, ShaleDBError, Table
from shaledb.arguments import key_bytes
from shaledb.keyspace import DEFAULT_NAMESPACE, DEFAULT_TABLE

# The command modules register themselves in REGISTRY on import.
from shaledb.server import resp_connection_commands, resp_keys, resp_server, resp_strings  # noqa: E402, F401, I001
from shaledb.server.expiry import ExpiryTracker
from shaledb.server.pubsub import Broker
from shaledb.server.resp_commands import REGISTRY, Replies, RespError, Spec, text, wrong_args
from shaledb.server.resp_protocol import (
    RESP2,
    ErrorReply,
    encode,
)
from shaledb.server.resp_store import BatchStore, DirectStore, now_ms, table_ref
from shaledb.server.transactions import WatchRegistry

log = logging.getLogger("shaledb.server")

#: Highest numbered database SELECT accepts (0 to 15, as Redis's default ``databases``).
DATABASES = 16


@dataclass
class RespConfig:
    """The RESP side's settings (``shaledb serve`` options)."""

    max_frame_bytes: int
    #: Largest frame before AUTH when a password is set.
    unauthenticated_frame_bytes: int = 16 * 1024
    #: Bytes queued to a subscriber before it is disconnected.
    pubsub_buffer_bytes: int = 32 * 1024 * 1024
    idle_timeout: float = 0.0
    port: int = 0
    max_clients: int = 10_000


class RespState:
    """What all RESP connections of one server share. Thread-safe."""

    def __init__(
        self,
        db: DB,
        password: str | None,
        config: RespConfig,
        record: Callable[[str, bool], None] | None = None,
        server_stats: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.db = db
        self.password = password
        self.config = config
        self.record = record or (lambda name, ok: None)
        self.server_stats = server_stats or dict
        #: Held by every write command and by EXEC (see the module docstring).
        #: Reentrant: a command holding it may create a SELECT database (COPY ... DB n,
        #: SELECT inside MULTI), which takes it too.
        self.lock = threading.RLock()
        self.direct = DirectStore(self)
        self.watches = WatchRegistry()
        self.broker = Broker()
        self.expiry = ExpiryTracker(self)
        self.started = time.time()
        self.last_save = int(time.time())
        self.dirty = 0  # writes since the last SAVE, for INFO persistence
        self._ids = itertools.count(1)
        self._clients_lock = threading.Lock()
        self.clients: dict[int, RespSession] = {}
        self._tables: dict[tuple[str, str], Table] = {}
        self.commands_processed = 0
        self.keyspace_hits = 0
        self.keyspace_misses = 0
        #: CONFIG GET/SET values (the keys clients ask for; most are informational).
        self.settings: dict[str, str] = {
            "save": "",
            "appendonly": "yes",
            "appendfsync": "everysec",
            "databases": str(DATABASES),
            "maxmemory": "0",
            "maxmemory-policy": "noeviction",
            "timeout": str(int(config.idle_timeout)),
            "port": str(config.port),
            "maxclients": str(config.max_clients),
            "proto-max-bulk-len": str(config.max_frame_bytes),
            "client-output-buffer-limit": (
                f"normal 0 0 0 slave 0 0 0 pubsub {config.pubsub_buffer_bytes} 0 0"
            ),
            "notify-keyspace-events": "",
            "hz": "10",
        }

    def json_wrote(self, table: Table, keys: Sequence[object], ttl: float | None) -> None:
        """A JSON-lines request wrote ``keys`` of ``table`` (with time to live ``ttl``):
        the sessions watching them fail their EXEC, and their deadlines are swept."""
        self.dirty += len(keys)
        if ttl is None and not self.watches.active:
            return  # the common case: nobody to tell
        tref = table_ref(table)
        refs = [(tref, key_bytes(key)[0]) for key in keys]
        for ref in refs:
            self.watches.touch(ref)
        if ttl is not None:
            deadline = now_ms() + round(ttl * 1000)
            for ref in refs:
                self.expiry.note_ref(ref, deadline)

    def new_session(self, peer: str = "", kill: Callable[[], None] | None = None) -> RespSession:
        session = RespSession(self, next(self._ids), peer, kill)
        with self._clients_lock:
            self.clients[session.id] = session
        return session

    def forget(self, session: RespSession) -> None:
        """A connection closed: drop its subscriptions, watches and client entry."""
        with self._clients_lock:
            self.clients.pop(session.id, None)
        self.broker.unsubscribe_all(session)
        self.watches.unwatch(session)

    def sessions(self) -> list[RespSession]:
        with self._clients_lock:
            return list(self.clients.values())

    def table(self, namespace: str, name: str) -> Table:
        """A table handle (cached). Raises NotFoundError when it does not exist."""
        if (namespace, name) == (DEFAULT_NAMESPACE, DEFAULT_TABLE):
            return self.db.default_table
        handle = self._tables.get((namespace, name))
        if handle is None:
            handle = self.db.table(name, namespace=namespace)
            self._tables[(namespace, name)] = handle
        return handle

    def numbered_table(self, index: int) -> Table:
        """Database ``index`` of SELECT: 0 is the default table, n is ``default:dbN``."""
        if index == 0:
            return self.db.default_table
        name = f"db{index}"
        try:
            return self.table(DEFAULT_NAMESPACE, name)
        except NotFoundError:
            with self.lock:
                return self.db.namespace(DEFAULT_NAMESPACE).create_table(name, exist_ok=True)

    def tables(self) -> list[Table]:
        """Every table of every namespace."""
        found: list[Table] = []
        for namespace in self.db.list_namespaces():
            for name in self.db.namespace(namespace).list_tables():
                found.append(self.table(namespace, name))
        return found


class RespSession:
    """One RESP connection. Used by one thread at a time."""

    def __init__(
        self, state: RespState, client_id: int, peer: str, kill: Callable[[], None] | None
    ) -> None:
        self.state = state
        self.id = client_id
        self.peer = peer
        self.kill = kill or (lambda: None)
        self.created = time.time()
        #: Wall-clock time of the last request (CLIENT LIST's idle, --idle-timeout).
        self.last_active = self.created
        self.last_command = "NULL"
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.protocol = RESP2
        self.authenticated = state.password is None
        self.table: Table = state.db.default_table
        self.db_label = "0"
        self.store: DirectStore | BatchStore = state.direct
        # MULTI: the queued commands, and whether queueing one failed.
        self.in_multi = False
        self.queued: list[tuple[Spec, list[bytes]]] = []
        self.multi_error = False
        # Set by the WATCH registry when a watched key is written (or at UNWATCH time).
        self.dirty = False
        self.channels: set[bytes] = set()
        self.patterns: set[bytes] = set()
        #: Set by QUIT: close once the reply is sent.
        self.closing = False
        #: Sends a pub/sub message frame to this connection (set by the connection).
        self.push: Callable[[bytes], None] = lambda frame: None

    @property
    def subscribed(self) -> bool:
        return bool(self.channels or self.patterns)

    def execute(self, words: list[bytes]) -> bytes:
        """The encoded reply (or replies) to one command. Never raises."""
        state = self.state
        raw_name = words[0]
        spec = REGISTRY.get(raw_name.lower().decode("utf-8", "replace"))
        if spec is None:
            return self._refuse(unknown_command(words), "unknown")
        name = spec.name
        self.last_command = name
        if not spec.arity_ok(len(words)):
            return self._refuse(str(wrong_args(name)), name)
        flags = spec.flags
        if not self.authenticated and "noauth" not in flags:
            return self._refuse("NOAUTH Authentication required.", name)
        if self.protocol == RESP2 and self.subscribed and "pubsub" not in flags:
            return self._refuse(
                f"ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                "PING / QUIT / RESET are allowed in this context",
                name,
            )
        if self.in_multi and "nomulti" not in flags:
            self.queued.append((spec, words[1:]))
            return b"+QUEUED\r\n"
        state.commands_processed += 1
        reply = self.run(spec, words[1:])
        ok = type(reply) is not ErrorReply
        state.record(name, ok)
        if type(reply) is Replies:
            return b"".join([encode(r, self.protocol) for r in reply])
        return encode(reply, self.protocol)

    def _refuse(self, message: str, name: str) -> bytes:
        if self.in_multi:
            self.multi_error = True
        self.state.record(name, False)
        return encode(ErrorReply(message), self.protocol)

    def run(self, spec: Spec, args: list[bytes]) -> Any:
        """Run one command now (under the write lock if it writes); errors as replies."""
        try:
            if "write" in spec.flags and self.store is self.state.direct:
                with self.state.lock:
                    self.state.dirty += 1
                    return spec.handler(self, args)
            return spec.handler(self, args)
        except RespError as exc:
            return ErrorReply(str(exc))
        except AuthenticationError as exc:
            return ErrorReply(f"WRONGPASS {exc}")
        except ShaleDBError as exc:
            return ErrorReply(f"ERR {exc}")
        except Exception as exc:  # a bug: answer it, keep the connection and server up
            log.exception("internal error in RESP command %s", spec.name)
            return ErrorReply(f"ERR internal server error ({type(exc).__name__}); see the log")

    @contextmanager
    def atomic(self) -> Iterator[BatchStore]:
        """A store whose writes land together: the transaction's, or a new batch.

        The caller holds the write lock (write commands do).
        """
        if isinstance(self.store, BatchStore):
            yield self.store
            return
        batch = BatchStore(self.state, self.state.db)
        yield batch
        batch.commit()

    def reset(self) -> None:
        """RESET: back to a new connection's state (keeps the connection)."""
        self.in_multi = False
        self.queued.clear()
        self.multi_error = False
        self.state.watches.unwatch(self)
        self.state.broker.unsubscribe_all(self)
        self.protocol = RESP2
        self.name = b""
        self.table = self.state.db.default_table
        self.db_label = "0"
        self.authenticated = self.state.password is None


def unknown_command(words: list[bytes]) -> str:
    """Redis's text for an unknown command, naming its first arguments."""
    shown = "".join(f"'{text(w)}' " for w in words[1:17])
    return f"ERR unknown command '{text(words[0])}', with args beginning with: {shown}"
