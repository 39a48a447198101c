"""The Python client of a ShaleDB server: :class:`KVClient` (JSON lines, docs/protocol.md).

>>> from shaledb import KVClient                                  # doctest: +SKIP
>>> with KVClient(host="localhost", port=9999) as client:         # doctest: +SKIP
...     client.put("user:1000", "John Doe")
...     client.get("user:1000")
'John Doe'

A client is also a small remote stand-in for :class:`shaledb.DB`: it is the default
table, and :meth:`KVClient.namespace` / :meth:`KVClient.table` give
:class:`RemoteNamespace` and :class:`RemoteTable` objects with the same method names
as their embedded counterparts, so that code written for a DB (the shell) runs against
a server.

Types: str keys and values travel as JSON strings; bytes travel as base64, so any
bytes round-trip. Values come back as str when they are valid UTF-8 and as bytes
otherwise (the wire cannot tell a str from bytes that happen to be UTF-8).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, BinaryIO

from shaledb.errors import (
    AuthenticationError,
    ClosedError,
    ConnectionFailedError,
    InvalidArgumentError,
    InvalidTypeError,
    NotFoundError,
    ServerError,
    ShaleDBError,
    error_class,
)
from shaledb.json_lines import decode_reply, encode_request, reply_pairs, reply_value
from shaledb.keyspace import DEFAULT_NAMESPACE

__all__ = ["KVClient", "RemoteNamespace", "RemoteTable"]
#: Pairs asked of the server per ``scan`` request while iterating.
SCAN_PAGE = 1000


class _TableMethods:
    """The data methods of a table, over :meth:`_call` (which names the table)."""

    def _call(
        self, command: str, fields: dict[str, Any], idempotent: bool = True
    ) -> dict[str, Any]:
        raise NotImplementedError

    def put(self, key: str | bytes, value: str | bytes, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``; ``ttl``: seconds until it expires."""
        fields: dict[str, Any] = {"key": key, "value": value}
        if ttl is not None:
            fields["ttl"] = ttl
        self._call("put", fields)

    set = put

    def get(self, key: str | bytes, default: Any = None) -> Any:
        """The value of ``key``: str (bytes when not UTF-8); ``default`` when missing."""
        value = reply_value(self._call("get", {"key": key}))
        return default if value is None else value

    def delete(self, key: str | bytes) -> bool:
        """Delete ``key``. True if it existed.

        After a reconnect the retried delete may report False for a key the lost
        attempt deleted.
        """
        return self._call("delete", {"key": key}).get("message") == "Key deleted"

    def exists(self, key: str | bytes) -> bool:
        """Whether ``key`` holds a live value."""
        return bool(self._call("exists", {"key": key})["exists"])

    def ttl(self, key: str | bytes) -> float | None:
        """Seconds ``key`` has left; None when it does not expire. NotFoundError if missing."""
        ttl = self._call("ttl", {"key": key})["ttl"]
        return None if ttl is None else float(ttl)

    def expire(self, key: str | bytes, ttl: float | None) -> bool:
        """Set (None: remove) the time to live of ``key``; False when the key is missing."""
        return bool(self._call("expire", {"key": key, "ttl": ttl})["updated"])

    def batch_put(
        self, keys: Sequence[str | bytes], values: Sequence[str | bytes], ttl: float | None = None
    ) -> None:
        """Store ``values[i]`` under ``keys[i]`` atomically (all or nothing).

        Raises InvalidArgumentError when the lengths differ (nothing is written).
        """
        for what, items in (("keys", keys), ("values", values)):
            if isinstance(items, (str, bytes, bytearray, memoryview)) or not isinstance(
                items, Iterable
            ):
                raise InvalidTypeError(
                    f"{what} must be a list of str or bytes; got {type(items).__name__}"
                )
        fields: dict[str, Any] = {"keys": list(keys), "values": list(values)}
        if ttl is not None:
            fields["ttl"] = ttl
        self._call("batch_put", fields)

    def get_range(
        self, start: str | bytes, end: str | bytes
    ) -> list[tuple[str | bytes, str | bytes]]:
        """Every ``(key, value)`` with ``start <= key <= end``, sorted by key."""
        return reply_pairs(self._call("get_range", {"start_key": start, "end_key": end}))

    def scan(
        self,
        start: str | bytes | None = None,
        end: str | bytes | None = None,
        prefix: str | bytes | None = None,
        limit: int | None = None,
    ) -> Iterator[tuple[str | bytes, str | bytes]]:
        """Iterate ``(key, value)`` pairs in key order, fetching pages of 1000.

        Unlike the embedded scan this is not one snapshot: each page sees the data of
        when it was fetched.
        """
        fields: dict[str, Any] = {}
        for name, bound in (("start_key", start), ("end_key", end), ("prefix", prefix)):
            if bound is not None:
                fields[name] = bound
        left = limit
        while left is None or left > 0:
            fields["limit"] = SCAN_PAGE if left is None else min(left, SCAN_PAGE)
            reply = self._call("scan", fields)
            pairs = reply_pairs(reply)
            yield from pairs
            if left is not None:
                left -= len(pairs)
            if reply.get("cursor") is None:
                return
            fields["cursor"] = reply["cursor"]

    def keys(self, **scan_args: Any) -> Iterator[str | bytes]:
        """Keys only; takes the arguments of :meth:`scan`."""
        return (k for k, _ in self.scan(**scan_args))

    def count(self) -> int:
        """The number of live keys."""
        return int(self._call("count", {})["count"])

    def flush(self) -> None:
        """Ask the server to write its memtable to disk and make the log durable."""
        self._call("flush", {})

    def compact(self) -> None:
        """Ask the server to compact this table's data."""
        self._call("compact", {})

    def stats(self) -> dict[str, Any]:
        """The server's engine and server counters."""
        stats: dict[str, Any] = self._call("stats", {})["stats"]
        return stats


class KVClient(_TableMethods):
    """A connection to a ShaleDB server; its data methods work on the default table.

    Args:
        host, port: where the server listens.
        password: sent with ``auth`` on every (re)connect when given.
        timeout: seconds to wait for each reply (None: forever).
        connect_timeout: seconds to wait for the connection (default: ``timeout``).
    Raises:
        ConnectionFailedError: the server cannot be reached (from the constructor:
            it connects at once), or a reply did not come in time.
        AuthenticationError: the password was refused.
    Errors the server reports are raised as their ShaleDB classes (NotFoundError,
    InvalidArgumentError, ...; ServerError for anything else).

    Reconnects: when the connection turns out broken, an idempotent command (every
    data command, every read) reconnects and is sent once more; creating or dropping a
    namespace or table is not retried. Not meant to be shared by threads at once (a
    lock makes such use safe but serial).
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = 9999,
        password: str | None = None,
        timeout: float | None = 10.0,
        connect_timeout: float | None = None,
    ) -> None:
        _check_address(host, port)
        for what, seconds in (("timeout", timeout), ("connect_timeout", connect_timeout)):
            if seconds is None:
                continue
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                raise InvalidTypeError(f"{what} must be a positive number of seconds or None")
            if not seconds > 0:
                raise InvalidArgumentError(f"{what} must be a positive number of seconds or None")
        if password is not None and not isinstance(password, str):
            raise InvalidTypeError(f"password must be a str; got {type(password).__name__}")
        self.host = host
        self.port = port
        self.timeout = timeout
        self.connect_timeout = timeout if connect_timeout is None else connect_timeout
        self._password = password
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._file: BinaryIO | None = None
        self._closed = False
        with self._lock:
            self._connect()

    def __repr__(self) -> str:
        return f"<shaledb.KVClient {self.host}:{self.port}>"

    # -- the connection -------------------------------------------------------------

    def _connect(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise ConnectionFailedError(
                f"cannot connect to ShaleDB at {self.host}:{self.port}: {exc}"
            ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.timeout)
        self._sock = sock
        self._file = sock.makefile("rb")
        if self._password is not None:
            reply = self._exchange(encode_request("auth", {"password": self._password}))
            if reply["status"] != "ok":
                self._drop()
                raise AuthenticationError(str(reply.get("message", "authentication failed")))

    def _drop(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None

    def _exchange(self, line: bytes) -> dict[str, Any]:
        """Send one request line and read its reply (raises OSError on a broken link)."""
        assert self._sock is not None and self._file is not None
        self._sock.sendall(line)
        reply = self._file.readline()
        if not reply.endswith(b"\n"):
            raise ConnectionResetError("the server closed the connection")
        return decode_reply(reply)

    def _request(self, command: str, fields: dict[str, Any], idempotent: bool) -> dict[str, Any]:
        line = encode_request(command, fields)
        with self._lock:
            if self._closed:
                raise ClosedError("the client is closed")
            for attempt in (1, 2):
                try:
                    if self._sock is None:
                        self._connect()
                    reply = self._exchange(line)
                    break
                except TimeoutError:
                    self._drop()  # a late reply would be read as the next one's
                    raise ConnectionFailedError(
                        f"no reply from {self.host}:{self.port} within {self.timeout} s"
                    ) from None
                except OSError as exc:
                    self._drop()
                    if attempt == 2 or not idempotent:
                        raise ConnectionFailedError(
                            f"lost the connection to {self.host}:{self.port}: {exc}"
                        ) from None
        if reply["status"] == "ok":
            return reply
        raise _error(reply)

    def _call(
        self, command: str, fields: dict[str, Any], idempotent: bool = True
    ) -> dict[str, Any]:
        return self._request(command, fields, idempotent)

    def close(self) -> None:
        """Close the connection. Idempotent; later calls raise ClosedError."""
        with self._lock:
            self._closed = True
            self._drop()

    def __enter__(self) -> KVClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- server commands --------------------------------------------------------------

    def ping(self) -> bool:
        """True when the server answers."""
        return self._call("ping", {}).get("message") == "PONG"

    def list_namespaces(self) -> list[str]:
        """Namespace names, sorted."""
        return list(self._call("list_namespaces", {})["namespaces"])

    def create_namespace(self, name: str) -> RemoteNamespace:
        """Create a namespace. Raises AlreadyExistsError if it exists."""
        self._call("create_namespace", {"namespace": name}, idempotent=False)
        return RemoteNamespace(self, name)

    def drop_namespace(self, name: str) -> None:
        """Delete a namespace with its tables. Raises NotFoundError when missing."""
        self._call("drop_namespace", {"namespace": name}, idempotent=False)

    def namespace(self, name: str) -> RemoteNamespace:
        """An existing namespace (the server is asked). Raises NotFoundError when missing."""
        self._call("list_tables", {"namespace": name})
        return RemoteNamespace(self, name)

    def table(self, name: str, namespace: str = DEFAULT_NAMESPACE) -> RemoteTable:
        """An existing table (of the default namespace unless told)."""
        return RemoteNamespace(self, namespace).table(name)


class RemoteNamespace:
    """A namespace on the server; made by :meth:`KVClient.namespace`."""

    def __init__(self, client: KVClient, name: str) -> None:
        self.client = client
        self.name = name

    def __repr__(self) -> str:
        return f"<shaledb.RemoteNamespace {self.name}>"

    def list_tables(self) -> list[str]:
        """Table names, sorted."""
        return list(self.client._call("list_tables", {"namespace": self.name})["tables"])

    def create_table(self, name: str) -> RemoteTable:
        """Create a table. Raises AlreadyExistsError if it exists."""
        self.client._call("create_table", {"namespace": self.name, "table": name}, idempotent=False)
        return RemoteTable(self.client, self.name, name)

    def drop_table(self, name: str) -> None:
        """Delete a table and its data. Raises NotFoundError when missing."""
        self.client._call("drop_table", {"namespace": self.name, "table": name}, idempotent=False)

    def table(self, name: str) -> RemoteTable:
        """An existing table (the server is asked). Raises NotFoundError when missing."""
        if name not in self.list_tables():
            raise NotFoundError(f"table {self.name}:{name} does not exist")
        return RemoteTable(self.client, self.name, name)


class RemoteTable(_TableMethods):
    """A table on the server, with the data methods of :class:`shaledb.Table`."""

    def __init__(self, client: KVClient, namespace: str, name: str) -> None:
        self.client = client
        #: The table's namespace and name, as on :class:`shaledb.Table`.
        self.namespace_name = namespace
        self.name = name

    def __repr__(self) -> str:
        return f"<shaledb.RemoteTable {self.namespace_name}:{self.name}>"

    def _call(
        self, command: str, fields: dict[str, Any], idempotent: bool = True
    ) -> dict[str, Any]:
        fields = {**fields, "namespace": self.namespace_name, "table": self.name}
        return self.client._call(command, fields, idempotent)


def _error(reply: dict[str, Any]) -> ShaleDBError:
    """The exception a server error reply stands for."""
    message = str(reply.get("message", "the server reported an error"))
    cls = error_class(str(reply.get("code", ""))) or ServerError
    return cls(message)


def _check_address(host: object, port: object) -> None:
    if not isinstance(host, str):
        raise InvalidTypeError(f"host must be a str; got {type(host).__name__}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise InvalidTypeError(f"port must be an integer 1 to 65535; got {type(port).__name__}")
    if not 0 < port < 65536:
        raise InvalidArgumentError(f"port must be an integer 1 to 65535; got {port}")
