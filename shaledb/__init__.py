"""ShaleDB: a persistent LSM-tree key-value database, embedded, in a shell, or over the network.

>>> import shaledb, tempfile
>>> with shaledb.open(tempfile.mkdtemp()) as db:
...     db.put("user:1000", "John Doe")
...     db.get("user:1000")
'John Doe'
"""

from __future__ import annotations

from shaledb.db import DB, Namespace, Table, WriteBatch, open
from shaledb.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ClosedError,
    ConnectionFailedError,
    CorruptionError,
    InvalidArgumentError,
    InvalidTypeError,
    LockedError,
    NotFoundError,
    ProtocolError,
    ServerError,
    ShaleDBError,
    StorageError,
)
from shaledb.options import Options

__version__ = "0.1.0"

#: The seed's names for the same database: ``StorageEngine(data_dir='./data', memtable_size=1000)``.
StorageEngine = DB
KeyValueStore = DB


def __getattr__(name: str) -> object:
    # The client pulls in sockets and JSON; import it only when asked for.
    if name == "KVClient":
        from shaledb.client import KVClient

        return KVClient
    raise AttributeError(f"module 'shaledb' has no attribute {name!r}")


__all__ = [
    "DB",
    "AlreadyExistsError",
    "AuthenticationError",
    "ClosedError",
    "ConnectionFailedError",
    "CorruptionError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "KVClient",
    "KeyValueStore",
    "LockedError",
    "Namespace",
    "NotFoundError",
    "Options",
    "ProtocolError",
    "ServerError",
    "ShaleDBError",
    "StorageEngine",
    "StorageError",
    "Table",
    "WriteBatch",
    "__version__",
    "open",
]
