"""The error tree and its one table of wire codes."""

from __future__ import annotations

import inspect

import pytest

from shaledb import errors
from shaledb.errors import (
    ERROR_CODES,
    GENERIC_CODE,
    InvalidArgumentError,
    InvalidTypeError,
    ServerError,
    ShaleDBError,
    error_class,
    error_code,
)

CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, ShaleDBError) and cls.__module__ == errors.__name__
]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_but_the_generic_ones_has_a_code_that_maps_back(cls: type) -> None:
    code = error_code(cls("x"))
    if cls in (ShaleDBError, ServerError):
        assert code == GENERIC_CODE and error_class(code) is None
    else:
        assert code != GENERIC_CODE and error_class(code) is cls


def test_codes_are_unique_and_the_most_specific_class_wins() -> None:
    codes = [code for _, code in ERROR_CODES]
    assert len(codes) == len(set(codes))
    assert error_code(InvalidTypeError("x")) == "invalid_type"
    assert error_code(InvalidArgumentError("x")) == "invalid_argument"
    assert error_code(ValueError("not ours")) == GENERIC_CODE
    assert error_class("no such code") is None


def test_invalid_type_is_a_type_error_and_a_value_error() -> None:
    exc = InvalidTypeError("x")
    assert isinstance(exc, TypeError) and isinstance(exc, ValueError)
    assert isinstance(exc, ShaleDBError)
