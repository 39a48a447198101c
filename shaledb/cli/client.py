"""``shaledb client``: an interactive client for a server, on its default table.

Commands (one per line): ``put <key> <value>``, ``get <key>``, ``range <start> <end>``,
``batch <k1> <v1> <k2> <v2> ...``, ``delete <key>``, ``ping``, ``help``,
``quit``/``exit``. Words split like a POSIX shell, so quotes group spaces
(``put greeting "hello world"``); for ``put``, words after the key are joined with
single spaces. On a terminal it edits lines as ``shaledb shell`` does (the same
session: history in a file, Tab completes the commands, Ctrl-C drops the line, Ctrl-D
leaves), and every error prints one ``[ERROR] <message>`` line, in the shell's forms.
When standard input or output is not a terminal, commands are read from standard
input without a prompt (``shaledb client < script.txt``).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator

import click

from shaledb.cli.exit_codes import EXIT_FAILED, INTERRUPTED
from shaledb.client import KVClient
from shaledb.errors import ShaleDBError

DEFAULT_HISTORY = "~/.shaledb_client_history"

HELP = """Commands:
  put <key> <value>            store a value
  get <key>                    print a value
  range <start> <end>          print every key from start to end (inclusive)
  batch <k1> <v1> <k2> <v2>..  store several pairs atomically
  delete <key>                 delete a key
  ping                         check the server
  help                         this text
  quit, exit                   leave"""


def _show(value: str | bytes) -> str:
    return value if isinstance(value, str) else repr(value)


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:  # an unbalanced quote: take the words as they are
        return line.split()


def _put(client: KVClient, args: list[str]) -> str:
    if len(args) < 2:
        raise _Usage("put <key> <value>")
    client.put(args[0], " ".join(args[1:]))
    return "Key-value pair stored"


def _get(client: KVClient, args: list[str]) -> str:
    if len(args) != 1:
        raise _Usage("get <key>")
    value = client.get(args[0])
    return "(not found)" if value is None else _show(value)


def _range(client: KVClient, args: list[str]) -> str:
    if len(args) != 2:
        raise _Usage("range <start> <end>")
    pairs = client.get_range(args[0], args[1])
    if not pairs:
        return "(empty)"
    lines = [f"{_show(k)} = {_show(v)}" for k, v in pairs]
    lines.append(f"({len(pairs)} {'pair' if len(pairs) == 1 else 'pairs'})")
    return "\n".join(lines)


def _batch(client: KVClient, args: list[str]) -> str:
    if not args or len(args) % 2:
        raise _Usage("batch <k1> <v1> <k2> <v2> ...")
    client.batch_put(args[0::2], args[1::2])
    return f"{len(args) // 2} key-value pairs stored"


def _delete(client: KVClient, args: list[str]) -> str:
    if len(args) != 1:
        raise _Usage("delete <key>")
    return "Key deleted" if client.delete(args[0]) else "Key not found"


def _ping(client: KVClient, args: list[str]) -> str:
    if args:
        raise _Usage("ping")
    client.ping()
    return "PONG"


class _Usage(Exception):
    """A command given the wrong number of words."""


_COMMANDS: dict[str, Callable[[KVClient, list[str]], str]] = {
    "put": _put,
    "get": _get,
    "range": _range,
    "batch": _batch,
    "delete": _delete,
    "ping": _ping,
}


def run_line(client: KVClient, line: str) -> str | None:
    """The output of one command line; None for quit/exit. Errors become ``[ERROR] ...``."""
    words = _words(line)
    if not words:
        return ""
    name, args = words[0].lower(), words[1:]
    if name in ("quit", "exit"):
        return None
    if name == "help":
        return HELP
    handler = _COMMANDS.get(name)
    if handler is None:
        return f"[ERROR] unknown command: {words[0]} (type help for the commands)"
    try:
        return handler(client, args)
    except _Usage as usage:
        return f"[ERROR] usage: {usage}"
    except ShaleDBError as exc:  # a lost connection included: the next command reconnects
        return f"[ERROR] {exc}"


#: Every command name, for Tab completion.
NAMES = (*_COMMANDS, "help", "quit", "exit")


def _script_lines() -> Iterator[str]:
    while line := sys.stdin.readline():
        yield line


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Server address.")
@click.option("--port", default=9999, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--password",
    envvar="SHALEDB_PASSWORD",
    default=None,
    help="Server password (also read from SHALEDB_PASSWORD).",
)
@click.option(
    "--timeout", default=30.0, show_default=True, type=float, help="Seconds to wait for each reply."
)
@click.option(
    "--history-file",
    envvar="SHALEDB_CLIENT_HISTORY",
    metavar="PATH",
    default=DEFAULT_HISTORY,
    show_default=True,
    help="Where the terminal keeps its history (env SHALEDB_CLIENT_HISTORY; '' for none).",
)
def client(host: str, port: int, password: str | None, timeout: float, history_file: str) -> None:
    """Talk to a ShaleDB server interactively (its default table)."""
    interactive = sys.stdin.isatty() and sys.stdout.isatty()

    def connect() -> KVClient:
        try:
            return KVClient(host=host, port=port, password=password, timeout=timeout)
        except ShaleDBError as exc:
            click.echo(f"[ERROR] {exc}")
            sys.exit(EXIT_FAILED)

    kv = connect()
    lines: Iterator[str] = _script_lines()
    if interactive:
        from shaledb.cli.terminal import (
            INTERRUPTED_LINE,
            CommandCompleter,
            prompt_session,
            typed_lines,
        )

        click.echo(f"Connected to ShaleDB at {host}:{port}. Type help for commands.")
        session = prompt_session(history_file, CommandCompleter(NAMES))
        lines = typed_lines(session, f"{host}:{port}> ")
    try:
        for line in lines:
            try:
                out = run_line(kv, line)
            except KeyboardInterrupt:
                if not interactive:
                    sys.exit(INTERRUPTED)
                # The reply may still come: a new connection keeps it from being read
                # as the next command's.
                click.echo(INTERRUPTED_LINE)
                kv.close()
                kv = connect()
                continue
            if out is None:
                break
            if out:
                click.echo(out)
    finally:
        kv.close()
    if interactive:
        click.echo("Bye.")
