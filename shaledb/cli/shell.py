"""``shaledb shell``: the interactive shell, on a terminal or reading a script.

On a terminal (standard input and output both ttys) the shell prompts with
``kvstore> ``, keeps a history across sessions in a file, completes commands,
namespaces and tables with Tab; Ctrl-C drops the line being typed and Ctrl-D leaves.
Otherwise it reads one command a line from standard input and prints only the replies,
so ``shaledb shell < script.txt`` works. The commands themselves live in
:mod:`shaledb.cli.shell_commands`; docs/shell.md specifies all of it.
"""

from __future__ import annotations

import io
import sys
from typing import IO

import click

from shaledb.cli.engine_option import engine_option
from shaledb.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE, INTERRUPTED, exit_code_for
from shaledb.cli.shell_commands import PROMPT, Shell, ShellDB
from shaledb.cli.shell_syntax import UsageError
from shaledb.errors import ShaleDBError

DEFAULT_DATA_DIR = "./data"
DEFAULT_HISTORY = "~/.shaledb_history"


def run_lines(shell: Shell, stream: IO[str], prompt_to: IO[str] | None = None) -> None:
    """Run every line of ``stream`` until it ends or ``exit`` runs.

    Args:
        prompt_to: where to write the prompt before each line, or None for no prompt.
    """
    while not shell.finished:
        if prompt_to is not None:
            prompt_to.write(PROMPT)
            prompt_to.flush()
        line = stream.readline()
        if not line:
            break
        shell.execute(line)
        sys.stdout.flush()


def run_terminal(shell: Shell, history_file: str) -> None:
    """Run the interactive loop on the terminal until ``exit`` or Ctrl-D."""
    from shaledb.cli.progress import Ticker
    from shaledb.cli.shell_completion import ShellCompleter
    from shaledb.cli.terminal import INTERRUPTED_LINE, prompt_session, typed_lines

    shell.ticker = Ticker
    for line in typed_lines(prompt_session(history_file, ShellCompleter(shell)), PROMPT):
        try:
            shell.execute(line)
        except KeyboardInterrupt:
            shell.errors += 1
            shell.write(INTERRUPTED_LINE)
        if shell.finished:
            break


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``[IPv6]:PORT``) as ``(host, port)``; raises UsageError (an
    InvalidArgumentError)."""
    host, sep, port = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--connect takes HOST:PORT; got {address!r}")
    return host, int(port)


def _open(data_dir: str | None, connect: str | None, engine: str | None = None) -> ShellDB:
    """The database or remote client to run the shell on. Raises ShaleDBError
    (UsageError for options that do not go together)."""
    if connect is None:
        import shaledb

        try:
            return shaledb.open(data_dir or DEFAULT_DATA_DIR, engine=engine)
        except ShaleDBError:
            raise
        except Exception as exc:  # an OSError, or an engine that cannot load
            raise ShaleDBError(f"cannot open {data_dir or DEFAULT_DATA_DIR}: {exc}") from exc
    if data_dir is not None:
        raise UsageError("give either --data-dir or --connect, not both")
    if engine is not None:
        raise UsageError("--engine picks the engine of --data-dir; a server has its own")
    host, port = parse_address(connect)
    try:
        from shaledb.client import KVClient
    except ImportError as exc:
        raise ShaleDBError(f"the network client is not available: {exc}") from exc
    try:
        client: ShellDB = KVClient(host=host, port=port)
    except ShaleDBError:
        raise
    except OSError as exc:
        raise ShaleDBError(f"cannot connect to {host}:{port}: {exc}") from exc
    return client


@click.command("shell", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(),
    default=None,
    help=f"The database directory (default {DEFAULT_DATA_DIR}); created when missing.",
)
@click.option(
    "--connect",
    metavar="HOST:PORT",
    default=None,
    help="Run the shell against a server instead of a directory.",
)
@engine_option
@click.option("--strict", is_flag=True, help="Exit with status 1 if any command failed.")
@click.option(
    "--history-file",
    envvar="SHALEDB_HISTORY",
    metavar="PATH",
    default=DEFAULT_HISTORY,
    show_default=True,
    help="Where the terminal keeps its history (env SHALEDB_HISTORY; '' for none).",
)
def shell(
    data_dir: str | None, connect: str | None, engine: str | None, strict: bool, history_file: str
) -> None:
    """Run commands on namespaces and tables; type help for the commands.

    Reads commands from standard input when it is not a terminal, e.g.
    shaledb shell < script.txt. Exit status: 0; 1 if the database could not be
    opened (or, with --strict, if any command failed); 2 if another process has it
    open; 130 after Ctrl-C in a script.
    """
    _reconfigure(sys.stdin, sys.stdout)
    try:
        db = _open(data_dir, connect, engine)
    except ShaleDBError as exc:
        click.echo(f"[ERROR] {exc}")
        sys.exit(EXIT_USAGE if isinstance(exc, UsageError) else exit_code_for(exc))
    session = Shell(db, click.echo)
    status = EXIT_OK
    try:
        if sys.stdin.isatty() and sys.stdout.isatty():
            run_terminal(session, history_file)
        else:
            # Typing with the replies piped elsewhere: the prompt goes to the terminal.
            run_lines(session, sys.stdin, sys.stderr if sys.stdin.isatty() else None)
    except KeyboardInterrupt:
        status = INTERRUPTED
    finally:
        try:
            db.close()
        except ShaleDBError as exc:
            click.echo(f"[ERROR] {exc}")
            status = status or EXIT_FAILED
    if strict and session.errors and not status:
        status = EXIT_FAILED
    sys.exit(status)


def _reconfigure(stdin: IO[str], stdout: IO[str]) -> None:
    # Undecodable input becomes lone surrogates, which the database then rejects with a
    # clear error; unprintable output is escaped rather than crashing the shell.
    if isinstance(stdin, io.TextIOWrapper):
        stdin.reconfigure(errors="surrogateescape")
    if isinstance(stdout, io.TextIOWrapper):
        stdout.reconfigure(errors="backslashreplace")
