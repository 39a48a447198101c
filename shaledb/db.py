"""The embedded API: ``shaledb.open``, databases, namespaces, tables and write batches.

A :class:`DB` is the default table of the default namespace, plus the way to the
other namespaces and tables. Every :class:`Table` has the same data methods. All
objects here are thread-safe; a write that returned is in the write-ahead log
(see :class:`shaledb.options.Options` for when it is fsynced).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from itertools import islice
from types import TracebackType
from typing import Any

from shaledb.arguments import (
    Data,
    bound_bytes,
    decode_value,
    key_bytes,
    ttl_seconds,
    value_bytes,
)
from shaledb.engine.base import Engine, Op
from shaledb.engine.entry import HAS_TTL, KEY_STR, TOMBSTONE, VALUE_STR
from shaledb.errors import InvalidArgumentError, InvalidTypeError, NotFoundError
from shaledb.keyspace import (
    DEFAULT_NAMESPACE,
    DEFAULT_TABLE,
    Catalog,
    check_name,
    prefix_end,
    table_prefix,
)
from shaledb.options import MAX_KEY_BYTES, MAX_VALUE_BYTES, Options

__all__ = ["DB", "Namespace", "Table", "WriteBatch", "open"]

_STR_STR = KEY_STR | VALUE_STR
#: str lengths that cannot exceed the byte limits once UTF-8 encoded (4 bytes a char at most).
_SAFE_CHARS = MAX_KEY_BYTES
_SAFE_VALUE_CHARS = MAX_VALUE_BYTES // 4


class Table:
    """One table: a sorted key-value space. Keys and values are str or bytes.

    Keys sort by their UTF-8 bytes; a str key and the bytes of its UTF-8 encoding
    are the same key. Reads give back the type the latest write used.
    """

    def __init__(
        self, engine: Engine, namespace: str, name: str, table_id: int, catalog: Catalog
    ) -> None:
        self._engine = engine
        self._catalog = catalog
        self._table_id = table_id
        # The default table cannot be dropped: its hot paths skip the check.
        self._droppable = table_id != 0
        #: The table's namespace and name (``namespace_name`` because ``DB.namespace()``
        #: is the method that opens a namespace).
        self.namespace_name = namespace
        self.name = name
        self._prefix = table_prefix(table_id)
        self._end = prefix_end(self._prefix)
        self._skip = len(self._prefix)

    def __repr__(self) -> str:
        return f"<shaledb.Table {self.namespace_name}:{self.name}>"

    def _check_live(self) -> None:
        """Raise NotFoundError if this table was dropped after the handle was taken."""
        if self._droppable and self._catalog.is_dropped(self._table_id):
            raise NotFoundError(f"table {self.namespace_name}:{self.name} was dropped")

    # -- writes ------------------------------------------------------------------

    def _put_op(self, key: object, value: object, ttl: object | None) -> Op:
        self._check_live()
        kb, kflag = key_bytes(key)
        vb, vflag = value_bytes(value)
        if ttl is None:
            return (kflag | vflag, self._prefix + kb, 0, vb)
        expire_ms = self._expire_ms(ttl_seconds(ttl))
        return (kflag | vflag | HAS_TTL, self._prefix + kb, expire_ms, vb)

    def _expire_ms(self, ttl: float) -> int:
        return self._engine.now_ms() + max(1, int(ttl * 1000))

    def _delete_op(self, key: object) -> Op:
        self._check_live()
        kb, kflag = key_bytes(key)
        return (kflag | TOMBSTONE, self._prefix + kb, 0, b"")

    def put(self, key: Data, value: Data, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, replacing any earlier value.

        Args:
            key: str or bytes, 1 to 65536 bytes (UTF-8 for str).
            value: str or bytes, at most 64 MiB.
            ttl: seconds until the key expires (a positive number), or None to keep it.
        Raises:
            InvalidTypeError: key or value is not str/bytes, or ttl is not a number.
            InvalidArgumentError: empty or oversized key, oversized value, ttl <= 0.
        """
        # Fast path for the common case; anything unusual goes the checked way below.
        if self._droppable:
            self._check_live()
        if (
            ttl is None
            and type(key) is str
            and type(value) is str
            and 0 < len(key) <= _SAFE_CHARS
            and len(value) <= _SAFE_VALUE_CHARS
            and key.isascii()
        ):
            try:
                raw = value.encode()
            except UnicodeEncodeError:
                pass  # the checked path below reports it
            else:
                self._engine.put(_STR_STR, self._prefix + key.encode(), raw)
                return
        elif (
            ttl is None
            and type(key) is bytes
            and type(value) is bytes
            and 0 < len(key) <= MAX_KEY_BYTES
            and len(value) <= MAX_VALUE_BYTES
        ):
            self._engine.put(0, self._prefix + key, value)
            return
        op = self._put_op(key, value, ttl)
        if ttl is None:
            self._engine.put(op[0], op[1], op[3])
        else:
            self._engine.write((op,))

    set = put

    def update(self, key: Data, value: Data, ttl: float | None = None) -> None:
        """Replace the value of an existing key.

        Raises:
            NotFoundError (a KeyError): the key does not exist (or has expired).
        """
        op = self._put_op(key, value, ttl)
        if not self._engine.write((op,), condition=lambda: self._engine.get(op[1]) is not None):
            raise NotFoundError(f"key {key!r} does not exist in {self.namespace_name}:{self.name}")

    def delete(self, key: Data) -> bool:
        """Delete ``key``. Returns True if it existed (and had not expired)."""
        op = self._delete_op(key)
        return self._engine.write((op,), condition=lambda: self._engine.get(op[1]) is not None)

    def expire(self, key: Data, ttl: float | None) -> bool:
        """Set (or with None, remove) the time to live of an existing key.

        Returns False, changing nothing, when the key does not exist.
        """
        self._check_live()
        kb, kflag = key_bytes(key)
        ekey = self._prefix + kb
        expire_ms = 0 if ttl is None else self._expire_ms(ttl_seconds(ttl))
        ops: list[Op] = []

        def still_there() -> bool:
            found = self._engine.get(ekey)
            if found is None:
                return False
            flags = found[0] & ~HAS_TTL
            ops.append((flags | HAS_TTL if expire_ms else flags, ekey, expire_ms, found[2]))
            return True

        # The condition fills `ops` under the write lock, so the value it rewrites is current.
        return self._engine.write(ops, condition=still_there)

    def batch_put(
        self, keys: Sequence[Data], values: Sequence[Data], ttl: float | None = None
    ) -> None:
        """Store ``values[i]`` under ``keys[i]`` for every i, atomically (all or nothing).

        Raises:
            InvalidArgumentError: the lists differ in length, or any key/value is bad;
                then nothing is written.
        """
        if isinstance(keys, (str, bytes)) or isinstance(values, (str, bytes)):
            raise InvalidTypeError("batch_put takes a list of keys and a list of values")
        keys, values = list(keys), list(values)
        if len(keys) != len(values):
            raise InvalidArgumentError(
                f"batch_put needs as many values as keys; got {len(keys)} keys "
                f"and {len(values)} values"
            )
        ops = [self._put_op(k, v, ttl) for k, v in zip(keys, values)]
        if ops:
            self._engine.write(ops)

    # -- reads -------------------------------------------------------------------

    def get(self, key: Data, default: Any = None) -> Any:
        """The value of ``key`` in the type it was written with; ``default`` if missing."""
        # Fast path for plain keys; key_bytes() checks and explains everything else.
        if self._droppable:
            self._check_live()
        if type(key) is bytes and 0 < len(key) <= MAX_KEY_BYTES:
            found = self._engine.get(self._prefix + key)
        elif type(key) is str and 0 < len(key) <= MAX_KEY_BYTES and key.isascii():
            found = self._engine.get(self._prefix + key.encode())
        else:
            found = self._engine.get(self._prefix + key_bytes(key)[0])
        if found is None:
            return default
        return found[2].decode() if found[0] & VALUE_STR else found[2]

    def __getitem__(self, key: Data) -> Data:
        self._check_live()
        kb, _ = key_bytes(key)
        found = self._engine.get(self._prefix + kb)
        if found is None:
            raise NotFoundError(f"key {key!r} does not exist in {self.namespace_name}:{self.name}")
        return decode_value(found[2], found[0])

    def __setitem__(self, key: Data, value: Data) -> None:
        self.put(key, value)

    def __delitem__(self, key: Data) -> None:
        if not self.delete(key):
            raise NotFoundError(f"key {key!r} does not exist in {self.namespace_name}:{self.name}")

    def exists(self, key: Data) -> bool:
        """Whether ``key`` holds a live value."""
        self._check_live()
        kb, _ = key_bytes(key)
        return self._engine.get(self._prefix + kb) is not None

    __contains__ = exists

    def ttl(self, key: Data) -> float | None:
        """Seconds ``key`` has left to live; None when it does not expire.

        Raises:
            NotFoundError: the key does not exist.
        """
        self._check_live()
        kb, _ = key_bytes(key)
        found = self._engine.get(self._prefix + kb)
        if found is None:
            raise NotFoundError(f"key {key!r} does not exist in {self.namespace_name}:{self.name}")
        if not found[0] & HAS_TTL:
            return None
        return max(0.0, (found[1] - self._engine.now_ms()) / 1000)

    def get_range(self, start: Data, end: Data) -> list[tuple[Data, Data]]:
        """Every ``(key, value)`` with ``start <= key <= end``, sorted by key."""
        if start is None or end is None:
            raise InvalidTypeError("get_range needs a start and an end key (str or bytes)")
        return list(self.scan(start=start, end=end))

    def scan(
        self,
        start: Data | None = None,
        end: Data | None = None,
        prefix: Data | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[Data, Data]]:
        """Iterate ``(key, value)`` pairs over a consistent snapshot taken now.

        Args:
            start: first key (inclusive); None starts at the table's first key.
            end: last key (inclusive); None runs to the table's last key.
            prefix: only keys starting with it.
            reverse: largest key first.
            limit: at most this many pairs (a non-negative int).
        """
        self._check_live()
        lo, hi = self._bounds(start, end, prefix)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise InvalidArgumentError(f"limit must be a non-negative integer; got {limit!r}")
        if (hi is not None and lo >= hi) or limit == 0:
            return iter(())
        return self._pairs(self._engine.scan(lo, hi, reverse, limit), limit)

    def _pairs(self, entries: Iterator[Any], limit: int | None) -> Iterator[tuple[Data, Data]]:
        skip = self._skip
        if limit is not None:
            entries = islice(entries, limit)
        for key, flags, _expire, value in entries:
            # decode_key/decode_value, inlined: this loop runs once per scanned pair.
            yield (
                key[skip:].decode() if flags & KEY_STR else key[skip:],
                value.decode() if flags & VALUE_STR else value,
            )

    def _bounds(
        self, start: Data | None, end: Data | None, prefix: Data | None
    ) -> tuple[bytes, bytes | None]:
        lo = self._prefix
        hi = self._end
        if start is not None:
            lo = max(lo, self._prefix + bound_bytes(start, "start"))
        if end is not None:
            # The smallest key greater than `end` bounds an inclusive end.
            hi = _min_bound(hi, self._prefix + bound_bytes(end, "end") + b"\x00")
        if prefix is not None:
            p = self._prefix + bound_bytes(prefix, "prefix")
            lo = max(lo, p)
            hi = _min_bound(hi, prefix_end(p))
        return lo, hi

    def keys(self, **scan_args: Any) -> Iterator[Data]:
        """Keys only; takes the arguments of :meth:`scan`."""
        return (k for k, _ in self.scan(**scan_args))

    def __iter__(self) -> Iterator[Data]:
        return self.keys()

    def count(self) -> int:
        """The number of live keys (counts by scanning)."""
        self._check_live()
        return sum(1 for _ in self._engine.scan(self._prefix, self._end))

    # -- maintenance -------------------------------------------------------------

    def flush(self) -> None:
        """Write the memtable (shared by all tables) to disk and make the log durable."""
        self._engine.flush()

    def compact(self) -> None:
        """Rewrite this table's stored data without overwritten, deleted or expired entries."""
        self._check_live()
        self._engine.flush()
        self._engine.compact(self._prefix, self._end)

    def stats(self) -> dict[str, Any]:
        """Engine counters, with this table's name and live key count."""
        stats = dict(self._engine.stats())
        stats["table"] = f"{self.namespace_name}:{self.name}"
        stats["table_keys"] = self.count()
        return stats


def _min_bound(a: bytes | None, b: bytes | None) -> bytes | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class Namespace:
    """A named group of tables."""

    def __init__(self, db: DB, name: str) -> None:
        self._db = db
        self.name = name

    def __repr__(self) -> str:
        return f"<shaledb.Namespace {self.name}>"

    def table(self, name: str) -> Table:
        """An existing table. Raises NotFoundError when it does not exist."""
        return self._db._table(self.name, name)

    def create_table(self, name: str, exist_ok: bool = False) -> Table:
        """Create a table (durably) and return it. Raises AlreadyExistsError if it exists."""
        return self._db._create_table(self.name, name, exist_ok)

    def drop_table(self, name: str) -> None:
        """Delete a table and all its data. Raises NotFoundError when it does not exist."""
        self._db._catalog.drop_table(self.name, name)

    def list_tables(self) -> list[str]:
        """Table names, sorted."""
        return self._db._catalog.tables(self.name)


class WriteBatch:
    """Puts and deletes, possibly on several tables, applied atomically by :meth:`DB.write`.

    Also a context manager: ``with db.write_batch() as b:`` writes at the end of the
    block unless it raised.
    """

    def __init__(self, db: DB) -> None:
        self._db = db
        self._ops: list[Op] = []

    def put(
        self, key: Data, value: Data, ttl: float | None = None, table: Table | None = None
    ) -> WriteBatch:
        """Add a put (checked now; a bad argument raises before anything is written)."""
        self._ops.append((table or self._db)._put_op(key, value, ttl))
        return self

    def delete(self, key: Data, table: Table | None = None) -> WriteBatch:
        """Add a delete."""
        self._ops.append((table or self._db)._delete_op(key))
        return self

    def clear(self) -> None:
        self._ops.clear()

    def __len__(self) -> int:
        return len(self._ops)

    def __enter__(self) -> WriteBatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._db.write(self)


class DB(Table):
    """A database directory: the default table, plus namespaces and tables.

    ``DB(path)`` opens (creating when needed) and locks the directory; a second
    process gets a LockedError naming the holder. Use as a context manager or call
    :meth:`close`.

    Args:
        path: the data directory. ``data_dir`` is accepted as another name for it.
        memtable_size: flush the memtable after this many entries (otherwise it is
            bounded by bytes, ``Options.memtable_bytes``).
        **options: any field of :class:`shaledb.options.Options` (``fsync``, ...).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        memtable_size: int | None = None,
        **options: Any,
    ) -> None:
        if path is None:
            path = data_dir if data_dir is not None else "./data"
        elif data_dir is not None:
            raise InvalidArgumentError("give the data directory once: path or data_dir")
        try:
            opts = Options(memtable_entries=memtable_size, **options)
        except TypeError as exc:
            raise InvalidArgumentError(f"unknown option: {exc}") from None
        from shaledb.engine.lsm import LSMEngine

        self._setup(LSMEngine(os.fspath(path), opts))
        self.path = os.fspath(path)

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
        super().__init__(engine, DEFAULT_NAMESPACE, DEFAULT_TABLE, 0, self._catalog)

    def __repr__(self) -> str:
        return f"<shaledb.DB {self.path!r}>"

    # -- namespaces and tables ----------------------------------------------------

    def namespace(self, name: str) -> Namespace:
        """An existing namespace. Raises NotFoundError when it does not exist."""
        check_name(name, "namespace")
        if not self._catalog.has_namespace(name):
            raise NotFoundError(f"namespace {name} does not exist")
        return Namespace(self, name)

    def create_namespace(self, name: str, exist_ok: bool = False) -> Namespace:
        """Create a namespace (durably). Raises AlreadyExistsError if it exists."""
        check_name(name, "namespace")
        if not (exist_ok and self._catalog.has_namespace(name)):
            self._catalog.create_namespace(name)
        return Namespace(self, name)

    def drop_namespace(self, name: str) -> None:
        """Delete a namespace with all its tables and their data."""
        self._catalog.drop_namespace(name)

    def list_namespaces(self) -> list[str]:
        """Namespace names, sorted."""
        return self._catalog.namespaces()

    def table(self, name: str, namespace: str = DEFAULT_NAMESPACE) -> Table:
        """An existing table (of the default namespace unless told)."""
        return self._table(namespace, name)

    def _table(self, namespace: str, name: str) -> Table:
        check_name(name, "table")
        return Table(
            self._engine, namespace, name, self._catalog.table_id(namespace, name), self._catalog
        )

    def _create_table(self, namespace: str, name: str, exist_ok: bool) -> Table:
        check_name(name, "table")
        if exist_ok and name in self._catalog.tables(namespace):
            return self._table(namespace, name)
        table_id = self._catalog.create_table(namespace, name)
        return Table(self._engine, namespace, name, table_id, self._catalog)

    # -- batches and lifecycle ---------------------------------------------------------

    def write_batch(self) -> WriteBatch:
        """A new, empty write batch for this database."""
        return WriteBatch(self)

    def write(self, batch: WriteBatch | Iterable[Any]) -> None:
        """Apply a write batch atomically: after any crash all of it or none is there."""
        if not isinstance(batch, WriteBatch):
            raise InvalidTypeError(f"write takes a WriteBatch; got {type(batch).__name__}")
        if batch._db is not self:
            raise InvalidArgumentError("this WriteBatch belongs to another database")
        if batch._ops:
            self._engine.write(list(batch._ops))

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


def open(  # noqa: A001 - the promised name, as with builtins' open
    path: str | os.PathLike[str] = "./data", **options: Any
) -> DB:
    """Open (creating when needed) the database in directory ``path``.

    Takes the keyword arguments of :class:`DB`. Raises LockedError when another
    process holds the directory, CorruptionError when its files are damaged.
    """
    return DB(path, **options)
