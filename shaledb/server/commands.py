"""The command layer: what each server command does, independent of the wire protocol.

A protocol module parses a request into a command name and a dict of arguments
(keys and values already ``str`` or ``bytes``), then calls :meth:`Session.execute`,
which checks the arguments against the command's field list, runs the command on the
database and returns a *reply*: a dict of plain values that the protocol encodes.
Reply conventions (docs/protocol.md, "Commands"): ``"value"`` holds one stored value
(``str``, ``bytes`` or None) and ``"data"`` a list of ``(key, value)`` pairs; every
other field is already a JSON-able value. A failure raises a
:class:`~shaledb.errors.ShaleDBError`; :func:`shaledb.errors.error_code` names it on
the wire, from the one table :data:`shaledb.errors.ERROR_CODES`.

Thread safety: a :class:`Session` belongs to one connection and runs one command at a
time (on a worker thread); :class:`Commands` is shared by all sessions.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shaledb.db import DB
from shaledb.errors import (
    AuthenticationError,
    InvalidArgumentError,
    InvalidTypeError,
    ProtocolError,
)
from shaledb.keyspace import DEFAULT_NAMESPACE, DEFAULT_TABLE
from shaledb.table import Table

#: ``scan`` returns at most this many pairs per call unless ``limit`` says otherwise...
SCAN_DEFAULT_LIMIT = 1000
#: ...and never more than this many.
SCAN_MAX_LIMIT = 10_000

#: Commands a session may run before it authenticates on a server with a password.
OPEN_COMMANDS = frozenset({"auth", "ping"})


# -- argument checking -----------------------------------------------------------


def _kind_of(value: object) -> str:
    """A value's type in the words of docs/protocol.md (JSON's names)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (str, bytes)):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_data(value: object) -> bool:
    return isinstance(value, (str, bytes))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: Field kinds: (test, what the message says the field must be).
_KINDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "data": (_is_data, "a string"),
    "data_list": (
        lambda v: isinstance(v, list) and all(_is_data(x) for x in v),
        "a list of strings",
    ),
    "name": (lambda v: isinstance(v, str), "a string"),
    "number": (_is_number, "a number"),
    "number_or_null": (lambda v: v is None or _is_number(v), "a number or null"),
    "count": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "a non-negative integer",
    ),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
}

#: Optional fields of every command that works on a table.
_TABLE_FIELDS = {"namespace": ("name", False), "table": ("name", False)}


@dataclass(frozen=True)
class Command:
    """One command: its handler and its fields, ``name -> (kind, required)``."""

    handler: Callable[[Session, dict[str, Any]], dict[str, Any]]
    fields: dict[str, tuple[str, bool]]

    def check(self, name: str, args: dict[str, Any]) -> None:
        """Raise ProtocolError/InvalidTypeError unless ``args`` fit the field list."""
        for field in args:
            if field not in self.fields:
                known = ", ".join(sorted(self.fields)) or "no fields"
                raise ProtocolError(
                    f"unknown field '{field}' for command '{name}' (it takes {known})"
                )
        for field, (kind, required) in self.fields.items():
            if field not in args:
                if required:
                    raise ProtocolError(f"command '{name}' needs field '{field}'")
                continue
            test, what = _KINDS[kind]
            if not test(args[field]):
                raise InvalidTypeError(
                    f"field '{field}' must be {what}; got {_kind_of(args[field])}"
                )


# -- the commands ----------------------------------------------------------------------


class Commands:
    """The server's commands over one open database. Thread-safe.

    Args:
        db: the database the commands run on; the caller closes it.
        password: when set, sessions must ``auth`` with it before anything but
            ``auth`` and ``ping``.
        server_stats: returns the server's own counters for ``stats``.
        record: called as ``record(command, ok)`` after every request (from the
            thread that ran it); ``command`` is ``"unknown"`` for an unknown name
            and ``"invalid"`` for a request that could not be parsed.
    """

    def __init__(
        self,
        db: DB,
        password: str | None = None,
        server_stats: Callable[[], dict[str, Any]] | None = None,
        record: Callable[[str, bool], None] | None = None,
        on_write: Callable[[Table, Sequence[object], float | None], None] | None = None,
    ) -> None:
        self.db = db
        self.password = password
        self.server_stats = server_stats or dict
        self.record = record or _ignore
        self.on_write = on_write or _ignore_write

    def session(self) -> Session:
        """The state of a new connection (unauthenticated when a password is set)."""
        return Session(self)


def _ignore(command: str, ok: bool) -> None:
    pass


def _ignore_write(table: Table, keys: Sequence[object], ttl: float | None) -> None:
    pass


class Session:
    """One connection's view of the commands: whether it has authenticated."""

    def __init__(self, commands: Commands) -> None:
        self.commands = commands
        self.db = commands.db
        self.authenticated = commands.password is None

    def execute(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """Run command ``name`` with ``args``; returns its reply fields.

        Raises:
            ProtocolError: unknown command, unknown or missing field.
            InvalidTypeError: a field of the wrong type.
            AuthenticationError: a password is set and the session has not authenticated.
            ShaleDBError: whatever the database raises (NotFoundError, ...).
        """
        command = COMMANDS.get(name)
        if command is None:
            self.commands.record("unknown", False)
            raise ProtocolError(f"unknown command '{name}'")
        try:
            if not self.authenticated and name not in OPEN_COMMANDS:
                raise AuthenticationError(
                    "authentication required: send the 'auth' command with the password first"
                )
            command.check(name, args)
            reply = command.handler(self, args)
        except BaseException:
            self.commands.record(name, False)
            raise
        self.commands.record(name, True)
        return reply

    def table(self, args: dict[str, Any]) -> Table:
        """The table a data command names (the default table when it names none)."""
        namespace = args.get("namespace")
        table = args.get("table")
        if namespace is None and table is None:
            return self.db.default_table
        return self.db.table(table or DEFAULT_TABLE, namespace=namespace or DEFAULT_NAMESPACE)


def _ping(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    return {"message": args.get("message", "PONG")}


def _auth(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    expected = session.commands.password
    if expected is None:
        raise InvalidArgumentError("this server has no password; 'auth' is not needed")
    given = args["password"].encode("utf-8", "surrogatepass")
    if not hmac.compare_digest(given, expected.encode("utf-8", "surrogatepass")):
        session.authenticated = False
        raise AuthenticationError("invalid password")
    session.authenticated = True
    return {"message": "Authenticated"}


def _put(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    table, ttl = session.table(args), args.get("ttl")
    table.put(args["key"], args["value"], ttl=ttl)
    session.commands.on_write(table, (args["key"],), ttl)
    return {"message": "Key-value pair stored"}


def _get(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    return {"value": session.table(args).get(args["key"])}


def _delete(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    table = session.table(args)
    existed = table.delete(args["key"])
    if existed:
        session.commands.on_write(table, (args["key"],), None)
    return {"message": "Key deleted" if existed else "Key not found"}


def _exists(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    return {"exists": session.table(args).exists(args["key"])}


def _ttl(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    return {"ttl": session.table(args).ttl(args["key"])}


def _expire(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    table = session.table(args)
    updated = table.expire(args["key"], args["ttl"])
    if updated:
        session.commands.on_write(table, (args["key"],), args["ttl"])
    return {"updated": updated}


def _batch_put(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    keys, values, ttl = args["keys"], args["values"], args.get("ttl")
    table = session.table(args)
    table.batch_put(keys, values, ttl=ttl)
    session.commands.on_write(table, keys, ttl)
    return {"message": f"{len(keys)} key-value pairs stored"}


def _get_range(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    table = session.table(args)
    pairs = table.scan(start=args["start_key"], end=args["end_key"], limit=args.get("limit"))
    return {"data": list(pairs)}


def _scan(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    table = session.table(args)
    limit = args.get("limit", SCAN_DEFAULT_LIMIT)
    if not 1 <= limit <= SCAN_MAX_LIMIT:
        raise InvalidArgumentError(
            f"scan limit must be 1 to {SCAN_MAX_LIMIT}; got {limit} (use the cursor for more)"
        )
    start: str | bytes | None = args.get("start_key")
    if "cursor" in args:
        start = _cursor_key(args["cursor"])
    # One pair more than asked tells whether a next page exists.
    pairs = list(
        table.scan(start=start, end=args.get("end_key"), prefix=args.get("prefix"), limit=limit + 1)
    )
    cursor = None
    if len(pairs) > limit:
        pairs = pairs[:limit]
        last = pairs[-1][0]
        last_bytes = last.encode("utf-8") if isinstance(last, str) else last
        # The smallest key after `last`; the cursor is opaque to clients.
        cursor = base64.urlsafe_b64encode(last_bytes + b"\x00").decode("ascii")
    return {"data": pairs, "cursor": cursor}


def _cursor_key(cursor: str | bytes) -> bytes:
    try:
        raw = cursor.encode("ascii") if isinstance(cursor, str) else cursor
        return base64.b64decode(raw, altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidArgumentError(
            "invalid scan cursor (pass back the one a scan returned)"
        ) from None


def _count(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    return {"count": session.table(args).count()}


def _flush(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    session.table(args).flush()
    return {"message": "Flushed to disk"}


def _compact(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    session.table(args).compact()
    return {"message": "Compacted"}


def _stats(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    if "namespace" in args or "table" in args:
        stats = session.table(args).stats()
    else:
        stats = session.db.stats()
    stats["server"] = session.commands.server_stats()
    return {"stats": stats}


def _create_namespace(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    session.db.create_namespace(args["namespace"])
    return {"message": f"Created namespace: {args['namespace']}"}


def _drop_namespace(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    session.db.drop_namespace(args["namespace"])
    return {"message": f"Dropped namespace: {args['namespace']}"}


def _list_namespaces(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    return {"namespaces": session.db.list_namespaces()}


def _create_table(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    namespace = args.get("namespace", DEFAULT_NAMESPACE)
    session.db.namespace(namespace).create_table(args["table"])
    return {"message": f"Created table: {namespace}:{args['table']}"}


def _drop_table(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    namespace = args.get("namespace", DEFAULT_NAMESPACE)
    session.db.namespace(namespace).drop_table(args["table"])
    return {"message": f"Dropped table: {namespace}:{args['table']}"}


def _list_tables(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    namespace = args.get("namespace", DEFAULT_NAMESPACE)
    return {"tables": session.db.namespace(namespace).list_tables()}


def _fields(**fields: tuple[str, bool]) -> dict[str, tuple[str, bool]]:
    return {**_TABLE_FIELDS, **fields}


#: Every command, by the name clients send. docs/protocol.md documents each one.
COMMANDS: dict[str, Command] = {
    "ping": Command(_ping, {"message": ("name", False)}),
    "auth": Command(_auth, {"password": ("name", True)}),
    "put": Command(_put, _fields(key=("data", True), value=("data", True), ttl=("number", False))),
    "get": Command(_get, _fields(key=("data", True))),
    "delete": Command(_delete, _fields(key=("data", True))),
    "exists": Command(_exists, _fields(key=("data", True))),
    "ttl": Command(_ttl, _fields(key=("data", True))),
    "expire": Command(_expire, _fields(key=("data", True), ttl=("number_or_null", True))),
    "batch_put": Command(
        _batch_put,
        _fields(keys=("data_list", True), values=("data_list", True), ttl=("number", False)),
    ),
    "get_range": Command(
        _get_range,
        _fields(start_key=("data", True), end_key=("data", True), limit=("count", False)),
    ),
    "scan": Command(
        _scan,
        _fields(
            prefix=("data", False),
            start_key=("data", False),
            end_key=("data", False),
            limit=("count", False),
            cursor=("data", False),
        ),
    ),
    "count": Command(_count, _fields()),
    "flush": Command(_flush, _fields()),
    "compact": Command(_compact, _fields()),
    "stats": Command(_stats, _fields()),
    "create_namespace": Command(_create_namespace, {"namespace": ("name", True)}),
    "drop_namespace": Command(_drop_namespace, {"namespace": ("name", True)}),
    "list_namespaces": Command(_list_namespaces, {}),
    "create_table": Command(_create_table, _fields(table=("name", True))),
    "drop_table": Command(_drop_table, _fields(table=("name", True))),
    "list_tables": Command(_list_tables, {"namespace": ("name", False)}),
}
