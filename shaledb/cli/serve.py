"""``shaledb serve``: run the network server on a data directory (docs/protocol.md)."""

from __future__ import annotations

import logging
import signal
import sys

import click

from shaledb.cli.engine_option import engine_option
from shaledb.options import FSYNC_MODES
from shaledb.server.json_protocol import MAX_LINE_BYTES

_LOG_LEVELS = ("debug", "info", "warning", "error")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=9999,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port for clients (0: any free port).",
)
@click.option(
    "--data-dir",
    default="./data",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The database directory.",
)
@engine_option
@click.option(
    "--memtable-size",
    type=click.IntRange(min=1),
    default=None,
    help="Flush the memtable after this many entries (default: bounded by bytes).",
)
@click.option(
    "--fsync",
    type=click.Choice(FSYNC_MODES),
    default="everysec",
    show_default=True,
    help="When the write-ahead log is fsynced: before every reply, once a "
    "second, or when the OS decides.",
)
@click.option(
    "--password",
    envvar="SHALEDB_PASSWORD",
    default=None,
    help="Require clients to authenticate with this password (also read from SHALEDB_PASSWORD).",
)
@click.option(
    "--max-clients",
    default=10_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Refuse connections beyond this many.",
)
@click.option(
    "--max-request-bytes",
    default=MAX_LINE_BYTES,
    show_default=True,
    type=click.IntRange(min=1024),
    help="Longest request accepted: a JSON line, or a RESP command frame.",
)
@click.option(
    "--workers",
    default=16,
    show_default=True,
    type=click.IntRange(min=1),
    help="Threads that run database calls.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus metrics over HTTP on this port (path /metrics).",
)
@click.option(
    "--max-buffer-bytes",
    default=256 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(min=64 * 1024),
    help="Request bytes (unfinished requests and queued commands) held by all "
    "connections together; a connection that would pass it is closed with an error.",
)
@click.option(
    "--idle-timeout",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Close a connection after this many seconds without a request (0: never; "
    "pub/sub subscribers are exempt).",
)
@click.option(
    "--pubsub-buffer-bytes",
    default=32 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(min=1024),
    help="Disconnect a pub/sub subscriber whose unread messages pass this many bytes.",
)
@click.option("--log-level", type=click.Choice(_LOG_LEVELS), default="info", show_default=True)
@click.option(
    "--in-memory",
    is_flag=True,
    help="Keep data in memory only: nothing is written, nothing survives a "
    "restart (for trials and tests).",
)
def serve(
    host: str,
    port: int,
    data_dir: str,
    engine: str | None,
    memtable_size: int | None,
    fsync: str,
    password: str | None,
    max_clients: int,
    max_request_bytes: int,
    workers: int,
    metrics_port: int | None,
    max_buffer_bytes: int,
    idle_timeout: float,
    pubsub_buffer_bytes: int,
    log_level: str,
    in_memory: bool,
) -> None:
    """Serve a database over TCP: JSON lines and the Redis protocol on one port.

    SIGTERM or SIGINT stops it cleanly: requests in flight finish, the log is made
    durable, and the exit status is 0.
    """
    import shaledb
    from shaledb.cli.exit_codes import exit_code_for
    from shaledb.errors import ShaleDBError
    from shaledb.server.runner import run
    from shaledb.server.server import ServerConfig

    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if in_memory and engine is not None:
        raise click.UsageError("--in-memory keeps no files; --engine picks an on-disk engine")
    try:
        if in_memory:
            from shaledb.engine.memory import MemoryEngine
            from shaledb.options import Options

            db = shaledb.DB.over(MemoryEngine(Options(fsync=fsync, memtable_entries=memtable_size)))
        else:
            db = shaledb.open(data_dir, engine=engine, memtable_size=memtable_size, fsync=fsync)
    except ShaleDBError as exc:
        click.echo(f"Error: cannot open {data_dir}: {exc}", err=True)
        sys.exit(exit_code_for(exc))
    config = ServerConfig(
        host=host,
        port=port,
        password=password,
        max_clients=max_clients,
        max_line_bytes=max_request_bytes,
        workers=workers,
        metrics_port=metrics_port,
        max_buffer_bytes=max_buffer_bytes,
        idle_timeout=idle_timeout,
        pubsub_buffer_bytes=pubsub_buffer_bytes,
    )
    try:
        run(db, config)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
    finally:
        # The server has stopped; a repeated SIGTERM/SIGINT must not cut the close
        # that makes the log durable (kill -9 still can, and loses nothing acknowledged).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        db.close()
