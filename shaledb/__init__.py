"""ShaleDB: a persistent LSM-tree key-value database, embedded, in a shell, or over the network.

>>> import shaledb, tempfile
>>> with shaledb.open(tempfile.mkdtemp()) as db:
...     db.put("user:1000", "John Doe")
...     db.get("user:1000")
'John Doe'

The names below are the public API. The errors, :class:`Options` and ``__version__``
are imported at once; the embedded database (which loads the storage engine) and the
network client (sockets, JSON) are imported when first used, so that
``import shaledb.client`` does not load the engine and ``import shaledb.db`` does not
load the client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from shaledb.client import KVClient
    from shaledb.db import DB, open
    from shaledb.key_value_store import KeyValueStore
    from shaledb.table import Namespace, Table
    from shaledb.write_batch import WriteBatch

    # The seed's name for the same database:
    # ``StorageEngine(data_dir='./data', memtable_size=1000)``.
    StorageEngine = DB

__version__ = "0.1.0"

#: Names imported on first use: name -> (module, attribute in it).
_LAZY = {
    "DB": ("shaledb.db", "DB"),
    "KVClient": ("shaledb.client", "KVClient"),
    "KeyValueStore": ("shaledb.key_value_store", "KeyValueStore"),
    "Namespace": ("shaledb.table", "Namespace"),
    "StorageEngine": ("shaledb.db", "DB"),
    "Table": ("shaledb.table", "Table"),
    "WriteBatch": ("shaledb.write_batch", "WriteBatch"),
    "open": ("shaledb.db", "open"),
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'shaledb' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
