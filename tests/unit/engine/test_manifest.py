"""The manifest: version edits round trip, CURRENT, and damage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shaledb.engine import filenames
from shaledb.engine.fs import FileSystem
from shaledb.engine.manifest import (
    ManifestState,
    ManifestWriter,
    decode_current,
    encode_current,
    read_current,
)
from shaledb.engine.record_log import MANIFEST_EDIT, frame
from shaledb.engine.version_edit import TableFile, VersionEdit
from shaledb.errors import CorruptionError

T1 = (0, TableFile(5, 1234, 10, b"\x00a", b"\xffz"))
T2 = (2, TableFile(6, 99, 1, b"k", b"k"))
CATALOG = {"version": 1, "next_id": 3, "namespaces": {"default": {"default": 0}}, "dropped": [1]}


def test_edit_round_trip() -> None:
    payload = VersionEdit(
        added=[T1, T2], removed=[(1, 3)], log_number=7, next_file=9, last_seq=1234, catalog=CATALOG
    ).encode()
    state = ManifestState(name="MANIFEST-000001")
    state.tables[3] = (1, TableFile(3, 1, 1, b"a", b"b"))
    state.apply(VersionEdit.decode(payload, "here"))
    assert state.tables == {5: T1, 6: T2}
    assert (state.log_number, state.next_file, state.last_seq) == (7, 9, 1234)
    assert state.catalog == CATALOG


def test_edit_leaves_out_what_is_not_given() -> None:
    assert json.loads(VersionEdit(log_number=None, last_seq=4).encode()) == {"last_seq": 4}
    state = ManifestState(name="m", log_number=3)
    state.apply(VersionEdit.decode(VersionEdit(last_seq=4).encode(), "here"))
    assert state.log_number == 3 and state.last_seq == 4


def test_malformed_edit_is_corruption() -> None:
    with pytest.raises(CorruptionError, match="where"):
        VersionEdit.decode(json.dumps({"add": [[0, 1, 2]]}).encode(), "where")
    with pytest.raises(CorruptionError):
        VersionEdit.decode(json.dumps({"add": [[0, 1, 2, 3, "zz", "00"]]}).encode(), "where")


def test_edit_round_trips_through_its_codec() -> None:
    edit = VersionEdit(added=[T1], removed=[(0, 2)], log_number=3, catalog=CATALOG)
    assert VersionEdit.decode(edit.encode()) == edit


def test_repair_inputs_round_trip_and_bad_ones_are_corruption() -> None:
    edit = VersionEdit(added=[T1], repair_inputs=["000004.sst", "MANIFEST-000002"])
    assert VersionEdit.decode(edit.encode()) == edit
    state = ManifestState(name="m")
    state.apply(VersionEdit.decode(edit.encode()))
    assert state.repair_inputs == ["000004.sst", "MANIFEST-000002"]
    for bad in ("000004.sst", [4], {"a": 1}):
        with pytest.raises(CorruptionError, match="repair_inputs"):
            VersionEdit.decode(json.dumps({"repair_inputs": bad}).encode(), "where")


def _new(tmp_path: Path, number: int = 1, **counters) -> ManifestWriter:
    snapshot = VersionEdit(added=[T1], log_number=4, next_file=10, last_seq=0, **counters)
    return ManifestWriter(FileSystem(), str(tmp_path), number, snapshot)


def test_log_and_current_round_trip(tmp_path: Path) -> None:
    m = _new(tmp_path)
    m.append(VersionEdit(added=[T2], last_seq=50))
    m.append(VersionEdit(removed=[(0, 5)], catalog=CATALOG))
    m.close()
    assert (tmp_path / "CURRENT").read_bytes() == encode_current("MANIFEST-000001")
    assert (tmp_path / "CURRENT").read_text().startswith("MANIFEST-000001\n")
    state = read_current(FileSystem(), str(tmp_path))
    assert state is not None and state.name == "MANIFEST-000001"
    assert state.tables == {6: T2}
    assert (state.log_number, state.next_file, state.last_seq) == (4, 10, 50)
    assert state.catalog == CATALOG


def test_new_manifest_replaces_current(tmp_path: Path) -> None:
    _new(tmp_path, 1).close()
    m2 = ManifestWriter(FileSystem(), str(tmp_path), 2, VersionEdit(added=[T2], log_number=8))
    m2.close()
    state = read_current(FileSystem(), str(tmp_path))
    assert state is not None and state.name == "MANIFEST-000002" and state.tables == {6: T2}
    assert not list(tmp_path.glob("*.tmp"))


def test_no_current_means_no_database(tmp_path: Path) -> None:
    assert read_current(FileSystem(), str(tmp_path)) is None


def test_torn_last_edit_is_dropped(tmp_path: Path) -> None:
    m = _new(tmp_path)
    m.append(VersionEdit(last_seq=77))
    m.close()
    path = tmp_path / "MANIFEST-000001"
    with open(path, "ab") as f:
        f.write(frame(MANIFEST_EDIT, VersionEdit(last_seq=99).encode())[:-3])
    state = read_current(FileSystem(), str(tmp_path))
    assert state is not None and state.last_seq == 77


def test_damage_inside_the_manifest_is_corruption(tmp_path: Path) -> None:
    m = _new(tmp_path)
    m.append(VersionEdit(last_seq=77))
    m.close()
    path = tmp_path / "MANIFEST-000001"
    data = bytearray(path.read_bytes())
    data[15] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptionError) as info:
        read_current(FileSystem(), str(tmp_path))
    assert str(path) in str(info.value) and "offset 0" in str(info.value)


@pytest.mark.parametrize("content", ["", "MANIFEST-000001", "garbage\n", "000001.sst\n"])
def test_bad_current_is_corruption(tmp_path: Path, content: str) -> None:
    _new(tmp_path).close()
    (tmp_path / "CURRENT").write_text(content)
    with pytest.raises(CorruptionError, match="CURRENT"):
        read_current(FileSystem(), str(tmp_path))


def test_current_naming_a_missing_manifest(tmp_path: Path) -> None:
    (tmp_path / "CURRENT").write_text("MANIFEST-000042\n")
    with pytest.raises(CorruptionError, match="MANIFEST-000042"):
        read_current(FileSystem(), str(tmp_path))


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_edit_that_is_not_a_json_object(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / filenames.manifest_name(3)
    path.write_bytes(frame(MANIFEST_EDIT, payload))
    (tmp_path / "CURRENT").write_text("MANIFEST-000003\n")
    with pytest.raises(CorruptionError, match="MANIFEST-000003"):
        read_current(FileSystem(), str(tmp_path))


def test_empty_manifest_is_corruption(tmp_path: Path) -> None:
    (tmp_path / "MANIFEST-000003").write_bytes(b"")
    (tmp_path / "CURRENT").write_text("MANIFEST-000003\n")
    with pytest.raises(CorruptionError, match="no edit"):
        read_current(FileSystem(), str(tmp_path))


def test_current_carries_a_checksum_of_the_name() -> None:
    data = encode_current("MANIFEST-000019")
    assert data.startswith(b"MANIFEST-000019\n") and decode_current(data) == "MANIFEST-000019"
    # One flipped bit in the name still names a manifest, but the checksum catches it.
    flipped = data.replace(b"MANIFEST-000019", b"MANIFEST-000018")
    with pytest.raises(CorruptionError, match="checksum"):
        decode_current(flipped, "db/CURRENT")


def test_current_in_the_older_form_without_a_checksum_is_read() -> None:
    assert decode_current(b"MANIFEST-000007\n") == "MANIFEST-000007"


def test_a_manifest_ending_in_damage_says_where() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        m = ManifestWriter(FileSystem(), d, 1, VersionEdit(log_number=2))
        m.append(VersionEdit(last_seq=5))
        m.close()
        path = Path(d) / "MANIFEST-000001"
        clean = read_current(FileSystem(), d)
        assert clean is not None and clean.torn_at is None
        size = path.stat().st_size
        with open(path, "ab") as f:
            f.write(b"\x00" * 20)
        torn = read_current(FileSystem(), d)
        assert torn is not None and torn.torn_at == size and torn.last_seq == 5
