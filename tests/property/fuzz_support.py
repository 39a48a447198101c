"""Shared pieces of the reader fuzz tests: mutations, and the bounds every reader keeps.

A reader given damaged bytes may raise only a ShaleDB error
(:class:`~shaledb.errors.ShaleDBError`), must finish within a deadline (hypothesis's,
set per test) and may not allocate without bound: :func:`bounded` fails an example
whose peak traced allocation passes :data:`ALLOCATION_LIMIT` plus a multiple of the
input's size.
"""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from shaledb.errors import ShaleDBError

#: Bytes a reader may allocate for any input, beyond PER_INPUT_BYTE per input byte.
ALLOCATION_LIMIT = 16 * 1024 * 1024
PER_INPUT_BYTE = 64

#: Example counts: a few seconds per test in ``make test``, many more behind ``slow``.
FAST = settings(
    max_examples=120,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
SLOW = settings(
    max_examples=3000,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@contextlib.contextmanager
def bounded(input_size: int) -> Iterator[None]:
    """Run the block allowing only ShaleDB errors and a bounded allocation."""
    tracemalloc.start()
    try:
        with contextlib.suppress(ShaleDBError):
            yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    limit = ALLOCATION_LIMIT + PER_INPUT_BYTE * input_size
    assert peak <= limit, f"allocated {peak} bytes for {input_size} bytes of input"


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with a few random changes: bit flips, overwritten, zeroed, cut,
    inserted or duplicated ranges."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "overwrite", "zero", "truncate", "insert", "dup"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite" and data:
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
        elif kind == "zero" and data:
            n = draw(st.integers(1, 64))
            data[at : at + n] = bytes(len(data[at : at + n]))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "dup" and data:
            n = draw(st.integers(1, 64))
            data[at:at] = data[at : at + n]
    return bytes(data)
