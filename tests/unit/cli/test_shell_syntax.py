"""The shell's trailing-number rule (shaledb.cli.shell_syntax): only ASCII digits after
ASCII whitespace are a ttl or a limit; anything else is part of the value."""

from __future__ import annotations

import pytest

from shaledb.cli.shell_syntax import split_trailing_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello 5", ("hello", "5")),
        ("hello\t-2.5", ("hello", "-2.5")),
        ("hello .5", ("hello", ".5")),
        ("hello", ("hello", None)),
        ("hello5", ("hello5", None)),
        ("الفصل ٣", ("الفصل ٣", None)),  # an Arabic-Indic digit is text
        ("item ５", ("item ５", None)),  # a fullwidth digit
        ("price\u00a05", ("price\u00a05", None)),  # a no-break space does not separate
        ("第\u3000１", ("第\u3000１", None)),  # an ideographic space and digit
        ("1e5 3", ("1e5", "3")),
        ("v 1e5", ("v 1e5", None)),  # no exponent
    ],
)
def test_a_ttl_or_limit_is_ascii_digits_after_ascii_whitespace(
    text: str, expected: tuple[str, str | None]
) -> None:
    assert split_trailing_number(text) == expected
