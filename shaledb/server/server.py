"""The asyncio server: one TCP port, protocol chosen by a connection's first byte.

Spec: docs/protocol.md. ``{`` starts JSON lines (:mod:`shaledb.server.json_protocol`);
any other first byte is meant for RESP, which this version answers with one RESP
error line before closing.

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
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from shaledb.db import DB
from shaledb.errors import ServerError, StorageError
from shaledb.server import json_protocol
from shaledb.server.commands import Commands, Session
from shaledb.server.metrics import CONTENT_TYPE, Metrics, render

log = logging.getLogger("shaledb.server")

#: Bytes asked of the socket per read.
READ_SIZE = 64 * 1024
#: The reply to a connection whose first byte is not ``{`` (RESP comes later).
RESP_NOT_SUPPORTED = (
    b"-ERR this server speaks JSON lines only for now: send one JSON object per line, "
    b'such as {"command": "ping"}\r\n'
)
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
        self.commands = Commands(
            db, config.password, server_stats=self.metrics.snapshot, record=self.metrics.record
        )
        self.pool = ThreadPoolExecutor(config.workers, thread_name_prefix="shaledb-worker")
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
            first = await self._read(reader, connection)
            if not first:
                return
            if len(self._connections) > self.config.max_clients:
                self.metrics.connection_rejected()
                writer.write(
                    json_protocol.encode_error(ServerError("max number of clients reached"))
                    if first[:1] == b"{"
                    else RESP_TOO_MANY_CLIENTS
                )
            elif first[:1] == b"{":
                await self._serve_json(reader, writer, connection, first)
            else:
                writer.write(RESP_NOT_SUPPORTED)
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass  # the peer left, or shutdown cut an idle connection
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
            return await reader.read(READ_SIZE)
        finally:
            connection.idle = False

    async def _serve_json(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: _Connection,
        data: bytes,
    ) -> None:
        loop = asyncio.get_running_loop()
        session = self.commands.session()
        framer = json_protocol.LineFramer(self.config.max_line_bytes)
        while True:
            lines, too_long = framer.feed(data)
            if lines:
                replies = await loop.run_in_executor(self.pool, _respond_all, session, lines)
                writer.write(replies)
                await writer.drain()
            if too_long:
                writer.write(json_protocol.line_too_long(self.config.max_line_bytes))
                return
            if self._stopping:
                return
            data = await self._read(reader, connection)
            if not data:
                last = framer.finish()
                if last.strip():
                    writer.write(_respond_all(session, [last]))
                return

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


def _loop_runner() -> tuple[Callable[..., None], str]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run, "asyncio"
    return uvloop.run, "uvloop"


def run(db: DB, config: ServerConfig, ready: Callable[[Server], None] | None = None) -> None:
    """Serve ``db`` until SIGTERM or SIGINT, then return after a clean shutdown.

    ``ready`` is called once the port is bound. The caller closes ``db`` afterwards.
    Raises OSError when the port cannot be bound.
    """
    runner, loop_name = _loop_runner()

    async def main() -> None:
        server = Server(db, config)
        await server.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, server.stop)
            except NotImplementedError:  # Windows: no loop signal handlers
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(server.stop))
        log.info(
            "ShaleDB listening on %s:%d (JSON lines, %s)%s",
            config.host,
            server.port,
            loop_name,
            f"; metrics on port {server.metrics_port}" if server.metrics_port is not None else "",
        )
        if ready is not None:
            ready(server)
        await server.wait_stopped()
        log.info("ShaleDB server stopped")

    runner(main())
