"""Table prefixes and the catalog of namespaces and tables."""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Callable

import pytest

from shaledb.engine.memory import MemoryEngine
from shaledb.errors import AlreadyExistsError, InvalidArgumentError, InvalidTypeError, NotFoundError
from shaledb.keyspace import (
    Catalog,
    DroppedTables,
    check_name,
    prefix_end,
    table_id_of,
    table_prefix,
)

IDS = [0, 1, 2, 0x7F, 0xEF, 0xF0, 0xF1, 0xFF, 0x100, 0xFFFF, 2**31, 2**32 - 1]


def test_prefixes_round_trip_and_are_prefix_free() -> None:
    prefixes = [table_prefix(i) for i in IDS]
    for i, p in zip(IDS, prefixes, strict=True):
        assert table_id_of(p + b"key") == i
    for a, b in itertools.permutations(prefixes, 2):
        assert not b.startswith(a)


def test_prefixes_keep_tables_in_disjoint_ranges() -> None:
    for i in IDS:
        p = table_prefix(i)
        end = prefix_end(p)
        assert end is not None and p < end
        assert p + b"\xff" * 10 < end
        for j in IDS:
            if j != i:
                other = table_prefix(j) + b"k"
                assert not (p <= other < end)


def test_prefix_end() -> None:
    assert prefix_end(b"a") == b"b"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"a\xff\xff") == b"b"
    assert prefix_end(b"\xff") is None
    assert prefix_end(b"") is None
    assert prefix_end(b"\x00") == b"\x01"


@pytest.mark.parametrize("name", ["a", "A-b_c.d", "x" * 64, "0"])
def test_good_names(name: str) -> None:
    assert check_name(name, "table") == name


@pytest.mark.parametrize("name", ["", "a:b", "x" * 65, "sp ace", "é", "a/b", "a\n"])
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidArgumentError, match="table"):
        check_name(name, "table")


def test_name_must_be_str() -> None:
    with pytest.raises(InvalidTypeError):
        check_name(b"abc", "namespace")


def test_catalog_starts_with_the_default_table() -> None:
    engine = MemoryEngine()
    catalog = Catalog(engine)
    assert catalog.namespaces() == ["default"]
    assert catalog.tables("default") == ["default"]
    assert catalog.table_id("default", "default") == 0
    assert engine.load_catalog() is not None


class FilterRecordingEngine(MemoryEngine):
    """Keeps the drop filter the catalog last gave it."""

    drop_filter: Callable[[bytes], bool] | None = None

    def set_drop_filter(self, predicate: Callable[[bytes], bool]) -> None:
        self.drop_filter = predicate


def test_catalog_changes_are_saved_and_ids_never_reused() -> None:
    engine = FilterRecordingEngine()
    catalog = Catalog(engine)
    catalog.create_namespace("ns")
    a = catalog.create_table("ns", "a")
    b = catalog.create_table("ns", "b")
    assert len({0, a, b}) == 3
    catalog.drop_table("ns", "a")
    again = catalog.create_table("ns", "a")
    assert again not in (0, a, b)
    reloaded = Catalog(engine)
    assert reloaded.tables("ns") == ["a", "b"]
    assert reloaded.table_id("ns", "a") == again
    dropped = engine.drop_filter
    assert dropped is not None
    assert dropped(table_prefix(a) + b"k")
    assert not dropped(table_prefix(again) + b"k")


def test_catalog_errors() -> None:
    catalog = Catalog(MemoryEngine())
    with pytest.raises(NotFoundError):
        catalog.tables("nope")
    with pytest.raises(NotFoundError):
        catalog.create_table("nope", "t")
    with pytest.raises(NotFoundError):
        catalog.table_id("default", "nope")
    catalog.create_namespace("ns")
    with pytest.raises(AlreadyExistsError):
        catalog.create_namespace("ns")
    catalog.create_table("ns", "t")
    with pytest.raises(AlreadyExistsError):
        catalog.create_table("ns", "t")
    with pytest.raises(InvalidArgumentError):
        catalog.drop_namespace("default")
    catalog.drop_namespace("ns")
    assert not catalog.has_namespace("ns")
    with pytest.raises(NotFoundError):
        catalog.drop_namespace("ns")


def test_many_tables_cross_the_short_id_range() -> None:
    engine = MemoryEngine()
    catalog = Catalog(engine)
    ids = [catalog.create_table("default", f"t{i}") for i in range(0xF5)]
    assert max(ids) >= 0xF0
    prefixes = {table_prefix(i) for i in ids}
    assert len(prefixes) == len(ids)


def test_a_drop_gives_the_engine_a_new_filter_that_can_be_pickled() -> None:
    engine = FilterRecordingEngine()
    catalog = Catalog(engine)
    catalog.create_namespace("ns")
    a = catalog.create_table("ns", "a")
    before = engine.drop_filter
    assert before is not None and not before(table_prefix(a) + b"k")
    catalog.drop_table("ns", "a")
    after = engine.drop_filter
    assert isinstance(after, DroppedTables) and after(table_prefix(a) + b"k")
    copy = pickle.loads(pickle.dumps(after))
    assert copy(table_prefix(a) + b"k") and not copy(table_prefix(0) + b"k")
