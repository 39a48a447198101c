"""A recorded workload and the checks a crash image must pass against it.

:class:`History` runs calls on a database whose engine writes through a
:class:`~fault_fs.FaultFS` and remembers, for each call (an *event*: a write batch, a
table created or dropped), the steps it spanned and the WAL write that holds it. From
that it knows, for a crash before any step ``k``:

- which events must survive: every acknowledged catalog change (fsynced before it
  returns, in every mode); every acknowledged write in ``fsync="always"``; in every mode
  every write whose WAL record an fsync of that WAL covered before ``k``; after a
  process crash (no power cut), every acknowledged event;
- which events may survive: those whose first write reached the file system before
  ``k``.

:meth:`History.verdict` then checks that the state read back is the state after the
first ``j`` events for some ``j`` between the two: nothing acknowledged lost, nothing
that was never written or was overwritten before, and a prefix of history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fault_fs import FaultFS

import shaledb

State = dict[str, dict[str, str]]


def freeze(state: State) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    return tuple(sorted((t, tuple(sorted(kv.items()))) for t, kv in state.items()))


@dataclass
class Event:
    """One call of the workload. ``changes`` maps ``(table, key)`` to the new value
    (None: deleted); ``table_op`` is ``("create" | "drop", name)`` for catalog calls."""

    index: int
    start: int
    end: int = -1
    changes: dict[tuple[str, str], str | None] = field(default_factory=dict)
    table_op: tuple[str, str] | None = None
    wal_step: int | None = None
    wal_inode: int = -1

    def describe(self) -> str:
        if self.table_op is not None:
            return f"event {self.index}: {self.table_op[0]} table {self.table_op[1]}"
        parts = [f"{t}:{k}={'<deleted>' if v is None else v}" for (t, k), v in self.changes.items()]
        return f"event {self.index}: write {', '.join(parts[:4])}{' ...' if len(parts) > 4 else ''}"


class History:
    """Events run through one FaultFS, and the model states after each prefix."""

    def __init__(self, fs: FaultFS, fsync: str) -> None:
        self.fs = fs
        self.fsync = fsync
        self.events: list[Event] = []
        self.states: list[State] = [{"default": {}}]

    def _run(self, event: Event, call: Callable[[], Any]) -> None:
        call()
        event.end = self.fs.mark()
        self.events.append(event)
        state = {t: dict(kv) for t, kv in self.states[-1].items()}
        if event.table_op is not None:
            op, name = event.table_op
            if op == "create":
                state[name] = {}
            else:
                del state[name]
        for (table, key), value in event.changes.items():
            if value is None:
                state[table].pop(key, None)
            else:
                state[table][key] = value
        self.states.append(state)

    def write(self, changes: dict[tuple[str, str], str | None], call: Callable[[], Any]) -> None:
        """Run ``call``, which writes ``changes`` as one batch."""
        event = Event(len(self.events), self.fs.mark(), changes=dict(changes))
        start = event.start
        self._run(event, call)
        for step in self.fs.steps[start : event.end]:
            if step.op == "write" and step.kind == "wal":
                event.wal_step, event.wal_inode = step.index, step.inode
                break
        assert event.wal_step is not None, "a write reached no WAL"

    def table(self, op: str, name: str, call: Callable[[], Any]) -> None:
        """Run ``call``, which creates or drops table ``name``."""
        self._run(Event(len(self.events), self.fs.mark(), table_op=(op, name)), call)

    # -- what a crash image must hold ----------------------------------------------------

    def _synced(self, event: Event, k: int) -> bool:
        assert event.wal_step is not None
        return any(
            s.op == "sync" and s.inode == event.wal_inode
            for s in self.fs.steps[event.wal_step + 1 : k]
        )

    def bounds(self, k: int, power_cut: bool = True) -> tuple[int, int]:
        """``(lo, hi)``: after a crash before step ``k`` the state must be that after
        ``j`` events, ``lo <= j <= hi``."""
        lo = 0
        hi = 0
        for event in self.events:
            acked = event.end <= k
            if event.table_op is not None:
                required = acked
                possible = event.start < k
            else:
                assert event.wal_step is not None
                if power_cut:
                    required = (acked and self.fsync == "always") or self._synced(event, k)
                else:
                    required = acked
                possible = event.wal_step < k
            if required:
                lo = event.index + 1
            if possible:
                hi = event.index + 1
        return lo, max(lo, hi)

    def verdict(self, state: State, k: int, power_cut: bool = True) -> str | None:
        """None when ``state`` is allowed after a crash before step ``k``, else why not."""
        lo, hi = self.bounds(k, power_cut)
        frozen = freeze(state)
        for j in range(lo, hi + 1):
            if freeze(self.states[j]) == frozen:
                return None
        return self._explain(state, k, lo, hi)

    def _explain(self, state: State, k: int, lo: int, hi: int) -> str:
        # The prefix state closest to what was read, and how they differ.
        def distance(j: int) -> int:
            model = self.states[j]
            tables = set(model) | set(state)
            return sum(
                len(set(model.get(t, {}).items()) ^ set(state.get(t, {}).items()))
                + (1000 if (t in model) != (t in state) else 0)
                for t in tables
            )

        best = min(range(lo, hi + 1), key=distance)
        model = self.states[best]
        lines = [
            f"crash before step {k} ({self.fs.steps[k] if k < len(self.fs.steps) else 'end'}):"
            f" state matches no prefix of history of {lo}..{hi} events; "
            f"closest is after {best} events"
        ]
        if lo:
            lines.append(f"  last event that must survive: {self.events[lo - 1].describe()}")
        for t in sorted(set(model) | set(state)):
            if t not in state:
                lines.append(f"  table {t} is missing")
                continue
            if t not in model:
                lines.append(f"  table {t} should not exist (holds {len(state[t])} keys)")
                continue
            for key in sorted(set(model[t]) | set(state[t])):
                want, got = model[t].get(key), state[t].get(key)
                if want != got:
                    lines.append(f"  {t}:{key}: expected {want!r}, read {got!r}")
        return "\n".join(lines[:25])


def read_state(db: shaledb.DB, names: set[str]) -> State:
    """Every table of ``names`` that exists in ``db`` (default namespace), with its items."""
    state: State = {}
    existing = set(db.namespace("default").list_tables())
    for name in sorted(names & existing):
        table = db if name == "default" else db.table(name)
        state[name] = {str(k): str(v) for k, v in table.scan()}
    return state
