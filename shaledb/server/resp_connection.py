"""RESP connections on the event loop, and the dispatcher that runs their commands.

A :class:`RespConnection` is the asyncio protocol of one RESP client once the
server has seen its first bytes. It parses what arrives
(:class:`~shaledb.server.resp_protocol.RequestParser`) and queues the commands; the
:class:`Dispatcher` gathers the queued commands of every connection that has some
during one loop iteration and runs them all as one job on the worker pool, in order
per connection, then writes each connection's replies. One job for many
connections is what makes unpipelined clients fast: the hop to a worker thread and
back costs as much as a GET, and is paid once per batch, not once per command. One
such shared job runs at a time; the commands arriving meanwhile make the next one.
Commands that may take long (:data:`SOLO_COMMANDS`) get a job of their own, so they
do not hold up other connections.

Invariants: a connection has at most one job in flight, so its replies leave in
order; while one is in flight new commands only queue. Reading pauses while a
connection has more than :data:`MAX_QUEUED_BYTES` of commands waiting, or while its
client does not read its replies (the transport's write buffer is full).

Memory: the bytes a connection holds (an unfinished frame plus queued commands) are
counted in :class:`InputBudget`, shared by all connections of both protocols; a
read that would take the total over ``--max-buffer-bytes`` ends that connection with
an error. Until a connection authenticates (when a password is set), frames are
limited to ``unauthenticated_frame_bytes``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from shaledb import DB, StorageError
from shaledb.server.resp_protocol import ErrorReply, FramingError, RequestParser, encode
from shaledb.server.resp_session import RespSession, RespState

log = logging.getLogger("shaledb.server")

#: Commands run in a job of their own (they may scan a whole table or flush).
SOLO_COMMANDS = frozenset(
    {
        b"keys",
        b"scan",
        b"flushdb",
        b"flushall",
        b"save",
        b"dbsize",
        b"info",
        b"exec",
        b"randomkey",
        b"copy",
        b"bgsave",
    }
)
#: Queued command bytes above which a connection stops reading until they ran.
MAX_QUEUED_BYTES = 4 * 1024 * 1024
BUFFERS_FULL = (
    b"-ERR server input buffers are full (--max-buffer-bytes); closing the connection\r\n"
)


class InputBudget:
    """Bytes of requests held by all connections, against one limit. Event loop only."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def grow(self, n: int) -> bool:
        """Count ``n`` more bytes; False (counting nothing) if that passes the limit."""
        if n > 0 and self.held + n > self.limit:
            return False
        self.held += n
        return True

    def release(self, n: int) -> None:
        self.held -= n


class Dispatcher:
    """Runs queued commands of many connections as one worker job per loop iteration."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: Executor, db: DB) -> None:
        self.loop = loop
        self.pool = pool
        self.db = db
        self._ready: list[RespConnection] = []
        self._scheduled = False
        self.jobs_in_flight = 0
        # At most one shared job runs at a time: commands that arrive meanwhile wait
        # and go together in the next one. More would only fight over the GIL and the
        # keyspace write lock (measured: INCR at 50 clients ran at half the rate).
        self._shared_running = 0

    def submit(self, conn: RespConnection) -> None:
        self._ready.append(conn)
        if not self._scheduled and not self._shared_running:
            self._scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        ready, self._ready = self._ready, []
        shared: list[tuple[RespConnection, list[list[bytes]]]] = []
        for conn in ready:
            work = (conn, conn.take())
            if any(words[0].lower() in SOLO_COMMANDS for words in work[1]):
                self._start([work], shared=False)
            else:
                shared.append(work)
        if shared:
            self._start(shared, shared=True)

    def _start(self, work: list[tuple[RespConnection, list[list[bytes]]]], shared: bool) -> None:
        self.jobs_in_flight += 1
        self._shared_running += shared
        future = self.loop.run_in_executor(self.pool, run_job, self.db, work)
        future.add_done_callback(lambda f: self._done(work, f, shared))

    def _done(
        self,
        work: list[tuple[RespConnection, list[list[bytes]]]],
        future: asyncio.Future[Any],
        shared: bool,
    ) -> None:
        self.jobs_in_flight -= 1
        self._shared_running -= shared
        try:
            replies: list[bytes] = future.result()
        except BaseException as exc:  # the pool is shutting down, or a bug
            log.error("RESP job failed: %r", exc)
            replies = [encode(ErrorReply(f"ERR server error: {exc}")) * len(c) for _, c in work]
        for (conn, _), reply in zip(work, replies):
            conn.finished(reply)
        if self._ready and not self._scheduled and not self._shared_running:
            self._scheduled = True
            self.loop.call_soon(self._flush)


def run_job(db: DB, work: list[tuple[RespConnection, list[list[bytes]]]]) -> list[bytes]:
    """Run each connection's commands in order; their encoded replies (on a worker)."""
    out: list[bytes] = []
    try:
        # No reply leaves before this returns, so the writes of the whole job share one
        # fsync (fsync "always"), taken after the keyspace lock is released.
        with db.deferred_sync():
            for conn, commands in work:
                session = conn.session
                parts = []
                for words in commands:
                    parts.append(session.execute(words))
                    if session.closing:
                        break
                out.append(b"".join(parts))
    except StorageError as exc:
        # The shared fsync failed: none of these writes may be acknowledged as durable.
        error = encode(ErrorReply(f"ERR storage error, the write may not be durable: {exc}"))
        return [error * len(commands) for _, commands in work]
    return out


class RespConnection(asyncio.Protocol):
    """One RESP client on the event loop (see the module docstring)."""

    def __init__(
        self,
        state: RespState,
        dispatcher: Dispatcher,
        budget: InputBudget,
        transport: asyncio.Transport,
        peer: str,
        stopping: Callable[[], bool],
        on_idle: Callable[[bool], None],
    ) -> None:
        self.state = state
        self.dispatcher = dispatcher
        self.budget = budget
        self.transport = transport
        self.loop = dispatcher.loop
        self.stopping = stopping
        self.on_idle = on_idle
        self.session: RespSession = state.new_session(peer, self.kill_threadsafe)
        self.session.push = self.push_threadsafe
        self.session.last_active = time.time()
        config = state.config
        self.parser = RequestParser(
            config.max_frame_bytes
            if self.session.authenticated
            else min(config.max_frame_bytes, config.unauthenticated_frame_bytes)
        )
        self.queue: list[list[bytes]] = []
        self.queued_bytes = 0
        self.running_bytes = 0
        self.held_partial = 0
        self.busy = False
        self.error: FramingError | None = None
        self.paused = False
        self.write_paused = False
        self.closed = self.loop.create_future()
        #: Called once the connection is gone (the old stream protocol's connection_lost).
        self.after_close: Callable[[Exception | None], None] = lambda exc: None

    # -- input -----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.error is not None or self.transport.is_closing():
            return
        self.session.last_active = time.time()
        before = self.parser.buffered
        commands, error = self.parser.feed(data)
        after = self.parser.buffered
        complete = before + len(data) - after if error is None else 0
        if not self.budget.grow(after - self.held_partial + complete):
            self.transport.write(BUFFERS_FULL)
            self._close()
            return
        self.held_partial = after
        if commands:
            self.queue.extend(commands)
            self.queued_bytes += complete
        if error is not None:
            self.error = error
            self._pause()
        elif self.queued_bytes > MAX_QUEUED_BYTES:
            self._pause()
        self._kick()

    def eof_received(self) -> bool | None:
        # Run what was read before the peer closed its side, then close.
        self.error = self.error or FramingError("")
        self._kick()
        return True

    def take(self) -> list[list[bytes]]:
        """The queued commands, handed to a job (the dispatcher calls this)."""
        commands, self.queue = self.queue, []
        self.running_bytes, self.queued_bytes = self.queued_bytes, 0
        return commands

    def _kick(self) -> None:
        if self.busy:
            return
        if self.queue:
            self.busy = True
            self.on_idle(False)
            self.dispatcher.submit(self)
        elif self.error is not None:
            if str(self.error):
                self.transport.write(encode(ErrorReply(f"ERR {self.error}")))
            self._close()
        else:
            self.on_idle(True)

    def finished(self, replies: bytes) -> None:
        """A job ran this connection's commands: send the replies, go on."""
        self.busy = False
        self.budget.release(self.running_bytes)
        self.running_bytes = 0
        if self.transport.is_closing():
            return
        if replies:
            self.transport.write(replies)
        session = self.session
        if session.closing or self.stopping():
            self._close()
            return
        config = self.state.config
        if session.authenticated:
            self.parser.max_frame = config.max_frame_bytes
        if self.paused and self.error is None and self.queued_bytes <= MAX_QUEUED_BYTES:
            self._resume()
        self._kick()

    # -- flow control ----------------------------------------------------------------

    def _pause(self) -> None:
        if not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self.paused and not self.write_paused:
            self.paused = False
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_paused = True
        self._pause()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.error is None and self.queued_bytes <= MAX_QUEUED_BYTES:
            self._resume()

    # -- pub/sub and CLIENT KILL (called from worker threads) --------------------------

    def push_threadsafe(self, frame: bytes) -> None:
        self.loop.call_soon_threadsafe(self._push, frame)

    def _push(self, frame: bytes) -> None:
        if self.transport.is_closing():
            return
        limit = self.state.config.pubsub_buffer_bytes
        if self.transport.get_write_buffer_size() + len(frame) > limit:
            log.warning(
                "closing subscriber %s: output buffer over %d bytes (it does not read)",
                self.session.peer,
                limit,
            )
            self.transport.abort()
            return
        self.transport.write(frame)

    def kill_threadsafe(self) -> None:
        self.loop.call_soon_threadsafe(self._close)

    # -- closing ---------------------------------------------------------------------

    def idle_for(self, now: float) -> float:
        """Seconds since the last request; 0 while busy or subscribed (never timed out)."""
        if self.busy or self.session.subscribed:
            return 0.0
        return now - self.session.last_active

    def _close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.budget.release(self.held_partial + self.queued_bytes)
        self.held_partial = self.queued_bytes = 0
        self.queue = []
        self.state.forget(self.session)
        if not self.closed.done():
            self.closed.set_result(None)
        self.after_close(exc)
