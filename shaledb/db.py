"""The embedded API's entry point: :func:`open` and :class:`DB`.

A :class:`DB` is one database directory. It *is* the default table of the default
namespace for its data methods (``db.put``, ``db.get``, ``db.scan``...: each is the
default :class:`~shaledb.table.Table`'s method), and it is the way to the other
namespaces and tables, to write batches and to the database-wide maintenance calls
(``flush``, ``compact``, ``stats``, ``close``). All of it is thread-safe; a write that
returned is in the write-ahead log (see :class:`shaledb.options.Options` for when it is
fsynced).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from shaledb.arguments import Data
from shaledb.engine.base import Engine
from shaledb.engine.detect import HASHLOG, LSM, choose_engine
from shaledb.errors import InvalidArgumentError, InvalidTypeError, NotFoundError
from shaledb.keyspace import (
    DEFAULT_NAMESPACE,
    DEFAULT_TABLE,
    DEFAULT_TABLE_ID,
    Catalog,
    check_name,
)
from shaledb.options import Options
from shaledb.table import Namespace, Table
from shaledb.write_batch import WriteBatch

__all__ = ["DB", "open"]

#: Keyword arguments of DB besides the Options fields.
_DB_KEYWORDS = ("data_dir", "engine", "memtable_size")


class DB:
    """A database directory: the default table, plus namespaces and tables.

    ``DB(path)`` opens (creating when needed) and locks the directory; a second
    process gets a LockedError naming the holder. Use as a context manager or call
    :meth:`close`.

    Args:
        path: the data directory (str or path-like). ``data_dir`` is accepted as
            another name for it; with neither, ``./data``.
        engine: ``"lsm"`` (the log-structured merge tree) or ``"hashlog"`` (the
            hash-indexed log). None, the default, opens an existing directory with
            the engine that wrote it (:mod:`shaledb.engine.detect`) and creates a new
            or empty one with the LSM engine.
        memtable_size: flush the memtable after this many entries (otherwise it is
            bounded by bytes, ``Options.memtable_bytes``).
        **options: any field of :class:`shaledb.options.Options` (``fsync``, ...).
    Raises:
        InvalidTypeError: the path is not a str or path-like, or an option has the
            wrong type (the message names the option and what it accepts).
        InvalidArgumentError: an unknown option or engine (the message lists the
            accepted ones), an option's value is out of range, the directory holds a
            database of another engine than ``engine`` names, or files of neither
            engine (nothing is changed in either case).
        LockedError: another process holds the directory.
        CorruptionError: the database's files are damaged.
    """

    #: The engine of a new or empty directory when ``engine`` is not given.
    default_engine = LSM

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        engine: str | None = None,
        memtable_size: int | None = None,
        **options: Any,
    ) -> None:
        if path is None:
            path = data_dir if data_dir is not None else "./data"
        elif data_dir is not None:
            raise InvalidArgumentError("give the data directory once: path or data_dir")
        directory = path_of(path)
        opts = options_of(memtable_size, options)
        # Detection reads names only; the engine's own lock then decides between
        # processes racing to create the same directory.
        kind = choose_engine(directory, engine, self.default_engine)
        if kind == HASHLOG:
            from shaledb.engine.hashlog import HashLogEngine

            self._setup(HashLogEngine(directory, opts))
        else:
            from shaledb.engine.lsm import LSMEngine

            self._setup(LSMEngine(directory, opts))
        self.path = directory

    @classmethod
    def over(cls, engine: Engine) -> DB:
        """A database over an engine built elsewhere (for example a MemoryEngine)."""
        db = cls.__new__(cls)
        db._setup(engine)
        db.path = ""
        return db

    def _setup(self, engine: Engine) -> None:
        try:
            self._catalog = Catalog(engine)
        except BaseException:
            engine.close()
            raise
        self._engine = engine
        self._default = Table(
            engine, self._catalog, DEFAULT_NAMESPACE, DEFAULT_TABLE, DEFAULT_TABLE_ID
        )
        #: The default table's namespace and name, as on :class:`Table`.
        self.namespace_name = DEFAULT_NAMESPACE
        self.name = DEFAULT_TABLE
        # The hottest calls go straight to the table: an instance attribute wins over the
        # class's method (which keeps the signature and docs), saving a Python frame per
        # call (~40 ns, measurable on the memory engine). Same behaviour either way.
        vars(self).update(put=self._default.put, set=self._default.put, get=self._default.get)

    def __repr__(self) -> str:
        return f"<shaledb.DB {self.path!r}>"

    @property
    def default_table(self) -> Table:
        """The default table of the default namespace, whose methods ``db.put`` etc. are."""
        return self._default

    # -- the default table's data methods ---------------------------------------------
    # Each is the default Table's method of the same name (see there for the details).

    def put(self, key: Data, value: Data, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` in the default table; see :meth:`Table.put`."""
        self._default.put(key, value, ttl)

    set = put

    def update(self, key: Data, value: Data, ttl: float | None = None) -> None:
        """Replace the value of an existing key; see :meth:`Table.update`."""
        self._default.update(key, value, ttl)

    def delete(self, key: Data) -> bool:
        """Delete ``key``; True if it existed. See :meth:`Table.delete`."""
        return self._default.delete(key)

    def expire(self, key: Data, ttl: float | None) -> bool:
        """Set or remove the time to live of a key; see :meth:`Table.expire`."""
        return self._default.expire(key, ttl)

    def batch_put(
        self, keys: Sequence[Data], values: Sequence[Data], ttl: float | None = None
    ) -> None:
        """Store many pairs atomically; see :meth:`Table.batch_put`."""
        self._default.batch_put(keys, values, ttl)

    def get(self, key: Data, default: Any = None) -> Any:
        """The value of ``key``, or ``default``; see :meth:`Table.get`."""
        return self._default.get(key, default)

    def __getitem__(self, key: Data) -> Data:
        return self._default[key]

    def __setitem__(self, key: Data, value: Data) -> None:
        self._default.put(key, value)

    def __delitem__(self, key: Data) -> None:
        del self._default[key]

    def exists(self, key: Data) -> bool:
        """Whether ``key`` holds a live value."""
        return self._default.exists(key)

    __contains__ = exists

    def ttl(self, key: Data) -> float | None:
        """Seconds ``key`` has left to live; see :meth:`Table.ttl`."""
        return self._default.ttl(key)

    def get_range(self, start: Data, end: Data) -> list[tuple[Data, Data]]:
        """Every ``(key, value)`` with ``start <= key <= end``; see :meth:`Table.get_range`."""
        return self._default.get_range(start, end)

    def scan(
        self,
        start: Data | None = None,
        end: Data | None = None,
        prefix: Data | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[Data, Data]]:
        """Iterate pairs over a snapshot; see :meth:`Table.scan`."""
        return self._default.scan(start, end, prefix, reverse, limit)

    def keys(self, **scan_args: Any) -> Iterator[Data]:
        """Keys only; takes the arguments of :meth:`scan`."""
        return self._default.keys(**scan_args)

    def __iter__(self) -> Iterator[Data]:
        return iter(self._default)

    def count(self) -> int:
        """The number of live keys of the default table (counts by scanning)."""
        return self._default.count()

    # -- namespaces and tables ----------------------------------------------------

    def namespace(self, name: str) -> Namespace:
        """An existing namespace. Raises NotFoundError when it does not exist."""
        check_name(name, "namespace")
        if not self._catalog.has_namespace(name):
            raise NotFoundError(f"namespace {name} does not exist")
        return Namespace(self._engine, self._catalog, name)

    def create_namespace(self, name: str, exist_ok: bool = False) -> Namespace:
        """Create a namespace (durably). Raises AlreadyExistsError if it exists."""
        check_name(name, "namespace")
        if not (exist_ok and self._catalog.has_namespace(name)):
            self._catalog.create_namespace(name)
        return Namespace(self._engine, self._catalog, name)

    def drop_namespace(self, name: str) -> None:
        """Delete a namespace with all its tables and their data."""
        self._catalog.drop_namespace(name)

    def list_namespaces(self) -> list[str]:
        """Namespace names, sorted."""
        return self._catalog.namespaces()

    def table(self, name: str, namespace: str = DEFAULT_NAMESPACE) -> Table:
        """An existing table (of the default namespace unless told).

        Raises NotFoundError when the namespace or the table does not exist.
        """
        check_name(namespace, "namespace")
        return Namespace(self._engine, self._catalog, namespace).table(name)

    # -- batches and lifecycle ---------------------------------------------------------

    def write_batch(self) -> WriteBatch:
        """A new, empty write batch for this database."""
        return WriteBatch(self, self._engine, self._default)

    def write(self, batch: WriteBatch) -> None:
        """Apply a write batch atomically: after any crash all of it or none is there."""
        if not isinstance(batch, WriteBatch):
            raise InvalidTypeError(f"write takes a WriteBatch; got {type(batch).__name__}")
        if batch.db is not self:
            raise InvalidArgumentError("this WriteBatch belongs to another database")
        ops = batch.ops()
        if ops:
            self._engine.write(ops)

    def deferred_sync(self) -> AbstractContextManager[None]:
        """Writes of this thread inside the block share one fsync, taken when it ends.

        Matters only with ``fsync="always"``: there each write normally waits for its own
        fsync (shared with other threads' writes). Inside the block a write returns first
        and the block's end makes all of them durable at once, raising StorageError if
        that fails. Acknowledge such writes to others only after the block.
        """
        return self._engine.deferred_sync()

    def flush(self) -> None:
        """Write the memtable to an SSTable and make the log durable."""
        self._engine.flush()

    def compact(self) -> None:
        """Flush, then compact all stored data of every table."""
        self._engine.flush()
        self._engine.compact()

    def stats(self) -> dict[str, Any]:
        """Engine counters and sizes (memtable, levels, WAL, caches)."""
        return dict(self._engine.stats())

    def close(self) -> None:
        """Make the log durable, stop background work and release the directory lock.

        Idempotent. Later calls on the database raise ClosedError.
        """
        self._engine.close()

    def __enter__(self) -> DB:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def path_of(path: object) -> str:
    """A database path (a directory, or a file of the two-file form) as a str; raises
    InvalidTypeError for anything but a str or path-like."""
    try:
        directory = os.fspath(path)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidTypeError(
            f"the data directory must be a str or path-like; got {type(path).__name__}"
        ) from None
    return os.fsdecode(directory)


def options_of(memtable_size: int | None, options: dict[str, Any]) -> Options:
    """The Options of ``DB(...)``'s keyword arguments; raises naming a bad one."""
    fields = {f.name for f in dataclasses.fields(Options)}
    unknown = sorted(set(options) - fields)
    if unknown:
        accepted = ", ".join(sorted(fields | set(_DB_KEYWORDS)))
        raise InvalidArgumentError(f"unknown option {unknown[0]!r}; accepted options: {accepted}")
    if memtable_size is not None:
        if options.get("memtable_entries") is not None:
            raise InvalidArgumentError("give memtable_size or memtable_entries, not both")
        options["memtable_entries"] = memtable_size
    return Options(**options)


def open(  # noqa: A001 - the promised name, as with builtins' open
    path: str | os.PathLike[str] = "./data", **options: Any
) -> DB:
    """Open (creating when needed) the database in directory ``path``.

    Takes the keyword arguments of :class:`DB` (``engine="hashlog"`` for the
    hash-indexed log; without it an existing directory is opened with the engine that
    wrote it, a new one with the LSM engine) and raises as it does: LockedError when
    another process holds the directory, CorruptionError when its files are damaged,
    InvalidTypeError/InvalidArgumentError for a bad path, option or engine.
    """
    if path is None:
        raise InvalidTypeError("the data directory must be a str or path-like; got NoneType")
    return DB(path, **options)
