"""The model bench/soak.py checks every reply against: what each key may hold now.

One client owns each key (see bench/soak.py for why), so the writes to a key form a
sequence and the model is exact: for every key it keeps the set of outcomes the
database may show, and narrows the set whenever a read shows which one happened.

Rules (times are the client's wall clock; the server shares it on this machine):

- An acknowledged write replaces the set with its one outcome. kill -9 loses nothing
  acknowledged in any fsync mode, since the write-ahead log write reaches the OS before
  the reply, so the outcome holds until this client's next write to the key.
- A write with no reply (the server died, or the reply was lost) adds its outcome to
  the set: it may or may not have happened. The client waits until the server that may
  hold the request is dead before it goes on, so such a write cannot land later, on
  top of newer writes.
- A read must show one outcome of the set; the set then keeps only the outcomes that
  show that way.
- A value written with a TTL was written at some server time in [sent, resolved]
  (resolved: the reply, or for a write with no reply the moment its server was known
  dead). It must be visible before ``sent + ttl`` and gone after ``resolved + ttl``;
  in between both are allowed. ``slack`` seconds widen both bounds for the rounding
  of expiry times to milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Seconds by which expiry bounds are widened (expiry times are stored in milliseconds).
DEFAULT_SLACK = 0.25


@dataclass(frozen=True)
class Outcome:
    """One state a key may be in: absent (``value`` None) or holding ``value``.

    ``expires_lo``/``expires_hi`` bound the expiry time of a TTL'd value (None: none).
    ``uncertain`` marks the outcome of a write that got no reply.
    """

    value: str | None
    expires_lo: float | None = None
    expires_hi: float | None = None
    uncertain: bool = False

    def shows(self, observed: str | None, t0: float, t1: float, slack: float) -> bool:
        """Whether a read that ran during [t0, t1] may have seen ``observed``."""
        if self.value is None:
            return observed is None
        if self.expires_lo is None or self.expires_hi is None:
            return observed == self.value
        if observed == self.value:
            # Seen at server time s >= t0 before its expiry, which is <= expires_hi.
            return t0 < self.expires_hi + slack
        if observed is None:
            # Gone at server time s <= t1, at or after its expiry, which is >= expires_lo.
            return t1 > self.expires_lo - slack
        return False

    def describe(self) -> str:
        text = "absent" if self.value is None else repr(self.value[:40])
        if self.expires_lo is not None:
            text += f" (expires in [{self.expires_lo:.3f}, {self.expires_hi:.3f}])"
        return text + (" [in flight]" if self.uncertain else "")


ABSENT = Outcome(None)


@dataclass
class Resolution:
    """What the reads told about writes that were in flight at a kill."""

    applied: int = 0
    not_applied: int = 0


@dataclass
class KeyModel:
    """The outcomes each key of one client may show."""

    slack: float = DEFAULT_SLACK
    keys: dict[str, list[Outcome]] = field(default_factory=dict)
    resolution: Resolution = field(default_factory=Resolution)

    def allowed(self, key: str) -> list[Outcome]:
        return self.keys.get(key, [ABSENT])

    def acknowledged(self, key: str, outcome: Outcome) -> None:
        self.keys[key] = [outcome]

    def in_flight(self, key: str, outcome: Outcome) -> None:
        """A write with no reply: it may or may not have happened."""
        allowed = self.allowed(key)
        flying = Outcome(outcome.value, outcome.expires_lo, outcome.expires_hi, uncertain=True)
        self.keys[key] = [*allowed, flying]

    def observe(self, key: str, observed: str | None, t0: float, t1: float) -> str | None:
        """Check a read of ``key`` during [t0, t1] that saw ``observed``, then narrow.

        Returns None when the read is allowed, else a description of the mismatch (the
        model is then reset to what was seen, so one fault is reported once).
        """
        allowed = self.allowed(key)
        fits = [o for o in allowed if o.shows(observed, t0, t1, self.slack)]
        if not fits:
            self.keys[key] = [ABSENT if observed is None else Outcome(observed)]
            shown = "absent" if observed is None else repr(observed[:40])
            return f"{key}: read during [{t0:.3f}, {t1:.3f}] saw {shown}; allowed: " + ", ".join(
                o.describe() for o in allowed
            )
        if len(allowed) > 1 and any(o.uncertain for o in allowed):
            # Counted only when the read tells: every fitting outcome in flight, or none.
            if all(o.uncertain for o in fits):
                self.resolution.applied += 1
            elif not any(o.uncertain for o in fits):
                self.resolution.not_applied += 1
        if observed is None:
            self.keys[key] = [ABSENT]
        else:
            # Every outcome with this value stays possible (same value, other expiries).
            self.keys[key] = [Outcome(o.value, o.expires_lo, o.expires_hi) for o in fits]
        return None

    def may_exist(self, key: str, t0: float) -> bool:
        """Whether ``key`` may have been live at some time at or after ``t0``."""
        return any(
            o.value is not None and (o.expires_hi is None or t0 < o.expires_hi + self.slack)
            for o in self.allowed(key)
        )
