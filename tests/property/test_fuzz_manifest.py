"""Fuzzing the manifest reader: random and damaged manifests, edits and CURRENT files
(shaledb.engine.manifest, shaledb.engine.version_edit).

``read_manifest``, ``current_name`` and ``VersionEdit.decode`` raise nothing but ShaleDB
errors, within the deadline and a bounded allocation (fuzz_support), whatever the bytes
or the JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from fuzz_support import FAST, SLOW, bounded, mutated
from hypothesis import given
from hypothesis import strategies as st

from shaledb.engine import filenames
from shaledb.engine.fs import FileSystem
from shaledb.engine.manifest import current_name, read_manifest
from shaledb.engine.record_log import MANIFEST_EDIT, LogWriter
from shaledb.engine.version_edit import TableFile, VersionEdit
from shaledb.errors import CorruptionError

NAME = filenames.manifest_name(3)

TABLES = st.builds(
    TableFile,
    st.integers(1, 10**6),
    st.integers(0, 10**9),
    st.integers(0, 10**6),
    st.binary(max_size=8),
    st.binary(max_size=8),
)
EDITS = st.builds(
    VersionEdit,
    st.lists(st.tuples(st.integers(0, 6), TABLES), max_size=4),
    st.lists(st.tuples(st.integers(0, 6), st.integers(1, 10**6)), max_size=4),
    st.none() | st.integers(0, 10**6),
    st.none() | st.integers(0, 10**6),
    st.none() | st.integers(0, 10**9),
    st.none()
    | st.fixed_dictionaries(
        {"version": st.just(1), "next_id": st.integers(1, 9), "dropped": st.just([])}
    ),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(
            st.sampled_from(
                ["add", "remove", "log_number", "next_file", "last_seq", "catalog", "x"]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@pytest.fixture(scope="module")
def workdir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="shaledb-fuzz-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def encode_manifest(edits: list[VersionEdit]) -> bytes:
    writer = LogWriter(MANIFEST_EDIT)
    return b"".join(writer.frame(e.encode()) for e in edits)


def check_manifest_bytes(workdir: str, data: bytes) -> None:
    with open(os.path.join(workdir, NAME), "wb") as f:
        f.write(data)
    with bounded(len(data)):
        state = read_manifest(FileSystem(), workdir, NAME)
        for level, table in state.tables.values():
            assert isinstance(level, int) and isinstance(table.number, int)


def check_edit_payload(payload: bytes) -> None:
    with bounded(len(payload)):
        VersionEdit.decode(payload, "fuzz", 0)


@FAST
@given(st.lists(EDITS, min_size=1, max_size=6))
def test_edits_round_trip(edits: list[VersionEdit]) -> None:
    for edit in edits:
        assert VersionEdit.decode(edit.encode()) == edit


@FAST
@given(st.binary(max_size=2048))
def test_random_bytes_into_the_manifest_reader(workdir: str, data: bytes) -> None:
    check_manifest_bytes(workdir, data)


@FAST
@given(st.lists(EDITS, min_size=1, max_size=6), st.data())
def test_damaged_manifests_into_the_reader(
    workdir: str, edits: list[VersionEdit], data: st.DataObject
) -> None:
    check_manifest_bytes(workdir, data.draw(mutated(encode_manifest(edits))))


@FAST
@given(st.binary(max_size=512) | JSON.map(lambda obj: json.dumps(obj).encode()))
def test_random_payloads_into_the_edit_decoder(payload: bytes) -> None:
    check_edit_payload(payload)


@FAST
@given(st.binary(max_size=64))
def test_random_current_files(workdir: str, data: bytes) -> None:
    with open(os.path.join(workdir, filenames.CURRENT), "wb") as f:
        f.write(data)
    with bounded(len(data)):
        current_name(FileSystem(), workdir)


@pytest.mark.slow
@SLOW
@given(st.lists(EDITS, min_size=1, max_size=12), st.data())
def test_damaged_manifests_into_the_reader_at_length(
    workdir: str, edits: list[VersionEdit], data: st.DataObject
) -> None:
    check_manifest_bytes(workdir, data.draw(mutated(encode_manifest(edits))))


@pytest.mark.slow
@SLOW
@given(st.binary(max_size=2048) | JSON.map(lambda obj: json.dumps(obj).encode()))
def test_random_payloads_into_the_edit_decoder_at_length(payload: bytes) -> None:
    check_edit_payload(payload)


@pytest.mark.parametrize("payload", [b"[" * 100_000, b'{"add":' + b"[" * 100_000])
def test_deeply_nested_json_is_corruption(payload: bytes) -> None:
    with pytest.raises(CorruptionError):
        VersionEdit.decode(payload, "fuzz", 0)
