"""Active expiry: deleting keys whose time to live has passed, as Redis's expire cycle.

Expired keys are never returned: the engine's read path treats an entry past its
deadline as missing, and compaction drops it from disk. That alone would leave
short-lived keys in the memtable and in level-0 tables until a compaction reaches
them, so the server also sweeps: :class:`ExpiryTracker` remembers the deadline of
every key a RESP command or a JSON-lines request gave a TTL (bounded by
``max_tracked``; keys beyond it are left to compaction), and :meth:`sweep`, run
about ten times a second, writes a tombstone for each key that is past its deadline
and no longer live, which frees its value in the memtable at once.

A sweep holds the RESP write lock and :attr:`ExpiryTracker.gate` exclusively, so no
write of either protocol can land between "the key is gone" and its tombstone; when
a JSON-lines job is in flight it skips that round instead of waiting for it.
"""

from __future__ import annotations

import heapq
import threading
from collections import Counter
from types import TracebackType
from typing import TYPE_CHECKING

from shaledb import NotFoundError, Table
from shaledb.server.resp_store import KeyRef, now_ms, table_ref

if TYPE_CHECKING:
    from shaledb.server.resp_session import RespState

#: Deadlines remembered at most; beyond this new ones are left to compaction.
MAX_TRACKED = 1_000_000
#: Keys examined per sweep at most (so one sweep holds the lock for a few ms).
SWEEP_BATCH = 2_000


class WriterGate:
    """Writers outside RESP (JSON-lines jobs) enter it shared; a sweep takes it alone.

    Entering waits only while a sweep runs (a few milliseconds at most).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._inside = 0
        self._sweeping = False

    def __enter__(self) -> None:
        with self._cond:
            while self._sweeping:
                self._cond.wait()
            self._inside += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._cond:
            self._inside -= 1

    def try_close(self) -> bool:
        """Shut the gate if nobody is inside; False (changing nothing) otherwise."""
        with self._cond:
            if self._inside:
                return False
            self._sweeping = True
            return True

    def reopen(self) -> None:
        with self._cond:
            self._sweeping = False
            self._cond.notify_all()


class ExpiryTracker:
    """Deadlines of keys given a TTL over either protocol, and the sweep. Thread-safe."""

    def __init__(self, state: RespState, max_tracked: int = MAX_TRACKED) -> None:
        self.state = state
        self.max_tracked = max_tracked
        self.gate = WriterGate()
        self._lock = threading.Lock()
        self._deadline: dict[KeyRef, int] = {}
        self._heap: list[tuple[int, KeyRef]] = []
        #: Keys deleted by sweeps, and deadlines not tracked because the tracker was full.
        self.expired_keys = 0
        self.untracked = 0

    def note(self, table: Table, key: bytes, expire_ms: int) -> None:
        self.note_ref((table_ref(table), key), expire_ms)

    def note_ref(self, ref: KeyRef, expire_ms: int) -> None:
        """Remember that ``ref`` expires at ``expire_ms`` (replacing an earlier deadline)."""
        with self._lock:
            if self._deadline.get(ref) == expire_ms:
                return
            if ref not in self._deadline and len(self._deadline) >= self.max_tracked:
                self.untracked += 1
                return
            self._deadline[ref] = expire_ms
            heapq.heappush(self._heap, (expire_ms, ref))
            if len(self._heap) > 2 * len(self._deadline) + 1024:
                # Replaced deadlines pile up as stale heap items; rebuild without them.
                self._heap = [(t, r) for r, t in self._deadline.items()]
                heapq.heapify(self._heap)

    def _due(self, now: int) -> list[KeyRef]:
        due: list[KeyRef] = []
        with self._lock:
            heap = self._heap
            while heap and heap[0][0] <= now and len(due) < SWEEP_BATCH:
                expire_ms, ref = heapq.heappop(heap)
                if self._deadline.get(ref) == expire_ms:
                    del self._deadline[ref]
                    due.append(ref)
        return due

    def pending(self) -> Counter[tuple[str, str]]:
        """Tracked deadlines still in the future, per table (INFO's ``expires``)."""
        now = now_ms()
        with self._lock:
            return Counter(ref[0] for ref, t in self._deadline.items() if t > now)

    def sweep(self) -> int:
        """Delete tracked keys past their deadline; how many. Runs on a worker thread."""
        state = self.state
        with self._lock:
            if not self._heap or self._heap[0][0] > now_ms():
                return 0
        if not self.gate.try_close():
            return 0
        removed = 0
        try:
            with state.lock:
                batch = state.db.write_batch()
                for tref, key in self._due(now_ms()):
                    try:
                        table = state.table(*tref)
                        if table.exists(key):
                            continue  # written again since, or given a longer life
                    except NotFoundError:
                        continue  # the table was dropped
                    batch.delete(key, table=table)
                    removed += 1
                if removed:
                    state.db.write(batch)
        finally:
            self.gate.reopen()
        self.expired_keys += removed
        return removed
