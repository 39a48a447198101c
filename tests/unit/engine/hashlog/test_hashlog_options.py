"""The hash-log options are checked like every other option."""

from __future__ import annotations

import pytest

from shaledb.errors import InvalidArgumentError, InvalidTypeError
from shaledb.options import Options


@pytest.mark.parametrize(
    ("name", "value", "error", "message"),
    [
        ("hashlog_segment_bytes", 1023, InvalidArgumentError, "an integer >= 1024; got 1023"),
        ("hashlog_segment_bytes", "big", InvalidTypeError, "got str 'big'"),
        ("hashlog_segment_bytes", True, InvalidTypeError, "got bool True"),
        ("hashlog_merge_ratio", 0, InvalidArgumentError, r"in \(0, 1\]; got 0"),
        ("hashlog_merge_ratio", 1.5, InvalidArgumentError, r"in \(0, 1\]; got 1.5"),
        ("hashlog_merge_ratio", "half", InvalidTypeError, "got str 'half'"),
    ],
)
def test_bad_hashlog_options_are_named(
    name: str, value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"option {name} must be .*{message}"):
        Options(**{name: value})  # type: ignore[arg-type]


def test_good_hashlog_options() -> None:
    options = Options(hashlog_segment_bytes=1024, hashlog_merge_ratio=1)
    assert (options.hashlog_segment_bytes, options.hashlog_merge_ratio) == (1024, 1)
    assert Options().hashlog_merge_ratio == 0.5
