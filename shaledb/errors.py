"""The ShaleDB error tree.

Every error ShaleDB raises to a Python user derives from :class:`ShaleDBError`.
Where Python users conventionally catch a built-in (``ValueError`` for a bad
argument, ``TypeError`` for a wrong type, ``KeyError`` for a missing key), the
ShaleDB error also derives from that built-in, so both ``except`` forms work.
No class shadows a built-in name.
"""

from __future__ import annotations


class ShaleDBError(Exception):
    """Root of every error raised by ShaleDB."""


class InvalidArgumentError(ShaleDBError, ValueError):
    """An argument has the right type but an unacceptable value (empty key, bad TTL...)."""


class InvalidTypeError(InvalidArgumentError, TypeError):
    """An argument has a type ShaleDB does not accept (keys and values are str or bytes)."""


class NotFoundError(ShaleDBError, KeyError):
    """A key, table or namespace that must exist does not."""

    def __str__(self) -> str:
        # KeyError.__str__ quotes its argument; a message reads better plain.
        return str(self.args[0]) if self.args else ""


class AlreadyExistsError(ShaleDBError):
    """A namespace or table being created already exists."""


class CorruptionError(ShaleDBError):
    """Stored data failed a checksum or could not be decoded.

    The message names the file, the byte offset and the part that was damaged.
    """

    def __init__(self, message: str, path: str = "", offset: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset


class LockedError(ShaleDBError):
    """The data directory is held by another process (the message names it)."""


class ClosedError(ShaleDBError):
    """The database (or client) was used after ``close()``."""


class StorageError(ShaleDBError):
    """An operating-system error while reading or writing the database's files."""


class ProtocolError(ShaleDBError):
    """A malformed request or reply on the wire."""


class ServerError(ShaleDBError):
    """The server answered a request with an error."""


class ConnectionFailedError(ShaleDBError):
    """The client could not reach the server or lost its connection."""


class AuthenticationError(ShaleDBError):
    """The server refused the request until the client authenticates."""


# -- wire codes ----------------------------------------------------------------------
# Kept beside the classes so that a new error gets its code in the same change.

#: The one table from error classes to wire error codes (docs/protocol.md, "Errors"),
#: most specific class first. The server names an error by it; the client maps a code
#: back to its class. An error outside the table is :data:`GENERIC_CODE`.
ERROR_CODES: tuple[tuple[type[ShaleDBError], str], ...] = (
    (InvalidTypeError, "invalid_type"),
    (InvalidArgumentError, "invalid_argument"),
    (NotFoundError, "not_found"),
    (AlreadyExistsError, "already_exists"),
    (AuthenticationError, "auth"),
    (ProtocolError, "protocol"),
    (CorruptionError, "corruption"),
    (LockedError, "locked"),
    (ClosedError, "closed"),
    (StorageError, "storage"),
    (ConnectionFailedError, "connection"),
)
#: The code of an error outside :data:`ERROR_CODES`...
GENERIC_CODE = "error"
#: ...and of an unexpected server fault (a bug, answered rather than crashing).
INTERNAL_CODE = "internal"


def error_code(exc: BaseException) -> str:
    """The wire code of ``exc`` (see :data:`ERROR_CODES`)."""
    for cls, code in ERROR_CODES:
        if isinstance(exc, cls):
            return code
    return GENERIC_CODE


def error_class(code: str) -> type[ShaleDBError] | None:
    """The error class of a wire code; None for a code outside :data:`ERROR_CODES`."""
    for cls, known in ERROR_CODES:
        if known == code:
            return cls
    return None
