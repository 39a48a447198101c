"""Write batches: puts and deletes on any tables of one database, applied atomically."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from shaledb.arguments import Data
from shaledb.engine.base import Engine, Op
from shaledb.errors import InvalidArgumentError, InvalidTypeError
from shaledb.table import Table

if TYPE_CHECKING:
    from shaledb.db import DB

__all__ = ["WriteBatch"]


class WriteBatch:
    """Puts and deletes, possibly on several tables, applied atomically by :meth:`DB.write`.

    Made by :meth:`DB.write_batch`. Every operation is checked when it is added, so a
    bad argument raises before anything is written. Also a context manager:
    ``with db.write_batch() as b:`` writes at the end of the block unless it raised.
    Not thread-safe: one thread fills a batch.
    """

    def __init__(self, db: DB, engine: Engine, default: Table) -> None:
        #: The database whose :meth:`DB.write` takes this batch.
        self.db = db
        self._engine = engine
        self._default = default
        self._ops: list[Op] = []

    def _table(self, table: Table | DB | None) -> Table:
        if table is None or table is self.db:
            return self._default
        if not isinstance(table, Table):
            raise InvalidTypeError(
                f"table must be a shaledb.Table of this database; got {type(table).__name__}"
            )
        if not table.belongs_to(self._engine):
            raise InvalidArgumentError(
                f"table {table.namespace_name}:{table.name} belongs to another database"
            )
        return table

    def put(
        self, key: Data, value: Data, ttl: float | None = None, table: Table | DB | None = None
    ) -> WriteBatch:
        """Add a put to ``table`` (the default table when None); returns the batch."""
        self._ops.append(self._table(table).put_op(key, value, ttl))
        return self

    def delete(self, key: Data, table: Table | DB | None = None) -> WriteBatch:
        """Add a delete from ``table`` (the default table when None); returns the batch."""
        self._ops.append(self._table(table).delete_op(key))
        return self

    def clear(self) -> None:
        """Forget every operation added so far."""
        self._ops.clear()

    def ops(self) -> list[Op]:
        """A copy of the engine operations added so far, in order."""
        return list(self._ops)

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
            self.db.write(self)
