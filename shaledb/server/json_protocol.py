"""JSON lines on the server: framing the incoming stream and answering each line.

Spec: docs/protocol.md. Bytes from a connection are cut into lines by
:class:`LineFramer` (a ``\\r`` before the ``\\n`` is ignored, blank lines get no
reply); :func:`respond` decodes a line with the pure codec :mod:`shaledb.json_lines`,
runs it through the command layer (:class:`~shaledb.server.commands.Session`) and
encodes the reply. No I/O: :mod:`shaledb.server.server` moves the bytes.
"""

from __future__ import annotations

import logging
from typing import Any

from shaledb.errors import INTERNAL_CODE, ProtocolError, ServerError, ShaleDBError
from shaledb.json_lines import (
    decode_fields,
    encode_error,
    encode_reply,
    parse_object,
    pop_request_id,
)
from shaledb.server.commands import Session

__all__ = ["MAX_LINE_BYTES", "LineFramer", "encode_error", "line_too_long", "respond"]

log = logging.getLogger("shaledb.server")

#: Longest request line accepted, in bytes, without its ``\\n``. A longer line is
#: answered with an error and the connection is closed (the stream cannot be resynced
#: without reading the rest of the line).
MAX_LINE_BYTES = 16 * 1024 * 1024


# -- framing ---------------------------------------------------------------------------


class LineFramer:
    """Cuts a byte stream into request lines of at most ``max_line`` bytes.

    Feed it what the socket gives; it keeps the unfinished tail. Invariant: the tail
    it keeps is never longer than ``max_line`` bytes plus one read.
    """

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        # A bytearray, so that a long line arriving in many reads is not copied each time.
        self._tail = bytearray()

    def feed(self, data: bytes) -> tuple[list[bytes], bool]:
        """The complete lines in ``tail + data``, and whether a line is too long.

        When the second item is True, the lines returned are those before the long
        one; the caller answers them, reports the long line and stops reading.
        """
        limit = self.max_line + 1  # +1: a '\r' before the '\n' is allowed
        end = data.rfind(b"\n")
        if end < 0:
            self._tail += data
            return [], len(self._tail) > limit
        head = bytes(self._tail) + data[:end] if self._tail else data[:end]
        self._tail = bytearray(data[end + 1 :])
        lines = head.split(b"\n")
        for i, line in enumerate(lines):
            if len(line) > limit:
                return lines[:i], True
        return lines, len(self._tail) > limit

    def finish(self) -> bytes:
        """At end of stream: the unterminated last line (empty when none); it counts as one."""
        tail, self._tail = bytes(self._tail), bytearray()
        return tail


def line_too_long(max_line: int = MAX_LINE_BYTES) -> bytes:
    """The reply to a line over the limit (the server then closes the connection)."""
    return encode_error(
        ProtocolError(f"request line longer than {max_line} bytes; closing the connection")
    )


# -- answering -------------------------------------------------------------------------


def respond(session: Session, line: bytes) -> bytes:
    """The reply line (with its ``\\n``) to one request line. Never raises.

    A blank line gets no reply (``b""``). Errors become error replies; an unexpected
    exception is logged and answered with code ``internal``.
    """
    if not line.strip():
        return b""
    request_id: Any = None
    try:
        obj = parse_object(line)
        request_id = pop_request_id(obj)
        command, args = decode_fields(obj)
    except ShaleDBError as exc:
        session.commands.record("invalid", False)
        return encode_error(exc, request_id)
    try:
        reply = session.execute(command, args)
    except ShaleDBError as exc:
        return encode_error(exc, request_id)
    except Exception as exc:  # a bug: answer it, keep the connection and the server up
        log.exception("internal error on request %.200r", line)
        internal = ServerError(
            f"internal server error ({type(exc).__name__}: {exc}); the server log has details"
        )
        return encode_error(internal, request_id, INTERNAL_CODE)
    return encode_reply(reply, request_id)
