"""The shell's commands: one :class:`Shell` runs one command line at a time.

The shell is independent of where its lines come from (a terminal, a pipe, a test)
and of what it runs against: it needs only the part of the database API listed in
:class:`ShellDB`, which both :class:`shaledb.DB` and the network client provide.
Every command and every output form is specified in docs/shell.md.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from shaledb.cli.progress import directory_bytes
from shaledb.cli.shell_syntax import (
    UsageError,
    parse_scan,
    parse_set,
    parse_target,
    show,
    show_number,
    show_remaining,
)
from shaledb.errors import NotFoundError, ShaleDBError
from shaledb.keyspace import DEFAULT_NAMESPACE

PROMPT = "kvstore> "


class ShellTable(Protocol):
    """The table methods the shell calls."""

    def put(self, key: str, value: str, ttl: float | None = None) -> None: ...
    def get(self, key: str) -> Any: ...
    def delete(self, key: str) -> bool: ...
    def ttl(self, key: str) -> float | None: ...
    def scan(self, *, prefix: str | None = None, limit: int | None = None) -> Iterator[Any]: ...
    def count(self) -> int: ...
    def flush(self) -> None: ...
    def compact(self) -> None: ...


class ShellNamespace(Protocol):
    """The namespace methods the shell calls."""

    def list_tables(self) -> list[str]: ...
    def create_table(self, name: str) -> Any: ...
    def drop_table(self, name: str) -> None: ...
    def table(self, name: str) -> ShellTable: ...


class ShellDB(Protocol):
    """The database methods the shell calls: all a remote client must offer."""

    def list_namespaces(self) -> list[str]: ...
    def create_namespace(self, name: str) -> Any: ...
    def drop_namespace(self, name: str) -> None: ...
    def namespace(self, name: str) -> ShellNamespace: ...
    def stats(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Command:
    """One shell command: its usage, its help and the method that runs it.

    ``completes`` says what its first argument names, for tab completion:
    ``"namespace"``, ``"table"``, ``"table:"`` (a table followed by ``:``),
    ``"command"`` or ``""`` (nothing to complete).
    """

    name: str
    args: str
    summary: str
    details: str
    example: str
    completes: str
    run: Callable[[Shell, str], None]

    @property
    def usage(self) -> str:
        return f"{self.name} {self.args}".rstrip()


class Shell:
    """Runs shell command lines against a database, writing one line per ``write`` call.

    Args:
        db: the database (or a remote client) to run commands against.
        write: receives each output line, without its newline.

    Attributes:
        namespace: the current namespace (``default`` at first).
        errors: how many command lines have failed so far.
        finished: True once ``exit`` ran; later lines are ignored.
        ticker: how a long command (``compact``) shows its progress: called with a
            label and a function returning the bytes written so far, it returns a
            context manager open while the command runs. None (the default) shows
            nothing; the terminal loop sets :class:`shaledb.cli.progress.Ticker`.

    Not thread-safe: one shell serves one user.
    """

    def __init__(self, db: ShellDB, write: Callable[[str], None]) -> None:
        self.db = db
        self.write = write
        self.namespace = DEFAULT_NAMESPACE
        self.errors = 0
        self.finished = False
        self.ticker: Callable[[str, Callable[[], int]], AbstractContextManager[Any]] | None = None

    def execute(self, line: str) -> bool:
        """Run one command line; returns False when it printed an error.

        Blank lines and lines starting with ``#`` do nothing. An error never
        escapes: it is printed as ``[ERROR] <message>``. KeyboardInterrupt does
        escape, so that the caller decides what an interrupt means.
        """
        line = line.strip()
        if self.finished or not line or line.startswith("#"):
            return True
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        command = COMMANDS.get(name)
        try:
            if command is None:
                raise UsageError(f"unknown command: {name} (type help for the commands)")
            command.run(self, arg)
        except ShaleDBError as exc:
            return self._fail(str(exc))
        except Exception as exc:
            # Not expected from a ShaleDB call (every API error is a ShaleDBError), but
            # the shell must go on regardless: one bad line must not skip the rest of a
            # piped script. KeyboardInterrupt and SystemExit are not Exceptions.
            return self._fail(f"{type(exc).__name__}: {exc}")
        return True

    def _fail(self, message: str) -> bool:
        self.errors += 1
        self.write(f"[ERROR] {message}")
        return False

    # -- helpers -----------------------------------------------------------------

    def _names(self, arg: str, command: str, count: int) -> list[str]:
        """The whitespace-separated arguments, which must number exactly ``count``."""
        words = arg.split()
        if len(words) != count:
            raise UsageError(f"usage: {COMMANDS[command].usage}")
        return words

    def _table(self, name: str) -> ShellTable:
        return self.db.namespace(self.namespace).table(name)

    def _where(self, table: str) -> str:
        return f"{self.namespace}:{table}"

    # -- namespaces --------------------------------------------------------------

    def _create_namespace(self, arg: str) -> None:
        (name,) = self._names(arg, "create-namespace", 1)
        self.db.create_namespace(name)
        self.write(f"[OK] Created namespace: {name}")

    def _use_namespace(self, arg: str) -> None:
        (name,) = self._names(arg, "use-namespace", 1)
        self.db.namespace(name)  # raises when it does not exist
        self.namespace = name
        self.write(f"[OK] Using namespace: {name}")

    def _list_namespaces(self, arg: str) -> None:
        self._names(arg, "list-namespaces", 0)
        for name in self.db.list_namespaces():
            self.write(f"{'*' if name == self.namespace else ' '} {name}")

    def _drop_namespace(self, arg: str) -> None:
        (name,) = self._names(arg, "drop-namespace", 1)
        self.db.drop_namespace(name)
        self.write(f"[OK] Dropped namespace: {name}")
        if name == self.namespace:
            self.namespace = DEFAULT_NAMESPACE
            self.write(f"[OK] Using namespace: {DEFAULT_NAMESPACE}")

    # -- tables ------------------------------------------------------------------

    def _create_table(self, arg: str) -> None:
        (name,) = self._names(arg, "create-table", 1)
        self.db.namespace(self.namespace).create_table(name)
        self.write(f"[OK] Created table: {self._where(name)}")

    def _list_tables(self, arg: str) -> None:
        self._names(arg, "list-tables", 0)
        for name in self.db.namespace(self.namespace).list_tables():
            self.write(name)

    def _drop_table(self, arg: str) -> None:
        (name,) = self._names(arg, "drop-table", 1)
        self.db.namespace(self.namespace).drop_table(name)
        self.write(f"[OK] Dropped table: {self._where(name)}")

    def _flush(self, arg: str) -> None:
        (name,) = self._names(arg, "flush", 1)
        self._table(name).flush()
        self.write(f"[OK] Flushed {self._where(name)} to disk.")

    def _compact(self, arg: str) -> None:
        (name,) = self._names(arg, "compact", 1)
        table = self._table(name)
        directory = self.db.stats().get("directory") if self.ticker else None
        if self.ticker is None or not isinstance(directory, str):
            table.compact()
        else:
            # The engine counts a compaction's bytes once its output is whole; the files
            # it is writing show them as they grow.
            since = time.time_ns()
            with self.ticker(
                f"compacting {self._where(name)}", lambda: directory_bytes(directory, since)
            ):
                table.compact()
        self.write(f"[OK] Compacted {self._where(name)} into one file.")

    def _count(self, arg: str) -> None:
        (name,) = self._names(arg, "count", 1)
        self.write(f"[COUNT] {self._where(name)} = {self._table(name).count()}")

    # -- keys --------------------------------------------------------------------

    def _set(self, arg: str) -> None:
        table, key, value, ttl = parse_set(arg, COMMANDS["set"].usage)
        self._table(table).put(key, value, ttl=ttl)
        expiry = "" if ttl is None else f" (ttl {show_number(ttl)}s)"
        self.write(f"[OK] Set {show(key)} in {self._where(table)}{expiry}")

    def _get(self, arg: str) -> None:
        table, key = parse_target(arg, COMMANDS["get"].usage)
        value = self._table(table).get(key)
        where = f"{self._where(table)}:{show(key)}"
        self.write(f"[MISS] {where}" if value is None else f"[HIT] {where} = {show(value)}")

    def _delete(self, arg: str) -> None:
        table, key = parse_target(arg, COMMANDS["delete"].usage)
        if self._table(table).delete(key):
            self.write(f"[OK] Deleted {show(key)} from {self._where(table)}")
        else:
            self.write(f"[MISS] {self._where(table)}:{show(key)}")

    def _ttl(self, arg: str) -> None:
        table, key = parse_target(arg, COMMANDS["ttl"].usage)
        handle = self._table(table)
        where = f"{self._where(table)}:{show(key)}"
        try:
            left = handle.ttl(key)
        except NotFoundError:
            # Only the key can be missing here: _table() already found the table.
            self.write(f"[MISS] {where}")
            return
        self.write(f"[TTL] {where} = {'none' if left is None else show_remaining(left) + 's'}")

    def _scan(self, arg: str) -> None:
        table, prefix, limit = parse_scan(arg, COMMANDS["scan"].usage)
        count = 0
        for key, value in self._table(table).scan(prefix=prefix, limit=limit):
            self.write(f"{show(key)} = {show(value)}")
            count += 1
        noun = "key" if count == 1 else "keys"
        self.write(f"[OK] Scanned {count} {noun} in {self._where(table)}")

    # -- the rest ----------------------------------------------------------------

    def _stats(self, arg: str) -> None:
        self._names(arg, "stats", 0)
        for name, value in _flatten(self.db.stats()):
            self.write(f"{name}: {value}")

    def _help(self, arg: str) -> None:
        words = arg.split()
        if len(words) > 1:
            raise UsageError(f"usage: {COMMANDS['help'].usage}")
        if words:
            command = COMMANDS.get(words[0])
            if command is None:
                raise UsageError(f"unknown command: {words[0]} (type help for the commands)")
            self.write(command.usage)
            self.write(f"  {command.summary}")
            for line in textwrap.wrap(command.details, 76):
                self.write(f"  {line}")
            self.write(f"  Example: {command.example}")
            return
        self.write("Commands (help <command> shows one in detail):")
        width = max(len(c.usage) for c in COMMANDS.values())
        for command in COMMANDS.values():
            self.write(f"  {command.usage.ljust(width)}  {command.summary}")

    def _exit(self, arg: str) -> None:
        self._names(arg, "exit", 0)
        self.finished = True

    def _quit(self, arg: str) -> None:
        self._names(arg, "quit", 0)
        self.finished = True


#: Fields of a record in a list that only repeat its index (``levels[n]["level"] == n``).
_INDEX_FIELDS = ("level",)


def _flatten(stats: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted.name, value)`` for every leaf, sorted by name.

    Nested dicts join their names with ``.``; a list of dicts (the levels) names each
    item by its index, so level 0's file count is ``levels.0.files``.
    """
    for name in sorted(stats, key=str):
        value = stats[name]
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{name}.")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for index, item in enumerate(value):
                fields = {k: v for k, v in item.items() if k not in _INDEX_FIELDS}
                yield from _flatten(fields, f"{prefix}{name}.{index}.")
        else:
            yield f"{prefix}{name}", value


# fmt: off
# The command table reads better as rows than as the formatter would spread it.
# Columns: name, arguments, summary, details, example, what the argument completes, method.
_TABLE = (
    ("create-namespace", "<ns>", "Create a namespace.", "",
     "create-namespace iti", "", Shell._create_namespace),
    ("use-namespace", "<ns>", "Make a namespace the current one.",
     "Table names in the other commands are looked up in the current namespace.",
     "use-namespace iti", "namespace", Shell._use_namespace),
    ("list-namespaces", "", "List the namespaces.",
     "One a line, sorted; '* ' marks the current one, two spaces the others.",
     "list-namespaces", "", Shell._list_namespaces),
    ("drop-namespace", "<ns>", "Delete a namespace with its tables and data.",
     "Dropping the current namespace makes 'default' current.",
     "drop-namespace iti", "namespace", Shell._drop_namespace),
    ("create-table", "<table>", "Create a table in the current namespace.", "",
     "create-table collaborators", "", Shell._create_table),
    ("list-tables", "", "List the tables of the current namespace.", "One a line, sorted.",
     "list-tables", "", Shell._list_tables),
    ("drop-table", "<table>", "Delete a table and all its data.", "",
     "drop-table collaborators", "table", Shell._drop_table),
    ("set", "<table>:<key>:<value> [ttl]", "Store a value under a key.",
     "The key ends at the second ':'; the value is the rest and may hold ':' and spaces. "
     "A last word that is a number is the ttl in seconds. A key or value starting with "
     "\" is a JSON string: use one for a key holding ':' or a value ending in a number.",
     "set collaborators:collaborator1:sief 3600", "table:", Shell._set),
    ("get", "<table>:<key>", "Print a key's value.",
     "Prints [HIT] <ns>:<table>:<key> = <value>, or [MISS] <ns>:<table>:<key>.",
     "get collaborators:collaborator1", "table:", Shell._get),
    ("delete", "<table>:<key>", "Delete a key.",
     "Prints [MISS] <ns>:<table>:<key> when the key did not exist.",
     "delete collaborators:collaborator1", "table:", Shell._delete),
    ("ttl", "<table>:<key>", "Print the time a key has left to live.",
     "In seconds, rounded up to a tenth; 'none' when the key does not expire.",
     "ttl collaborators:collaborator1", "table:", Shell._ttl),
    ("scan", "<table>[:<prefix>] [limit]", "Print a table's keys and values in order.",
     "One '<key> = <value>' a line, only keys starting with <prefix>, at most <limit> "
     "of them; then a line with the count.",
     "scan collaborators:collab 10", "table:", Shell._scan),
    ("count", "<table>", "Print the number of keys in a table.", "",
     "count collaborators", "table", Shell._count),
    ("flush", "<table>", "Write the data held in memory to disk.", "",
     "flush collaborators", "table", Shell._flush),
    ("compact", "<table>", "Rewrite a table's data on disk, dropping dead entries.",
     "Dead entries are overwritten, deleted or expired ones.",
     "compact collaborators", "table", Shell._compact),
    ("stats", "", "Print the database's counters.",
     "One '<name>: <value>' a line, sorted; nested names are joined with '.', and "
     "each level is named by its number (levels.0.files).",
     "stats", "", Shell._stats),
    ("help", "[command]", "List the commands, or explain one.", "",
     "help set", "command", Shell._help),
    ("exit", "", "Leave the shell.", "End of input (Ctrl-D) leaves it too.",
     "exit", "", Shell._exit),
    ("quit", "", "Leave the shell (same as exit).", "",
     "quit", "", Shell._quit),
)
# fmt: on

#: Every command by name, in the order help lists them.
COMMANDS: dict[str, Command] = {row[0]: Command(*row) for row in _TABLE}
