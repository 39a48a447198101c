"""Namespaces and tables over one engine: the catalog and the table key prefixes.

Every table is a contiguous range of the engine's key space: its keys are stored
behind a short prefix that encodes the table's numeric id (docs/format.md, "Table
prefixes"). Ids are never reused, so a dropped table's entries are invisible at once
and are removed by later compactions. The catalog (names to ids) is saved through the
engine, which keeps it crash-safe in its manifest.

Names: 1 to 64 characters from ``A-Z a-z 0-9 _ - .``; ``:`` is never allowed, since
the shell uses it to separate table, key and value.
"""

from __future__ import annotations

import re
import struct
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Only a type here: the client imports this module's names without loading the engine.
    from shaledb.engine.base import Engine
from shaledb.errors import (
    AlreadyExistsError,
    ClosedError,
    InvalidArgumentError,
    InvalidTypeError,
    NotFoundError,
)

#: The namespace and table that ``shaledb.DB`` itself is; neither can be dropped.
DEFAULT_NAMESPACE = "default"
DEFAULT_TABLE = "default"
#: The default table's id (its key prefix is ``b"\x00"``).
DEFAULT_TABLE_ID = 0
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
#: Ids below this take one prefix byte; larger ids take 0xF0 and four bytes.
_SHORT_IDS = 0xF0
_CATALOG_VERSION = 1


def table_prefix(table_id: int) -> bytes:
    """The engine-key prefix of a table. Prefix-free: no prefix starts another."""
    if table_id < _SHORT_IDS:
        return bytes((table_id,))
    return b"\xf0" + struct.pack(">I", table_id)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes((trimmed[-1] + 1,))


def table_id_of(engine_key: bytes) -> int:
    """The table id an engine key belongs to."""
    first = engine_key[0]
    if first < _SHORT_IDS:
        return first
    (table_id,) = struct.unpack_from(">I", engine_key, 1)
    return int(table_id)


def check_name(name: object, what: str) -> str:
    """``name`` if it is a valid namespace or table name; raises otherwise."""
    if not isinstance(name, str):
        raise InvalidTypeError(f"{what} name must be a str; got {type(name).__name__}")
    if not _NAME.fullmatch(name):
        raise InvalidArgumentError(
            f"invalid {what} name {name!r}: use 1 to 64 characters from A-Z a-z 0-9 _ - ."
        )
    return name


@dataclass(frozen=True)
class DroppedTables:
    """The engine's drop filter: whether a key belongs to a dropped table. A plain
    value, so that it can be sent to the process that runs compactions."""

    ids: frozenset[int]

    def __call__(self, engine_key: bytes) -> bool:
        return table_id_of(engine_key) in self.ids


class Catalog:
    """The namespaces, their tables and the tables' ids. Thread-safe.

    Every change is saved through the engine before the method returns.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        saved = engine.load_catalog()
        if saved is None:
            saved = {
                "version": _CATALOG_VERSION,
                "next_id": 1,
                "namespaces": {DEFAULT_NAMESPACE: {DEFAULT_TABLE: DEFAULT_TABLE_ID}},
                "dropped": [],
            }
            engine.save_catalog(saved)
        self._data: dict[str, Any] = saved
        self._dropped_ids = frozenset(saved["dropped"])
        engine.set_drop_filter(DroppedTables(self._dropped_ids))

    def is_dropped(self, table_id: int) -> bool:
        """Whether the table with ``table_id`` was dropped (ids are never reused)."""
        return table_id in self._dropped_ids

    def _check_open(self) -> None:
        if self._engine.closed:
            raise ClosedError("the database is closed")

    def namespaces(self) -> list[str]:
        self._check_open()
        with self._lock:
            return sorted(self._data["namespaces"])

    def tables(self, namespace: str) -> list[str]:
        self._check_open()
        with self._lock:
            return sorted(self._namespace(namespace))

    def has_namespace(self, namespace: str) -> bool:
        self._check_open()
        with self._lock:
            return namespace in self._data["namespaces"]

    def table_id(self, namespace: str, table: str) -> int:
        with self._lock:
            tables = self._namespace(namespace)
            if table not in tables:
                raise NotFoundError(f"table {namespace}:{table} does not exist")
            return int(tables[table])

    def _namespace(self, namespace: str) -> dict[str, int]:
        tables: dict[str, int] | None = self._data["namespaces"].get(namespace)
        if tables is None:
            raise NotFoundError(f"namespace {namespace} does not exist")
        return tables

    def _save(self, data: dict[str, Any]) -> None:
        self._engine.save_catalog(data)
        self._data = data
        self._dropped_ids = frozenset(data["dropped"])
        self._engine.set_drop_filter(DroppedTables(self._dropped_ids))

    def _copy(self) -> dict[str, Any]:
        data = dict(self._data)
        data["namespaces"] = {ns: dict(t) for ns, t in self._data["namespaces"].items()}
        data["dropped"] = list(self._data["dropped"])
        return data

    def create_namespace(self, namespace: str) -> None:
        check_name(namespace, "namespace")
        with self._lock:
            if namespace in self._data["namespaces"]:
                raise AlreadyExistsError(f"namespace {namespace} already exists")
            data = self._copy()
            data["namespaces"][namespace] = {}
            self._save(data)

    def create_table(self, namespace: str, table: str) -> int:
        check_name(table, "table")
        with self._lock:
            if table in self._namespace(namespace):
                raise AlreadyExistsError(f"table {namespace}:{table} already exists")
            data = self._copy()
            table_id = int(data["next_id"])
            data["next_id"] = table_id + 1
            data["namespaces"][namespace][table] = table_id
            self._save(data)
            return table_id

    def drop_table(self, namespace: str, table: str) -> None:
        check_name(table, "table")
        with self._lock:
            if table not in self._namespace(namespace):
                raise NotFoundError(f"table {namespace}:{table} does not exist")
            if (namespace, table) == (DEFAULT_NAMESPACE, DEFAULT_TABLE):
                raise InvalidArgumentError("the default table cannot be dropped")
            data = self._copy()
            data["dropped"].append(data["namespaces"][namespace].pop(table))
            self._save(data)

    def drop_namespace(self, namespace: str) -> None:
        check_name(namespace, "namespace")
        with self._lock:
            self._namespace(namespace)
            if namespace == DEFAULT_NAMESPACE:
                raise InvalidArgumentError("the default namespace cannot be dropped")
            data = self._copy()
            data["dropped"].extend(data["namespaces"].pop(namespace).values())
            self._save(data)
