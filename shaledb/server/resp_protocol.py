"""RESP2 and RESP3: framing, parsing and encoding of Redis protocol frames. No I/O.

Spec: docs/protocol.md, "The Redis protocol (RESP)". The server side is
:class:`RequestParser` (bytes in, commands out: each command a list of ``bytes``
arguments) plus :func:`encode` (a reply value out, bytes in the connection's
protocol version). The client side, used by tests and tools, is :class:`ReplyParser`.

Reply values are plain Python values, mapped to RESP types as follows:

============================  ==========================  ==========================
Python value                  RESP2                       RESP3
============================  ==========================  ==========================
``SimpleString("OK")``        ``+OK``                     ``+OK``
``ErrorReply("ERR ...")``     ``-ERR ...``                ``-ERR ...``
``int``                       ``:1``                      ``:1``
``bool``                      ``:1`` / ``:0``             ``#t`` / ``#f``
``float``                     bulk string ``$3 1.5``      double ``,1.5``
``bytes`` / ``str``           bulk string                 bulk string
``None``                      ``$-1`` (nil bulk)          ``_``
``NULL_ARRAY``                ``*-1``                     ``_``
``list`` / ``tuple``          array                       array
``dict``                      flat array k1 v1 k2 v2      map ``%``
``set`` / ``frozenset``       array                       set ``~``
``Push([...])``               array                       push ``>``
============================  ==========================  ==========================

Request framing follows Redis (``networking.c``): a frame starting with ``*`` is an
array of bulk strings; anything else is an inline command, one line split on blanks
with ``"..."`` and ``'...'`` quoting. A framing error is final: the parser returns
the commands before it and the error, and the server answers with the error and
closes, since the stream cannot be resynchronised.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

#: Longest frame (one command with all its arguments) accepted by default.
MAX_FRAME_BYTES = 16 * 1024 * 1024
#: Longest inline command line and longest ``*N``/``$N`` header line, as in Redis.
MAX_INLINE_BYTES = 64 * 1024
#: Most arguments in one array frame, as in Redis.
MAX_ARGS = 1024 * 1024

#: Protocol versions a connection may speak (``HELLO 2`` / ``HELLO 3``).
RESP2 = 2
RESP3 = 3


class SimpleString(str):
    """A status reply: ``+text``. ``text`` must not contain CR or LF."""

    __slots__ = ()


class ErrorReply(str):
    """An error reply: ``-CODE message``; the text starts with its code (``ERR``, ...)."""

    __slots__ = ()


class Push(list[Any]):
    """An out-of-band message (pub/sub): ``>`` in RESP3, an array in RESP2."""

    __slots__ = ()


class _NullArray:
    """The nil of an array reply: ``*-1`` in RESP2 (EXEC aborted by WATCH), ``_`` in RESP3."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = _NullArray()

OK = SimpleString("OK")
QUEUED = SimpleString("QUEUED")
PONG = SimpleString("PONG")

# Pre-encoded frames of the hottest replies.
_ENCODED_OK = b"+OK\r\n"
_NIL = {RESP2: b"$-1\r\n", RESP3: b"_\r\n"}
_NIL_ARRAY = {RESP2: b"*-1\r\n", RESP3: b"_\r\n"}


class FramingError(Exception):
    """A request stream that breaks the framing rules. ``str()`` is Redis's text."""


# -- requests ----------------------------------------------------------------------------


class RequestParser:
    """Cuts a byte stream into commands (lists of bytes arguments).

    Feed it what the socket gives; it keeps an unfinished frame. Invariant: it never
    holds more than ``max_frame`` bytes of one frame plus one read; a longer frame is
    a framing error as soon as that is known (at once when a bulk header announces it).
    ``max_frame`` may be changed between feeds (the server raises it after AUTH).
    """

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        # Bytes the held frame needs at least before parsing it again can succeed: a
        # large value arriving in many reads is then appended, not re-parsed each time.
        self._need = 0

    @property
    def buffered(self) -> int:
        """Bytes held for a frame not yet complete."""
        return len(self._buf)

    def feed(self, data: bytes) -> tuple[list[list[bytes]], FramingError | None]:
        """The complete commands in what was held plus ``data``, and a framing error.

        When the error is not None the commands are those before the bad frame; the
        caller runs them, answers the error and stops reading.
        """
        if self._buf and len(self._buf) + len(data) < self._need:
            self._buf += data
            return [], None
        self._need = 0
        # One immutable buffer per feed: slicing bytes gives bytes (no second copy).
        buf = bytes(self._buf) + data if self._buf else data
        commands: list[list[bytes]] = []
        n = len(buf)
        pos = 0
        error: FramingError | None = None
        try:
            while pos < n:
                if buf[pos] == 42:  # '*'
                    end = self._array(buf, pos, n, commands)
                else:
                    end = self._inline(buf, pos, n, commands)
                if end < 0:
                    break
                pos = end
        except FramingError as exc:
            error = exc
        if error is not None or pos >= n:
            self._buf = bytearray()
        else:
            self._buf = bytearray(buf[pos:])
        return commands, error

    def _check_partial(self, held: int, header: bool) -> None:
        if header and held > MAX_INLINE_BYTES:
            raise FramingError("Protocol error: too big mbulk count string")
        if held > self.max_frame:
            raise FramingError(f"Protocol error: request frame longer than {self.max_frame} bytes")

    def _array(self, buf: bytes, pos: int, n: int, out: list[list[bytes]]) -> int:
        """Parse ``*N`` at ``pos``; the end of the frame, or -1 if it is not all there."""
        # The hot loop of the server: locals only, one find and one int() per argument.
        find = buf.find
        nl = find(b"\r\n", pos)
        if nl < 0:
            self._check_partial(n - pos, header=True)
            return -1
        raw = buf[pos + 1 : nl]
        if raw.isdigit() and len(raw) < 9:
            count = int(raw)
        else:
            negative = _header_int(raw) if raw[:1] == b"-" else None
            if negative is None:
                raise FramingError("Protocol error: invalid multibulk length")
            count = negative
        if count > MAX_ARGS:
            raise FramingError("Protocol error: invalid multibulk length")
        p = nl + 2
        if count <= 0:  # '*0' and '*-1' are skipped, as Redis does
            return p
        args: list[bytes] = []
        append = args.append
        max_frame = self.max_frame
        for _ in range(count):
            if p >= n:
                self._check_partial(n - pos, header=False)
                return -1
            if buf[p] != 36:  # '$'
                got = chr(buf[p]) if 32 <= buf[p] < 127 else f"\\x{buf[p]:02x}"
                raise FramingError(f"Protocol error: expected '$', got '{got}'")
            nl = find(b"\r\n", p)
            if nl < 0:
                if n - p > MAX_INLINE_BYTES:
                    raise FramingError("Protocol error: too big bulk count string")
                self._check_partial(n - pos, header=False)
                return -1
            raw = buf[p + 1 : nl]
            if not raw.isdigit() or len(raw) > 18:
                raise FramingError("Protocol error: invalid bulk length")
            start = nl + 2
            end = start + int(raw)
            if end - pos > max_frame:
                raise FramingError(f"Protocol error: request frame longer than {max_frame} bytes")
            if end + 2 > n:
                self._check_partial(n - pos, header=False)
                self._need = end + 2 - pos
                return -1
            append(buf[start:end])
            p = end + 2  # Redis skips the CRLF after a bulk without checking it; so do we
        out.append(args)
        return p

    def _inline(self, buf: bytes, pos: int, n: int, out: list[list[bytes]]) -> int:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            if n - pos > min(MAX_INLINE_BYTES, self.max_frame):
                raise FramingError("Protocol error: too big inline request")
            return -1
        if nl - pos > min(MAX_INLINE_BYTES, self.max_frame):
            raise FramingError("Protocol error: too big inline request")
        line = bytes(buf[pos:nl])
        if line.endswith(b"\r"):
            line = line[:-1]
        args = split_inline(line)
        if args:
            out.append(args)
        return nl + 1


def _header_int(raw: bytes) -> int | None:
    """A ``*N``/``$N`` header's integer; None unless it is ``-?[0-9]+``."""
    digits = raw[1:] if raw[:1] == b"-" else raw
    if not digits or not digits.isdigit() or len(digits) > 18:
        return None
    return int(raw)


_ESCAPES = {
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("b"): b"\b",
    ord("a"): b"\a",
}
_BLANKS = b" \t\r\n\v\f"
_HEX = b"0123456789abcdefABCDEF"


def split_inline(line: bytes) -> list[bytes]:
    """Split an inline command as Redis's ``sdssplitargs`` does.

    Blanks separate arguments; ``"..."`` takes ``\\n``, ``\\xHH`` ... escapes, ``'...'``
    only ``\\'``; a closing quote must be followed by a blank or the end.
    Raises FramingError("Protocol error: unbalanced quotes in request").
    """
    if b'"' not in line and b"'" not in line:
        return line.split()
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _BLANKS:
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        quote = 0  # 0, ord('"') or ord("'")
        while True:
            if i >= n:
                if quote:
                    raise FramingError("Protocol error: unbalanced quotes in request")
                break
            c = line[i]
            if quote == 34:  # "
                if (
                    c == 92
                    and i + 3 < n
                    and line[i + 1] == ord("x")
                    and line[i + 2] in _HEX
                    and line[i + 3] in _HEX
                ):
                    cur.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    cur += _ESCAPES.get(line[i], bytes((line[i],)))
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in _BLANKS:
                        raise FramingError("Protocol error: unbalanced quotes in request")
                    quote = 0
                    i += 1
                    break
                else:
                    cur.append(c)
            elif quote == 39:  # '
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    cur.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in _BLANKS:
                        raise FramingError("Protocol error: unbalanced quotes in request")
                    quote = 0
                    i += 1
                    break
                else:
                    cur.append(c)
            elif c in _BLANKS:
                break
            elif c in (34, 39):
                quote = c
            else:
                cur.append(c)
            i += 1
        args.append(bytes(cur))


def encode_command(*args: bytes | str | int | float) -> bytes:
    """One command as an array of bulk strings (the client side of the framing)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = _as_bytes(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


def _as_bytes(arg: bytes | str | int | float) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode("utf-8")
    if isinstance(arg, float):
        return format_double(arg).encode("ascii")
    return str(arg).encode("ascii")


# -- replies -----------------------------------------------------------------------------


def format_double(x: float) -> str:
    """A float as Redis prints it: ``inf``, ``-inf``, ``nan``, else the shortest form
    that reads back exactly, without a trailing ``.0`` (``3`` not ``3.0``)."""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if math.isnan(x):
        return "nan"
    if x.is_integer() and abs(x) < 1e17:
        return str(int(x))
    return repr(x)


def encode(value: Any, proto: int = RESP2) -> bytes:
    """The RESP frame of a reply value (see the module docstring for the mapping).

    Raises TypeError for a value outside the mapping (a bug in the caller).
    """
    if value is OK:
        return _ENCODED_OK
    parts: list[bytes] = []
    _encode_into(value, proto, parts)
    return b"".join(parts)


def _encode_into(value: Any, proto: int, out: list[bytes]) -> None:
    t = type(value)
    if t is bytes:
        out.append(b"$%d\r\n%s\r\n" % (len(value), value))
    elif value is None:
        out.append(_NIL[proto])
    elif t is SimpleString:
        out.append(b"+%s\r\n" % value.encode("utf-8"))
    elif t is ErrorReply:
        out.append(b"-%s\r\n" % value.replace("\r", " ").replace("\n", " ").encode("utf-8"))
    elif t is bool:
        if proto == RESP3:
            out.append(b"#t\r\n" if value else b"#f\r\n")
        else:
            out.append(b":1\r\n" if value else b":0\r\n")
    elif t is int:
        out.append(b":%d\r\n" % value)
    elif t is str:
        raw = value.encode("utf-8", "surrogateescape")
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    elif t is float:
        text = format_double(value).encode("ascii")
        if proto == RESP3:
            out.append(b",%s\r\n" % text)
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(text), text))
    elif t is list or t is tuple or t is Push:
        prefix = b">" if t is Push and proto == RESP3 else b"*"
        out.append(b"%s%d\r\n" % (prefix, len(value)))
        for item in value:
            _encode_into(item, proto, out)
    elif t is dict:
        out.append(b"%s%d\r\n" % ((b"%", len(value)) if proto == RESP3 else (b"*", 2 * len(value))))
        for key, item in value.items():
            _encode_into(key, proto, out)
            _encode_into(item, proto, out)
    elif t is set or t is frozenset:
        out.append(b"%s%d\r\n" % (b"~" if proto == RESP3 else b"*", len(value)))
        for item in value:
            _encode_into(item, proto, out)
    elif value is NULL_ARRAY:
        out.append(_NIL_ARRAY[proto])
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _encode_into(bytes(value), proto, out)
    else:
        raise TypeError(f"no RESP encoding for {type(value).__name__}")


def encode_all(values: Iterable[Any], proto: int = RESP2) -> bytes:
    """The frames of several replies, in order."""
    return b"".join(encode(v, proto) for v in values)
