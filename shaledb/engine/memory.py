"""An engine that keeps everything in memory: the reference model for the LSM engine.

Nothing survives ``close()``. It implements :class:`shaledb.engine.base.Engine`
with the simplest code that is obviously right, so the shared contract tests can hold
the durable engine to the same behaviour.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sortedcontainers import SortedDict

from shaledb.engine.base import Entry, Found, Op, RawFound, RawOp
from shaledb.engine.entry import TOMBSTONE, is_live
from shaledb.errors import ClosedError
from shaledb.options import Options


class MemoryEngine:
    """A sorted dict behind a lock. Thread-safe; not durable."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self._data: SortedDict = SortedDict()
        self._lock = threading.Lock()
        self._catalog: dict[str, Any] | None = None
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise ClosedError("the database is closed")

    def now_ms(self) -> int:
        return int(self.options.clock() * 1000)

    def write(self, ops: Sequence[RawOp], condition: Callable[[], bool] | None = None) -> bool:
        with self._lock:
            self._check_open()
            if condition is not None and not condition():
                return False
            for flags, key, expire_ms, value in ops:
                if flags & TOMBSTONE:
                    self._data.pop(key, None)
                else:
                    self._data[key] = Found(flags, expire_ms, value)
            return True

    def put(self, flags: int, key: bytes, value: bytes) -> None:
        self.write((Op(flags, key, 0, value),))

    def delete(self, flags: int, key: bytes) -> bool:
        return self.write(((flags, key, 0, b""),), condition=lambda: self.get(key) is not None)

    def get(self, key: bytes) -> RawFound | None:
        self._check_open()
        found: Found | None = self._data.get(key)
        if found is None or not is_live(found.flags, found.expire_ms, self.now_ms()):
            return None
        return found

    def scan(
        self, lo: bytes, hi: bytes | None, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        with self._lock:
            self._check_open()
            keys = list(self._data.irange(lo, hi, inclusive=(True, False), reverse=reverse))
            items = [Entry(k, *self._data[k]) for k in keys]
        now = self.now_ms()
        return iter([e for e in items if is_live(e.flags, e.expire_ms, now)])

    @contextlib.contextmanager
    def deferred_sync(self) -> Iterator[None]:
        yield  # nothing is ever synced

    def flush(self) -> None:
        self._check_open()

    def compact(self, lo: bytes | None = None, hi: bytes | None = None) -> None:
        self._check_open()

    def set_drop_filter(self, predicate: Callable[[bytes], bool]) -> None:
        with self._lock:
            for key in [k for k in self._data if predicate(k)]:
                del self._data[key]

    def load_catalog(self) -> dict[str, Any] | None:
        return copy.deepcopy(self._catalog)

    def save_catalog(self, catalog: dict[str, Any]) -> None:
        self._check_open()
        self._catalog = copy.deepcopy(catalog)

    def stats(self) -> dict[str, Any]:
        self._check_open()
        return {"engine": "memory", "keys": len(self._data)}

    def close(self) -> None:
        self.closed = True
