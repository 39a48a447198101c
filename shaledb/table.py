"""Tables and namespaces of the embedded API: :class:`Table` and :class:`Namespace`.

A :class:`Table` is a sorted key-value space stored behind its own key prefix in the
one engine of a database (:mod:`shaledb.keyspace`). A :class:`Namespace` is a named
group of tables, read from and changed through the database's
:class:`~shaledb.keyspace.Catalog`. Both are thread-safe; a write that returned is in
the write-ahead log (see :class:`shaledb.options.Options` for when it is fsynced).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any, cast

from shaledb.arguments import (
    Data,
    bound_bytes,
    data_list,
    decode_value,
    expire_ms,
    key_bytes,
    scan_limit,
    ttl_seconds,
    value_bytes,
)
from shaledb.engine.base import Engine, Op, RawEntry, RawOp
from shaledb.engine.entry import HAS_TTL, KEY_STR, TOMBSTONE, VALUE_STR
from shaledb.errors import InvalidArgumentError, InvalidTypeError, NotFoundError
from shaledb.keyspace import DEFAULT_TABLE_ID, Catalog, check_name, prefix_end, table_prefix
from shaledb.options import MAX_KEY_BYTES, MAX_VALUE_BYTES

#: The type of a list's iterator: a scan handing one out has read its entries already.
_LIST_ITERATOR: type = type(iter([]))
#: tuple.__new__ builds an Op at a third of the cost of Op(...): once per batched put.
_new = tuple.__new__

__all__ = ["Namespace", "Table"]

_STR_STR = KEY_STR | VALUE_STR
#: str lengths that cannot exceed the byte limits once UTF-8 encoded (4 bytes a char at most).
_SAFE_CHARS = MAX_KEY_BYTES
_SAFE_VALUE_CHARS = MAX_VALUE_BYTES // 4


class Table:
    """One table: a sorted key-value space. Keys and values are str or bytes.

    Keys sort by their UTF-8 bytes; a str key and the bytes of its UTF-8 encoding
    are the same key. Reads give back the type the latest write used. Tables are
    made by :meth:`Namespace.table` and :meth:`Namespace.create_table`.
    """

    def __init__(
        self, engine: Engine, catalog: Catalog, namespace: str, name: str, table_id: int
    ) -> None:
        self._engine = engine
        self._catalog = catalog
        self._table_id = table_id
        # The default table cannot be dropped: its hot paths skip the check.
        self._droppable = table_id != DEFAULT_TABLE_ID
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

    def _missing(self, key: object) -> NotFoundError:
        return NotFoundError(f"key {key!r} does not exist in {self.namespace_name}:{self.name}")

    # -- engine operations (for WriteBatch) -----------------------------------------

    def belongs_to(self, engine: Engine) -> bool:
        """Whether this table lives in ``engine`` (a write batch checks its tables so)."""
        return self._engine is engine

    def put_op(self, key: object, value: object, ttl: object | None = None) -> Op:
        """The engine operation that puts ``value`` under ``key``; checks every argument.

        Raises as :meth:`put` does. Used by :class:`shaledb.WriteBatch`.
        """
        self._check_live()
        kb, kflag = key_bytes(key)
        vb, vflag = value_bytes(value)
        if ttl is None:
            return _new(Op, (kflag | vflag, self._prefix + kb, 0, vb))
        expire = expire_ms(self._engine.now_ms(), ttl)
        return _new(Op, (kflag | vflag | HAS_TTL, self._prefix + kb, expire, vb))

    def delete_op(self, key: object) -> Op:
        """The engine operation that deletes ``key``. Used by :class:`shaledb.WriteBatch`."""
        self._check_live()
        kb, kflag = key_bytes(key)
        return _new(Op, (kflag | TOMBSTONE, self._prefix + kb, 0, b""))

    # -- writes ------------------------------------------------------------------

    def put(self, key: Data, value: Data, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, replacing any earlier value.

        Args:
            key: str or bytes, 1 to 65536 bytes (UTF-8 for str).
            value: str or bytes, at most 64 MiB.
            ttl: seconds until the key expires (a positive number up to
                :data:`shaledb.arguments.MAX_TTL_SECONDS`), or None to keep it.
        Raises:
            InvalidTypeError: key or value is not str/bytes, or ttl is not a number.
            InvalidArgumentError: empty or oversized key, oversized value, ttl out of range.
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
        op = self.put_op(key, value, ttl)
        if ttl is None:
            self._engine.put(op.flags, op.key, op.value)
        else:
            self._engine.write((op,))

    set = put

    def update(self, key: Data, value: Data, ttl: float | None = None) -> None:
        """Replace the value of an existing key.

        Raises:
            NotFoundError (a KeyError): the key does not exist (or has expired).
        """
        op = self.put_op(key, value, ttl)
        if not self._engine.write((op,), condition=lambda: self._engine.get(op.key) is not None):
            raise self._missing(key)

    def delete(self, key: Data) -> bool:
        """Delete ``key``. Returns True if it existed (and had not expired)."""
        op = self.delete_op(key)
        return self._engine.delete(op.flags, op.key)

    def expire(self, key: Data, ttl: float | None) -> bool:
        """Set (or with None, remove) the time to live of an existing key.

        Returns False, changing nothing, when the key does not exist.
        """
        self._check_live()
        kb, _ = key_bytes(key)
        ekey = self._prefix + kb
        expire = 0 if ttl is None else expire_ms(self._engine.now_ms(), ttl)
        ops: list[Op] = []

        def still_there() -> bool:
            found = self._engine.get(ekey)
            if found is None:
                return False
            old_flags, _old_expire, value = found
            flags = old_flags & ~HAS_TTL
            ops.append(Op(flags | HAS_TTL if expire else flags, ekey, expire, value))
            return True

        # The condition fills `ops` under the write lock, so the value it rewrites is current.
        return self._engine.write(ops, condition=still_there)

    def batch_put(
        self, keys: Sequence[Data], values: Sequence[Data], ttl: float | None = None
    ) -> None:
        """Store ``values[i]`` under ``keys[i]`` for every i, atomically (all or nothing).

        Raises:
            InvalidTypeError: keys or values is not a list (or other iterable) of
                str/bytes; then nothing is written.
            InvalidArgumentError: the lists differ in length, or any key/value is bad;
                then nothing is written.
        """
        key_list, value_list = data_list(keys, "keys"), data_list(values, "values")
        if len(key_list) != len(value_list):
            raise InvalidArgumentError(
                f"batch_put needs as many values as keys; got {len(key_list)} keys "
                f"and {len(value_list)} values"
            )
        if ttl is not None:
            ttl_seconds(ttl)  # one clear error before any key is looked at
        ops: Sequence[RawOp] | None = None
        if ttl is None:
            ops = self._plain_puts(key_list, value_list)
        if ops is None:
            ops = [self.put_op(k, v, ttl) for k, v in zip(key_list, value_list)]
        if ops:
            self._engine.write(ops)

    def _plain_puts(self, keys: Sequence[object], values: Sequence[object]) -> list[RawOp] | None:
        """The ops of a batch of ``bytes`` keys and values without expiry, checked in a
        few C passes instead of one :meth:`put_op` per pair; None when any key or value
        is of another type or out of bounds (``put_op`` then says which and why)."""
        if not keys:
            return []
        if not (all(type(k) is bytes for k in keys) and all(type(v) is bytes for v in values)):
            return None
        byte_keys = cast("Sequence[bytes]", keys)
        byte_values = cast("Sequence[bytes]", values)
        key_sizes = list(map(len, byte_keys))
        if min(key_sizes) < 1 or max(key_sizes) > MAX_KEY_BYTES:
            return None
        if max(map(len, byte_values)) > MAX_VALUE_BYTES:
            return None
        self._check_live()
        prefix = self._prefix
        return [(0, prefix + k, 0, v) for k, v in zip(byte_keys, byte_values)]

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
        # Unpacked, not found.value: engines may hand back a plain (flags, expire, value).
        flags, _expire, value = found
        return value.decode() if flags & VALUE_STR else value

    def __getitem__(self, key: Data) -> Data:
        self._check_live()
        kb, _ = key_bytes(key)
        found = self._engine.get(self._prefix + kb)
        if found is None:
            raise self._missing(key)
        flags, _expire, value = found
        return decode_value(value, flags)

    def __setitem__(self, key: Data, value: Data) -> None:
        self.put(key, value)

    def __delitem__(self, key: Data) -> None:
        if not self.delete(key):
            raise self._missing(key)

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
            raise self._missing(key)
        flags, expire, _value = found
        if not flags & HAS_TTL:
            return None
        return max(0.0, (expire - self._engine.now_ms()) / 1000)

    def get_range(self, start: Data, end: Data) -> list[tuple[Data, Data]]:
        """Every ``(key, value)`` with ``start <= key <= end``, sorted by key.

        Empty when ``start > end``.
        """
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
            end: last key (inclusive); None runs to the table's last key. A ``start``
                after ``end`` selects nothing.
            prefix: only keys starting with it.
            reverse: largest key first.
            limit: at most this many pairs (a non-negative int).
        Raises:
            InvalidTypeError: a bound or prefix is not str/bytes.
            InvalidArgumentError: limit is not a non-negative int.
        """
        self._check_live()
        lo, hi = self._bounds(start, end, prefix)
        limit = scan_limit(limit)
        if (hi is not None and lo >= hi) or limit == 0:
            return iter(())
        return self._pairs(self._engine.scan(lo, hi, reverse, limit), limit)

    def _pairs(self, entries: Iterator[RawEntry], limit: int | None) -> Iterator[tuple[Data, Data]]:
        skip = self._skip
        if type(entries) is _LIST_ITERATOR:
            # A short scan's entries are a list already (read when the scan was made):
            # its pairs are made by one comprehension, not a generator resumed per pair.
            # decode_value, inlined (and its key twin), as below.
            return iter(
                [
                    (
                        key[skip:].decode() if flags & KEY_STR else key[skip:],
                        value.decode() if flags & VALUE_STR else value,
                    )
                    for key, flags, _expire, value in (
                        entries if limit is None else islice(entries, limit)
                    )
                ]
            )
        return self._lazy_pairs(entries, limit)

    def _lazy_pairs(
        self, entries: Iterator[RawEntry], limit: int | None
    ) -> Iterator[tuple[Data, Data]]:
        skip = self._skip
        if limit is not None:
            entries = islice(entries, limit)
        for key, flags, _expire, value in entries:
            # decode_value, inlined (and its key twin): this loop runs once per pair.
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
    """A named group of tables; made by :meth:`shaledb.DB.namespace`."""

    def __init__(self, engine: Engine, catalog: Catalog, name: str) -> None:
        self._engine = engine
        self._catalog = catalog
        self.name = name

    def __repr__(self) -> str:
        return f"<shaledb.Namespace {self.name}>"

    def table(self, name: str) -> Table:
        """An existing table. Raises NotFoundError when it does not exist."""
        check_name(name, "table")
        table_id = self._catalog.table_id(self.name, name)
        return Table(self._engine, self._catalog, self.name, name, table_id)

    def create_table(self, name: str, exist_ok: bool = False) -> Table:
        """Create a table (durably) and return it. Raises AlreadyExistsError if it exists."""
        check_name(name, "table")
        if exist_ok and name in self._catalog.tables(self.name):
            return self.table(name)
        table_id = self._catalog.create_table(self.name, name)
        return Table(self._engine, self._catalog, self.name, name, table_id)

    def drop_table(self, name: str) -> None:
        """Delete a table and all its data. Raises NotFoundError when it does not exist."""
        self._catalog.drop_table(self.name, name)

    def list_tables(self) -> list[str]:
        """Table names, sorted."""
        return self._catalog.tables(self.name)
