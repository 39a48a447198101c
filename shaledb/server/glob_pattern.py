"""Redis glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET), as ``stringmatchlen``.

``*`` any run of bytes, ``?`` one byte, ``[abc]`` / ``[^abc]`` / ``[a-z]`` a class,
``\\x`` the byte x itself. Patterns and subjects are bytes; matching is exact
(case-sensitive), unlike :mod:`fnmatch`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache


def _translate(pattern: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i : i + 1]
        i += 1
        if c == b"*":
            out += b".*"
        elif c == b"?":
            out += b"."
        elif c == b"\\" and i < n:
            out += re.escape(pattern[i : i + 1])
            i += 1
        elif c == b"[":
            j = i
            negate = j < n and pattern[j : j + 1] == b"^"
            if negate:
                j += 1
            items = bytearray()
            while j < n and pattern[j : j + 1] != b"]":
                if pattern[j : j + 1] == b"\\" and j + 1 < n:
                    items += re.escape(pattern[j + 1 : j + 2])
                    j += 2
                elif (
                    j + 2 < n and pattern[j + 1 : j + 2] == b"-" and pattern[j + 2 : j + 3] != b"]"
                ):
                    lo, hi = sorted((pattern[j], pattern[j + 2]))
                    items += re.escape(bytes((lo,))) + b"-" + re.escape(bytes((hi,)))
                    j += 3
                else:
                    items += re.escape(pattern[j : j + 1])
                    j += 1
            # An unterminated class runs to the end of the pattern, as in Redis.
            i = j + 1
            if not items:
                out += b"[^\\x00-\\xff]" if not negate else b"[\\x00-\\xff]"
            else:
                out += b"[" + (b"^" if negate else b"") + bytes(items) + b"]"
        else:
            out += re.escape(c)
    return bytes(out)


@lru_cache(maxsize=256)
def compile_glob(pattern: bytes) -> Callable[[bytes], bool]:
    """A predicate: whether a subject matches ``pattern`` whole."""
    if pattern == b"*":
        return lambda subject: True
    regex = re.compile(_translate(pattern), re.DOTALL)
    return lambda subject: regex.fullmatch(subject) is not None
