"""The client side of RESP: parsing reply frames, as a client reads them.

Used by the tests and the benchmarks to speak to the server without a Redis library
in between; the server's own codec (requests in, replies out) is
:mod:`shaledb.server.resp_protocol`. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from shaledb.server.resp_protocol import NULL_ARRAY, ErrorReply, FramingError, Push, SimpleString


class Incomplete(Exception):
    """The buffer ends inside a reply; feed more bytes."""


class ReplyParser:
    """Parses reply frames (both versions) into the values :func:`encode` takes.

    RESP3 maps become dicts, sets become sets, push frames :class:`Push`, doubles
    floats, nil ``None``; errors come back as :class:`ErrorReply` values (not raised).
    Raises FramingError on bytes that are not RESP.
    """

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[Any]:
        """Every complete reply in what was held plus ``data``."""
        self._buf += data
        out: list[Any] = []
        pos = 0
        while pos < len(self._buf):
            try:
                value, pos = self._parse(pos)
            except Incomplete:
                break
            out.append(value)
        self._buf = self._buf[pos:]
        return out

    def _line(self, pos: int) -> tuple[bytes, int]:
        nl = self._buf.find(b"\r\n", pos)
        if nl < 0:
            raise Incomplete
        return self._buf[pos + 1 : nl], nl + 2

    def _parse(self, pos: int) -> tuple[Any, int]:
        if pos >= len(self._buf):
            raise Incomplete
        kind = self._buf[pos : pos + 1]
        line, pos = self._line(pos)
        if kind == b"+":
            return SimpleString(line.decode("utf-8", "replace")), pos
        if kind == b"-":
            return ErrorReply(line.decode("utf-8", "replace")), pos
        if kind == b":":
            return int(line), pos
        if kind == b"_":
            return None, pos
        if kind == b"#":
            return line == b"t", pos
        if kind == b",":
            return float(line), pos
        if kind == b"(":
            return int(line), pos
        if kind in (b"$", b"=", b"!"):
            size = int(line)
            if size < 0:
                return None, pos
            if pos + size + 2 > len(self._buf):
                raise Incomplete
            data = self._buf[pos : pos + size]
            if kind == b"!":
                return ErrorReply(data.decode("utf-8", "replace")), pos + size + 2
            return (data[4:] if kind == b"=" else data), pos + size + 2
        if kind in (b"*", b"~", b">", b"%"):
            count = int(line)
            if count < 0:
                return NULL_ARRAY, pos
            items: list[Any] = []
            for _ in range(count * 2 if kind == b"%" else count):
                item, pos = self._parse(pos)
                items.append(item)
            if kind == b"%":
                return {_hashable(items[i]): items[i + 1] for i in range(0, len(items), 2)}, pos
            if kind == b"~":
                return {_hashable(i) for i in items}, pos
            return (Push(items) if kind == b">" else items), pos
        raise FramingError(f"not a RESP reply: type byte {kind!r}")


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
