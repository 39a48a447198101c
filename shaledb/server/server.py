"""The asyncio server: one TCP port, protocol chosen by a connection's first byte.

Spec: docs/protocol.md. ``{`` after optional blanks (space, tab, CR, LF) or a UTF-8
byte order mark starts JSON lines (:mod:`shaledb.server.json_protocol`); anything
else is the Redis protocol (:mod:`shaledb.server.resp_connection`), whose connection
takes the transport over from the stream once the first bytes have decided.

Concurrency: the event loop (uvloop when importable) only moves bytes. Every batch
of request lines that one read delivers is executed on a thread pool, in order, by
one job; the database is thread-safe, and with ``fsync=always`` concurrent jobs share
fsyncs (group commit). A slow client therefore holds one connection task and at most
one worker, never the loop. A client that does not read its replies is throttled by
``drain()``: its connection stops reading until the socket buffer empties.

Shutdown (:meth:`Server.stop`, wired to SIGTERM and SIGINT by :func:`run`): the
listening socket closes, idle connections close, busy ones finish the requests they
have read and send the replies, then :func:`run` returns and the caller closes the
database (which makes the log durable).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast

from shaledb.db import DB
from shaledb.errors import ServerError, StorageError
from shaledb.server import json_protocol
from shaledb.server.commands import Commands, Session
from shaledb.server.metrics import CONTENT_TYPE, Metrics, render
from shaledb.server.resp_connection import Dispatcher, InputBudget, RespConnection
from shaledb.server.resp_session import RespConfig, RespState

log = logging.getLogger("shaledb.server")

#: Bytes asked of the socket per read.
READ_SIZE = 64 * 1024
#: What may come before the ``{`` of a JSON-lines connection.
_JSON_BLANKS = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
#: Default bound on request bytes held by all connections together.
MAX_BUFFER_BYTES = 256 * 1024 * 1024
#: Largest request (line or frame) before AUTH, when a password is set.
UNAUTHENTICATED_REQUEST_BYTES = 16 * 1024
#: Seconds between expiry sweeps (Redis's expire cycle runs 10 times a second).
SWEEP_INTERVAL = 0.1
#: The RESP form of the max-clients refusal (the JSON form is built by the protocol).
RESP_TOO_MANY_CLIENTS = b"-ERR max number of clients reached\r\n"
#: Seconds that shutdown waits for busy connections before cutting them.
SHUTDOWN_GRACE = 30.0


@dataclass
class ServerConfig:
    """How the server listens. See ``shaledb serve --help`` for each field."""

    host: str = "127.0.0.1"
    port: int = 9999
    password: str | None = None
    max_clients: int = 10_000
    max_line_bytes: int = json_protocol.MAX_LINE_BYTES
    workers: int = 16
    metrics_port: int | None = None
    #: Request bytes (unfinished lines/frames, queued commands) held by all connections.
    max_buffer_bytes: int = MAX_BUFFER_BYTES
    #: Close a connection after this many seconds without a request (0: never).
    idle_timeout: float = 0.0
    #: Output bytes queued to a pub/sub subscriber before it is disconnected.
    pubsub_buffer_bytes: int = 32 * 1024 * 1024
    unauthenticated_request_bytes: int = UNAUTHENTICATED_REQUEST_BYTES


class _Connection:
    """What shutdown needs to know of one connection."""

    __slots__ = ("task", "idle")

    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task
        # True while the connection waits for a request and holds none: shutdown may
        # cut it without losing a reply.
        self.idle = False


class Server:
    """A ShaleDB server over an open database. Start with :meth:`start`.

    The server never closes the database; its owner does, after :meth:`wait_stopped`.
    """

    def __init__(self, db: DB, config: ServerConfig) -> None:
        self.db = db
        self.config = config
        self.metrics = Metrics()
        self.pool = ThreadPoolExecutor(config.workers, thread_name_prefix="shaledb-worker")
        self.resp = RespState(
            db,
            config.password,
            RespConfig(
                max_frame_bytes=config.max_line_bytes,
                unauthenticated_frame_bytes=config.unauthenticated_request_bytes,
                pubsub_buffer_bytes=config.pubsub_buffer_bytes,
                idle_timeout=config.idle_timeout,
                port=config.port,
                max_clients=config.max_clients,
            ),
            record=self.metrics.record,
            server_stats=self.metrics.snapshot,
        )
        # JSON-lines writes tell RESP's WATCH and expiry sweep, as RESP writes do.
        self.commands = Commands(
            db,
            config.password,
            server_stats=self.metrics.snapshot,
            record=self.metrics.record,
            on_write=self.resp.json_wrote,
        )
        self.budget = InputBudget(config.max_buffer_bytes)
        self._dispatcher: Dispatcher | None = None
        self._resp_connections: set[RespConnection] = set()
        self._timers: list[asyncio.Task[None]] = []
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._listeners: list[asyncio.AbstractServer] = []
        self._stopping = False
        self._stopped = asyncio.Event()
        #: The bound port (differs from ``config.port`` when that is 0).
        self.port = config.port
        self.metrics_port = config.metrics_port

    async def start(self) -> None:
        """Bind the port (and the metrics port). Raises OSError when binding fails."""
        listener = await asyncio.start_server(
            self._serve_connection, self.config.host, self.config.port, backlog=1024
        )
        self._listeners.append(listener)
        self.port = _bound_port(listener)
        self.resp.config.port = self.port
        self.resp.settings["port"] = str(self.port)
        loop = asyncio.get_running_loop()
        self._dispatcher = Dispatcher(loop, self.pool, self.db)
        self._timers.append(loop.create_task(self._sweep_expired()))
        if self.config.idle_timeout > 0:
            self._timers.append(loop.create_task(self._close_idle()))
        if self.config.metrics_port is not None:
            metrics = await asyncio.start_server(
                self._serve_metrics, self.config.host, self.config.metrics_port
            )
            self._listeners.append(metrics)
            self.metrics_port = _bound_port(metrics)

    def stop(self) -> None:
        """Begin a clean shutdown (idempotent; a second call cuts busy connections too)."""
        if self._stopping:
            for connection in self._connections.values():
                connection.task.cancel()
            return
        self._stopping = True
        for listener in self._listeners:
            listener.close()
        for timer in self._timers:
            timer.cancel()
        for connection in self._connections.values():
            if connection.idle:
                connection.task.cancel()
        asyncio.get_running_loop().create_task(self._finish())

    async def _finish(self) -> None:
        tasks = list(self._connections)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        # Jobs of cancelled connections may still run; wait for them before the DB closes.
        await asyncio.get_running_loop().run_in_executor(None, self.pool.shutdown, True)
        self._stopped.set()

    async def wait_stopped(self) -> None:
        """Return once :meth:`stop` has finished every connection and worker job."""
        await self._stopped.wait()

    # -- connections ---------------------------------------------------------------

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = _Connection(task)
        self._connections[task] = connection
        self.metrics.connection_opened()
        try:
            if self._stopping:
                return
            first, is_json = await self._first_bytes(reader, connection)
            if not first:
                return
            if len(self._connections) > self.config.max_clients:
                self.metrics.connection_rejected()
                writer.write(
                    json_protocol.encode_error(ServerError("max number of clients reached"))
                    if is_json
                    else RESP_TOO_MANY_CLIENTS
                )
            elif is_json:
                await self._serve_json(reader, writer, connection, first)
            else:
                await self._serve_resp(reader, writer, connection, first)
                return
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError, _IdleTimeout):
            pass  # the peer left, shutdown cut an idle connection, or it idled too long
        except Exception:
            log.exception("connection failed")
        finally:
            del self._connections[task]
            self.metrics.connection_closed()
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader, connection: _Connection) -> bytes:
        connection.idle = True
        try:
            if self.config.idle_timeout > 0:
                try:
                    return await asyncio.wait_for(reader.read(READ_SIZE), self.config.idle_timeout)
                except asyncio.TimeoutError:
                    raise _IdleTimeout from None
            return await reader.read(READ_SIZE)
        finally:
            connection.idle = False

    async def _first_bytes(
        self, reader: asyncio.StreamReader, connection: _Connection
    ) -> tuple[bytes, bool]:
        """The first bytes of a connection, and whether they start JSON lines.

        Reads until something other than blanks (and a leading BOM) has come, so a JSON
        client that starts with a newline is still recognised. The BOM is dropped.
        """
        data = b""
        limit = min(self.config.max_line_bytes, self.config.unauthenticated_request_bytes)
        while True:
            more = await self._read(reader, connection)
            if not more:
                return b"", False
            data += more
            body = data[len(_BOM) :] if data.startswith(_BOM) else data
            if _BOM.startswith(data):
                continue  # a BOM cut short: wait for the rest
            start = body.lstrip(_JSON_BLANKS)
            if start:
                if start[:1] == b"{":
                    return body, True
                return data, False
            if len(data) > limit:
                return data, False  # only blanks, and too many of them: RESP skips them

    async def _serve_resp(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: _Connection,
        first: bytes,
    ) -> None:
        """Hand the transport to a :class:`RespConnection` and wait until it closes."""
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        transport = cast(asyncio.Transport, writer.transport)
        assert self._dispatcher is not None
        stream_protocol = transport.get_protocol()
        peer = writer.get_extra_info("peername")
        conn = RespConnection(
            self.resp,
            self._dispatcher,
            self.budget,
            transport,
            f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer),
            stopping=lambda: self._stopping,
            on_idle=lambda idle: setattr(connection, "idle", idle),
        )
        # The stream protocol waits for its connection_lost (writer.wait_closed()).
        conn.after_close = stream_protocol.connection_lost
        transport.set_protocol(conn)
        # Bytes the stream had buffered beyond `first` (reader.read() at EOF returns
        # them without waiting, so no new data can arrive in between).
        reader.feed_eof()
        rest = await reader.read()
        self._resp_connections.add(conn)
        try:
            conn.data_received(first + rest)
            if not transport.is_reading() and not conn.paused:
                transport.resume_reading()
            await asyncio.shield(conn.closed)
        except asyncio.CancelledError:
            transport.close()
            await conn.closed
        finally:
            self._resp_connections.discard(conn)

    async def _sweep_expired(self) -> None:
        """Run the expiry sweep about ten times a second (docs/protocol.md, "Expiry")."""
        loop = asyncio.get_running_loop()
        expiry = self.resp.expiry
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                await loop.run_in_executor(self.pool, expiry.sweep)
            except RuntimeError:
                return  # the pool is shutting down
            except Exception:
                log.exception("expiry sweep failed")

    async def _close_idle(self) -> None:
        """Close RESP connections idle longer than --idle-timeout (JSON ones time out
        in :meth:`_read`)."""
        timeout = self.config.idle_timeout
        while True:
            await asyncio.sleep(min(1.0, timeout / 2))
            now = time.time()
            for conn in list(self._resp_connections):
                if conn.idle_for(now) > timeout:
                    conn.transport.close()

    async def _serve_json(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: _Connection,
        data: bytes,
    ) -> None:
        loop = asyncio.get_running_loop()
        session = self.commands.session()
        framer = json_protocol.LineFramer(self._json_line_limit(session))
        held = 0  # bytes of the unfinished line, counted in self.budget
        try:
            while True:
                lines, too_long = framer.feed(data)
                end = data.rfind(b"\n")
                tail = held + len(data) if end < 0 else len(data) - end - 1
                if not too_long and not self.budget.grow(tail - held):
                    writer.write(json_protocol.encode_error(ServerError(_BUFFERS_FULL)))
                    return
                held = tail if not too_long else held
                if lines:
                    replies = await loop.run_in_executor(
                        self.pool, self._respond_json, session, lines
                    )
                    writer.write(replies)
                    await writer.drain()
                    framer.max_line = self._json_line_limit(session)
                if too_long:
                    writer.write(json_protocol.line_too_long(framer.max_line))
                    return
                if self._stopping:
                    return
                data = await self._read(reader, connection)
                if not data:
                    last = framer.finish()
                    if last.strip():
                        # On the pool, as every other request: it may wait for the disk.
                        reply = await loop.run_in_executor(
                            self.pool, self._respond_json, session, [last]
                        )
                        writer.write(reply)
                    return
        finally:
            self.budget.release(held)

    def _json_line_limit(self, session: Session) -> int:
        if session.authenticated:
            return self.config.max_line_bytes
        return min(self.config.max_line_bytes, self.config.unauthenticated_request_bytes)

    def _respond_json(self, session: Session, lines: list[bytes]) -> bytes:
        # The gate keeps expiry sweeps from interleaving with JSON writes (expiry.py).
        with self.resp.expiry.gate:
            return _respond_all(session, lines)

    # -- metrics endpoint -----------------------------------------------------------

    async def _serve_metrics(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            parts = head.split(b" ", 2)
            path = parts[1] if len(parts) > 1 else b""
            if path.split(b"?")[0] in (b"/metrics", b"/"):
                body = render(self.metrics.snapshot()).encode("utf-8")
                status, ctype = b"200 OK", CONTENT_TYPE.encode("ascii")
            else:
                body, status, ctype = b"not found\n", b"404 Not Found", b"text/plain"
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: "
                + ctype
                + b"\r\nContent-Length: "
                + str(len(body)).encode("ascii")
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (
            asyncio.TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
        ):
            pass
        finally:
            writer.close()


class _IdleTimeout(Exception):
    """A connection sent nothing for --idle-timeout seconds."""


_BUFFERS_FULL = "server input buffers are full (--max-buffer-bytes); closing the connection"


def _bound_port(listener: asyncio.AbstractServer) -> int:
    sockets = getattr(listener, "sockets", None) or ()
    return int(sockets[0].getsockname()[1]) if sockets else 0


def _respond_all(session: Session, lines: list[bytes]) -> bytes:
    """The replies to ``lines``, in order (runs on a worker thread)."""
    if len(lines) == 1:
        return json_protocol.respond(session, lines[0])
    # Pipelined requests: no reply leaves before this returns, so their writes can share
    # one fsync (fsync "always") instead of waiting for one each.
    try:
        with session.db.deferred_sync():
            return b"".join([json_protocol.respond(session, line) for line in lines])
    except StorageError as exc:
        # The shared fsync failed: none of these writes may be acknowledged as durable.
        return json_protocol.encode_error(exc) * len(lines)
