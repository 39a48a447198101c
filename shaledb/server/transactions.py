"""MULTI/EXEC/DISCARD/WATCH/UNWATCH: queued commands applied as one atomic write batch.

EXEC runs the queued commands under the keyspace write lock against a
:class:`~shaledb.server.resp_store.BatchStore`, so each sees the earlier ones'
writes, then applies all their writes with one :meth:`shaledb.DB.write`: after any
crash all of them are there or none. As in Redis there is no rollback of a command
that answered an error inside EXEC; the others still apply.

WATCH aborts EXEC (a nil reply) when a watched key changed after the WATCH. Two
checks catch a change: every write marks the sessions watching its key
(:meth:`WatchRegistry.touch`, exact, as Redis's ``touchWatchedKey``; JSON-lines
writes too, through :meth:`~shaledb.server.resp_session.RespState.json_wrote`), and
at EXEC each watched key's value and expiry are compared with what they were at WATCH
time, which catches writes that reach the database another way (an embedded handle
in the server's process).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from shaledb import NotFoundError, ShaleDBError
from shaledb.server.resp_commands import Replies, RespError, command
from shaledb.server.resp_protocol import NULL_ARRAY, OK, ErrorReply
from shaledb.server.resp_store import BatchStore, Entry, KeyRef, table_ref

if TYPE_CHECKING:
    from shaledb.server.resp_session import RespSession

#: Milliseconds two expiry times may differ and still count as the same (TTLs travel
#: through the database as relative seconds, so they come back within a millisecond).
EXPIRY_TOLERANCE_MS = 50


class WatchRegistry:
    """Which sessions watch which keys. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: dict[KeyRef, set[RespSession]] = {}
        self._watched: dict[RespSession, dict[KeyRef, Entry | None]] = {}
        #: False while nobody watches anything: writes skip the registry entirely.
        self.active = False

    def watch(self, session: RespSession, ref: KeyRef, seen: Entry | None) -> None:
        with self._lock:
            keys = self._watched.setdefault(session, {})
            if ref not in keys:
                keys[ref] = seen
                self._watchers.setdefault(ref, set()).add(session)
            self.active = True

    def unwatch(self, session: RespSession) -> None:
        with self._lock:
            for ref in self._watched.pop(session, {}):
                watchers = self._watchers.get(ref)
                if watchers is not None:
                    watchers.discard(session)
                    if not watchers:
                        del self._watchers[ref]
            self.active = bool(self._watched)
        session.dirty = False

    def touch(self, ref: KeyRef) -> None:
        """A key was written: every session watching it will fail its EXEC."""
        if not self.active:
            return
        with self._lock:
            for session in self._watchers.get(ref, ()):
                session.dirty = True

    def touch_table(self, tref: tuple[str, str]) -> None:
        """Every key of a table was written (FLUSHDB)."""
        if not self.active:
            return
        with self._lock:
            for ref, sessions in self._watchers.items():
                if ref[0] == tref:
                    for session in sessions:
                        session.dirty = True

    def watched(self, session: RespSession) -> dict[KeyRef, Entry | None]:
        with self._lock:
            return dict(self._watched.get(session, {}))


def _same(a: Entry | None, b: Entry | None) -> bool:
    if a is None or b is None:
        return a is b
    if a[0] != b[0]:
        return False
    if a[1] is None or b[1] is None:
        return a[1] is b[1]
    return abs(a[1] - b[1]) <= EXPIRY_TOLERANCE_MS


def _unchanged(s: RespSession) -> bool:
    """Whether no watched key changed (call with the write lock held)."""
    if s.dirty:
        return False
    state = s.state
    for (tref, key), seen in state.watches.watched(s).items():
        try:
            table = state.table(*tref)
        except NotFoundError:
            return False
        if not _same(seen, state.direct.entry(table, key)):
            return False
    return True


@command(
    "multi", 1, "nomulti fast", group="transactions", summary="Start a transaction", since="1.2.0"
)
def _multi(s: RespSession, args: list[bytes]) -> Any:
    if s.in_multi:
        raise RespError("ERR MULTI calls can not be nested")
    s.in_multi = True
    s.queued = []
    s.multi_error = False
    return OK


@command(
    "discard",
    1,
    "nomulti fast",
    group="transactions",
    summary="Discard all commands issued after MULTI",
    since="2.0.0",
)
def _discard(s: RespSession, args: list[bytes]) -> Any:
    if not s.in_multi:
        raise RespError("ERR DISCARD without MULTI")
    s.in_multi = False
    s.queued = []
    s.multi_error = False
    s.state.watches.unwatch(s)
    return OK


@command(
    "exec",
    1,
    "nomulti",
    group="transactions",
    summary="Execute all commands issued after MULTI",
    since="1.2.0",
)
def _exec(s: RespSession, args: list[bytes]) -> Any:
    if not s.in_multi:
        raise RespError("ERR EXEC without MULTI")
    queued, failed = s.queued, s.multi_error
    s.in_multi, s.queued, s.multi_error = False, [], False
    state = s.state
    if failed:
        state.watches.unwatch(s)
        raise RespError("EXECABORT Transaction discarded because of previous errors.")
    with state.lock:
        if not _unchanged(s):
            state.watches.unwatch(s)
            return NULL_ARRAY
        state.watches.unwatch(s)
        batch = BatchStore(state, state.db)
        s.store = batch
        try:
            replies = [_one_reply(s.run(spec, words)) for spec, words in queued]
            batch.commit()
        except ShaleDBError as exc:
            return ErrorReply(f"ERR transaction not applied, nothing was written: {exc}")
        finally:
            s.store = state.direct
        state.dirty += len(queued)
    return replies


def _one_reply(reply: Any) -> Any:
    """The element of EXEC's array for one command: a command answering several frames
    (SUBSCRIBE a b) gives one element, its frame or, for several, an array of them."""
    if type(reply) is Replies:
        return reply[0] if len(reply) == 1 else list(reply)
    return reply


@command(
    "watch",
    -2,
    "nomulti fast",
    keys=(1, -1, 1),
    group="transactions",
    summary="Watch keys to make EXEC conditional",
    since="2.2.0",
)
def _watch(s: RespSession, args: list[bytes]) -> Any:
    if s.in_multi:
        raise RespError("ERR WATCH inside MULTI is not allowed")
    state = s.state
    tref = table_ref(s.table)
    with state.lock:
        for key in args:
            state.watches.watch(s, (tref, key), state.direct.entry(s.table, key))
    return OK


@command(
    "unwatch",
    1,
    "nomulti fast",
    group="transactions",
    summary="Forget all watched keys",
    since="2.2.0",
)
def _unwatch(s: RespSession, args: list[bytes]) -> Any:
    s.state.watches.unwatch(s)
    return OK
