"""Fixtures of the fault tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from scratch import scratch_dir


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory for disk images (in memory when possible), removed after the test."""
    path = scratch_dir("faults")
    yield path
    shutil.rmtree(path, ignore_errors=True)
