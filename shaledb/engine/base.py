"""The one interface every storage engine implements, and its durability rule.

Keys handed to an engine are non-empty ``bytes``; values are ``bytes``. An operation
is a tuple ``(flags, key, expire_ms, value)`` where ``flags`` holds the bits of
:mod:`shaledb.engine.entry` and ``expire_ms`` is milliseconds since the epoch, or 0
for no expiry (then ``HAS_TTL`` is clear).

Durability rule: when :meth:`Engine.write` returns, its operations are in the
engine's write-ahead log in the operating system (they survive the death of the
process); they are on stable storage when the engine's fsync mode says so
(``always``: before the return; ``everysec``: within about a second; ``never``:
when the OS writes them). A write is atomic: after any crash either all of its
operations are visible or none is.

Thread safety: every method may be called from any thread at any time.
Reads never wait on a flush or a compaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol

#: ``Op``'s fields as a plain tuple (an Op is one).
RawOp = tuple[int, bytes, int, bytes]
#: ``Entry``'s fields as a plain tuple (an Entry is one): what scans yield.
RawEntry = tuple[bytes, int, int, bytes]
#: ``Found``'s fields as a plain tuple (a Found is one): what point reads return.
RawFound = tuple[int, int, bytes]


class Op(NamedTuple):
    """One put or delete handed to :meth:`Engine.write`."""

    flags: int
    key: bytes
    expire_ms: int
    value: bytes


class Entry(NamedTuple):
    """One live entry read back by a scan (the key first: entries sort by it)."""

    key: bytes
    flags: int
    expire_ms: int
    value: bytes


class Found(NamedTuple):
    """What a point read finds for its key."""

    flags: int
    expire_ms: int
    value: bytes


class Engine(Protocol):
    """A sorted, durable map from bytes to bytes with expiry and atomic batches."""

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run; every later call raises ClosedError."""
        ...

    def write(self, ops: Sequence[RawOp], condition: Callable[[], bool] | None = None) -> bool:
        """Apply ``ops`` atomically, in order. Each is an :class:`Op` or a plain tuple
        of its fields in its order.

        If ``condition`` is given it is called under the engine's write lock, after
        every earlier write is applied and before this one; when it returns False
        nothing is written. Returns whether the operations were written.
        """
        ...

    def put(self, flags: int, key: bytes, value: bytes) -> None:
        """Exactly ``write([(flags, key, 0, value)])``: a put without expiry (the hot path)."""
        ...

    def delete(self, flags: int, key: bytes) -> bool:
        """Delete ``key`` if it holds a live entry; whether it did. ``flags`` include
        TOMBSTONE. Exactly ``write([(flags, key, 0, b"")], condition=<get(key) is not
        None>)``, at the cost of one read that need not hold the write lock."""
        ...

    def get(self, key: bytes) -> RawFound | None:
        """The live entry for ``key``; None when missing, deleted or expired.

        A plain tuple of :class:`Found`'s fields in its order. Rejected: a named tuple
        per read; building one costs 200-350 ns, a quarter of a memtable hit.
        """
        ...

    def scan(
        self, lo: bytes, hi: bytes | None, reverse: bool = False, limit: int | None = None
    ) -> Iterator[RawEntry]:
        """Live entries with ``lo <= key < hi`` (``hi`` None: no upper bound), sorted.

        Each is a plain tuple of :class:`Entry`'s fields in its order: a scan makes one
        per entry, and a named tuple would cost a fifth of a long scan's time.

        ``limit`` is a hint: the caller reads at most that many entries, so the engine
        may stop preparing more (the iterator may still yield more).

        The snapshot is taken when ``scan`` is called, not when iteration starts:
        later writes are not seen.
        """
        ...

    def now_ms(self) -> int:
        """The engine's clock, in milliseconds since the epoch."""
        ...

    def deferred_sync(self) -> AbstractContextManager[None]:
        """A block within which this thread's writes share one fsync, taken at its end.

        In fsync mode ``always`` a write inside the block returns before its fsync; the
        block's exit does one fsync covering them all (and raises if it fails). Use it
        only where the writes are acknowledged after the block.
        """
        ...

    def flush(self) -> None:
        """Make every acknowledged write durable and move the memtable to disk."""
        ...

    def compact(self, lo: bytes | None = None, hi: bytes | None = None) -> None:
        """Rewrite stored data in ``[lo, hi)`` (all when None) without dead entries."""
        ...

    def set_drop_filter(self, predicate: Callable[[bytes], bool]) -> None:
        """Keys for which ``predicate`` is true are dropped by later compactions."""
        ...

    def load_catalog(self) -> dict[str, Any] | None:
        """The catalog saved last (a JSON-able dict), or None for a new database."""
        ...

    def save_catalog(self, catalog: dict[str, Any]) -> None:
        """Replace the catalog durably (fsynced before returning)."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters and sizes, as plain JSON-able values."""
        ...

    def close(self) -> None:
        """Flush what the fsync mode requires, stop background work, release the lock."""
        ...
