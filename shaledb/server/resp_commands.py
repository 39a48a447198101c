"""The RESP command table: how a command is declared, and the argument rules they share.

Each command module (:mod:`~shaledb.server.resp_strings`, :mod:`~shaledb.server.resp_keys`,
:mod:`~shaledb.server.resp_server`, :mod:`~shaledb.server.pubsub`,
:mod:`~shaledb.server.transactions`) declares its commands with :func:`command`, which
records a :class:`Spec` in :data:`REGISTRY`. :mod:`shaledb.server.resp_session` runs them.

A handler is ``handler(session, args) -> reply`` where ``args`` are the command's
arguments after its name (``bytes``) and the reply is a value
:func:`shaledb.server.resp_protocol.encode` takes, or :class:`Replies` for a command
that answers with several frames (SUBSCRIBE). A handler reports a bad request by
raising :class:`RespError` (its text is the whole Redis error line, code first);
any other :class:`~shaledb.errors.ShaleDBError` becomes an ``ERR`` line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shaledb.errors import InvalidArgumentError

if TYPE_CHECKING:
    from shaledb.server.resp_session import RespSession

Handler = Callable[["RespSession", list[bytes]], Any]


class RespError(InvalidArgumentError):
    """A request the command refuses; ``str()`` is the error line without ``-``."""


class Replies(list[Any]):
    """Several reply frames for one command, sent in order (SUBSCRIBE a b c)."""

    __slots__ = ()


@dataclass(frozen=True)
class Spec:
    """One command as COMMAND INFO describes it.

    ``arity`` counts the name: ``n`` means exactly n words, ``-n`` at least n.
    ``flags`` use Redis's names; the ones the dispatcher acts on: ``write`` (runs
    under the keyspace write lock), ``noauth`` (allowed before AUTH), ``pubsub``
    (allowed in RESP2 subscribed mode), ``nomulti`` (runs at once inside MULTI
    instead of being queued). ``first``/``last``/``step`` locate the key arguments.
    """

    name: str
    handler: Handler
    arity: int
    flags: frozenset[str]
    first: int
    last: int
    step: int
    group: str
    summary: str
    since: str

    def arity_ok(self, words: int) -> bool:
        return words == self.arity if self.arity > 0 else words >= -self.arity

    def keys_of(self, args: list[bytes]) -> list[bytes]:
        """The key arguments of a call (``args`` without the name)."""
        if self.first <= 0:
            return []
        last = len(args) if self.last < 0 else self.last
        return [args[i - 1] for i in range(self.first, last + 1, self.step) if i - 1 < len(args)]


#: Every command, by lower-case name.
REGISTRY: dict[str, Spec] = {}


def command(
    name: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (0, 0, 0),
    group: str = "generic",
    summary: str = "",
    since: str = "1.0.0",
) -> Callable[[Handler], Handler]:
    """Declare ``handler`` as command ``name`` (see :class:`Spec` for the fields)."""

    def register(handler: Handler) -> Handler:
        REGISTRY[name] = Spec(
            name,
            handler,
            arity,
            frozenset(flags.split()),
            keys[0],
            keys[1],
            keys[2],
            group,
            summary,
            since,
        )
        return handler

    return register


# -- shared argument rules (Redis's words) ------------------------------------------------

NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
SYNTAX = "ERR syntax error"
_MAX_INT64 = 2**63 - 1
_MIN_INT64 = -(2**63)


def wrong_args(name: str) -> RespError:
    return RespError(f"ERR wrong number of arguments for '{name}' command")


def to_int(raw: bytes, message: str = NOT_INTEGER) -> int:
    """A signed 64-bit integer argument, strictly as Redis reads one."""
    digits = raw[1:] if raw[:1] == b"-" else raw
    if (
        not digits
        or not digits.isdigit()
        or (len(digits) > 1 and digits[:1] == b"0")
        or len(digits) > 19
        or raw == b"-0"  # Redis's string2ll refuses it too
    ):
        raise RespError(message)
    value = int(raw)
    if not _MIN_INT64 <= value <= _MAX_INT64:
        raise RespError(message)
    return value


def to_float(raw: bytes) -> float:
    """A float argument (``inf``, ``-inf`` allowed; NaN and blanks are not)."""
    text = raw.decode("ascii", "replace").strip()
    if text != raw.decode("ascii", "replace") or not text:
        raise RespError(NOT_FLOAT)
    try:
        value = float(text)
    except ValueError:
        raise RespError(NOT_FLOAT) from None
    if value != value or "_" in text:
        raise RespError(NOT_FLOAT)
    return value


def upper(raw: bytes) -> bytes:
    return raw.upper()


def text(raw: bytes) -> str:
    """An argument shown in an error message, as Redis quotes it (cut at 128 bytes)."""
    return raw[:128].decode("utf-8", "replace")
