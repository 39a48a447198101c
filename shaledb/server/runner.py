"""Running a server until a signal: the event loop, SIGTERM/SIGINT, clean shutdown.

:func:`run` is what ``shaledb serve`` calls; the server itself is
:class:`shaledb.server.server.Server`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from shaledb.db import DB
from shaledb.server.server import Server, ServerConfig

log = logging.getLogger("shaledb.server")


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
            "ShaleDB listening on %s:%d (JSON lines and RESP, %s)%s",
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
