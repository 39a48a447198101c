"""The shell's argument syntax: splitting ``<table>:<key>:<value> [ttl]`` and friends.

The rules are specified in docs/shell.md ("Arguments"). In short:

* A table name is everything before the first ``:``; table and namespace names never
  contain ``:`` (see :func:`shaledb.keyspace.check_name`).
* In ``set``, the key runs to the second ``:`` and the value is the rest, so a value
  may contain ``:`` and spaces.
* An optional trailing number (``set``'s ttl, ``scan``'s limit) is recognised only as
  the last whitespace-separated token of the line, and only if it looks like a number.
* A key, value or prefix that begins with ``"`` is a JSON string literal, which is how
  to write a key containing ``:``, a value with surrounding spaces or a control
  character, or a value whose last word is a number that is not meant as a ttl.

Everything here is pure: text in, parts (or :class:`UsageError`) out.
"""

from __future__ import annotations

import json
import math
import re

from shaledb.errors import InvalidArgumentError

_NUMBER = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
#: A text ending in whitespace and a number: the number is a ttl or a limit. ASCII
#: only: an Arabic-Indic or fullwidth digit, or a no-break space, is part of the value.
_TRAILING_NUMBER = re.compile(rf"(?P<head>.*?)\s+(?P<number>{_NUMBER})", re.DOTALL | re.ASCII)
#: Lenient about raw control characters (a tab typed inside quotes stays a tab).
_DECODER = json.JSONDecoder(strict=False)


class UsageError(InvalidArgumentError):
    """A command line that does not have the form its command takes."""


def split_trailing_number(text: str) -> tuple[str, str | None]:
    """``(head, number)`` when ``text`` ends in whitespace and a number, else ``(text, None)``."""
    match = _TRAILING_NUMBER.fullmatch(text)
    if match is None:
        return text, None
    return match["head"], match["number"]


def read_quoted(text: str) -> tuple[str, str]:
    """Decode the JSON string literal that opens ``text``; returns ``(string, rest)``.

    Raises:
        UsageError: ``text`` does not start with a complete JSON string literal.
    """
    try:
        decoded, end = _DECODER.raw_decode(text)
    except json.JSONDecodeError as exc:
        # The decoder's messages end in " at" or " starting at", before a position.
        what = exc.msg.removesuffix(" at").removesuffix(" starting")
        raise UsageError(
            f"bad quoted text {text!r}: {what[:1].lower()}{what[1:]} at column {exc.colno}"
        ) from None
    if not isinstance(decoded, str):  # raw_decode of '"...' only ever yields a str
        raise UsageError(f"bad quoted text {text!r}")
    return decoded, text[end:]


def read_whole(text: str) -> str:
    """``text`` itself, or the string it spells when it starts with ``"``."""
    if not text.startswith('"'):
        return text
    decoded, rest = read_quoted(text)
    if rest.strip():
        raise UsageError(f"unexpected text after the closing quote: {rest.strip()!r}")
    return decoded


def parse_target(text: str, usage: str) -> tuple[str, str]:
    """Split ``<table>:<key>``; the key is everything after the first ``:``."""
    table, sep, key = text.partition(":")
    if not sep or not table:
        raise UsageError(f"usage: {usage}")
    return table, read_whole(key)


def parse_set(text: str, usage: str) -> tuple[str, str, str, float | None]:
    """Split ``<table>:<key>:<value> [ttl]`` into ``(table, key, value, ttl)``."""
    table, sep, rest = text.partition(":")
    if not sep or not table:
        raise UsageError(f"usage: {usage}")
    if rest.startswith('"'):
        key, rest = read_quoted(rest)
        if not rest.startswith(":"):
            raise UsageError(f"expected ':' after the quoted key; usage: {usage}")
        rest = rest[1:]
    else:
        key, sep, rest = rest.partition(":")
        if not sep:
            raise UsageError(f"usage: {usage}")
    if rest.startswith('"'):
        value, after = read_quoted(rest)
        ttl_text = None
        if after.strip():
            empty, ttl_text = split_trailing_number(after)
            if ttl_text is None or empty:
                raise UsageError(
                    f"unexpected text after the quoted value: {after.strip()!r}; usage: {usage}"
                )
    else:
        value, ttl_text = split_trailing_number(rest)
    return table, key, value, None if ttl_text is None else parse_ttl(ttl_text)


def parse_scan(text: str, usage: str) -> tuple[str, str | None, int | None]:
    """Split ``<table>[:<prefix>] [limit]`` into ``(table, prefix, limit)``."""
    head, limit_text = split_trailing_number(text)
    table, sep, prefix = head.partition(":")
    if not table:
        raise UsageError(f"usage: {usage}")
    limit = None if limit_text is None else parse_limit(limit_text)
    return table, (read_whole(prefix) or None) if sep else None, limit


def parse_ttl(text: str) -> float:
    """A ttl token as positive, finite seconds (an int when it is whole)."""
    try:
        ttl = float(text)
    except ValueError:
        ttl = math.nan
    if not math.isfinite(ttl) or ttl <= 0:
        raise InvalidArgumentError(f"ttl must be a positive number of seconds; got {text}")
    return int(ttl) if ttl.is_integer() else ttl


def parse_limit(text: str) -> int:
    """A limit token as a non-negative int."""
    if not text.isdigit():
        raise InvalidArgumentError(f"limit must be a non-negative integer; got {text}")
    return int(text)


def show(data: str | bytes) -> str:
    """How the shell prints a key or value: as is, or as a JSON string when that is clearer.

    A str is quoted when it is empty, begins with ``"``, has leading or trailing
    whitespace or holds an unprintable character; the quoted form is exactly what
    ``set`` and ``get`` accept back. Bytes print as the str they decode to from UTF-8,
    or, when they are not UTF-8, as a Python bytes literal (``b'\\xff'``).
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return repr(data)
    if not data or data[0] == '"' or data != data.strip() or not data.isprintable():
        return json.dumps(data, ensure_ascii=False)
    return data


def show_number(seconds: float) -> str:
    """A number of seconds as given: ``60``, ``1.5``."""
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


def show_remaining(seconds: float) -> str:
    """Seconds left to live, rounded up to a tenth: ``60``, ``0.5``."""
    # Rounding up keeps a key that is still alive from ever reading as 0.
    tenths = math.ceil(round(seconds * 10, 6))
    return show_number(tenths / 10)
