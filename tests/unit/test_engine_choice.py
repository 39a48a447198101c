"""Choosing the engine on open (``engine=``), and ``KeyValueStore`` in both of its forms."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import shaledb
from shaledb.errors import InvalidArgumentError

SEED = """\
from shaledb import KeyValueStore
store = KeyValueStore('data.txt', 'index.txt')
store.set('key', 'value'); store.get('key'); store.update('key', 'new_value'); store.compact()
"""


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its bytes, to show that nothing was touched."""
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def engine_of(db: shaledb.DB) -> str:
    return str(db.stats()["engine"])


# -- engine= on open ------------------------------------------------------------------


def test_a_new_directory_gets_the_lsm_engine_unless_told(tmp_path: Path) -> None:
    with shaledb.open(str(tmp_path / "a")) as db:
        assert engine_of(db) == "lsm"
    with shaledb.open(str(tmp_path / "b"), engine="hashlog") as db:
        assert engine_of(db) == "hashlog"
        db.put("k", "v")
    with shaledb.DB(str(tmp_path / "c"), engine="hashlog") as db:
        assert engine_of(db) == "hashlog"
    assert (tmp_path / "a" / "CURRENT").exists() and not (tmp_path / "a" / "HASHLOG").exists()
    assert (tmp_path / "b" / "HASHLOG").exists() and not (tmp_path / "b" / "CURRENT").exists()


def test_an_existing_directory_is_opened_with_its_engine(tmp_path: Path) -> None:
    with shaledb.open(str(tmp_path / "hl"), engine="hashlog") as db:
        db.put("k", "hash-log")
    with shaledb.open(str(tmp_path / "lsm"), engine="lsm") as db:
        db.put("k", "lsm")
    with shaledb.open(str(tmp_path / "hl")) as db:
        assert (engine_of(db), db.get("k")) == ("hashlog", "hash-log")
    with shaledb.open(str(tmp_path / "hl"), engine="hashlog") as db:
        assert db.get("k") == "hash-log"
    with shaledb.DB(str(tmp_path / "lsm")) as db:
        assert (engine_of(db), db.get("k")) == ("lsm", "lsm")


@pytest.mark.parametrize("stored, asked", [("lsm", "hashlog"), ("hashlog", "lsm")])
def test_the_other_engine_is_a_clear_error_and_touches_nothing(
    tmp_path: Path, stored: str, asked: str
) -> None:
    path = tmp_path / "db"
    with shaledb.open(str(path), engine=stored) as db:
        db.put("k", "v")
        db.create_namespace("ns").create_table("t").put("a", "b")
    before = snapshot(path)
    described = {"lsm": "an LSM", "hashlog": "a hash-log"}
    message = f"holds {described[stored]} database, not {described[asked]} one"
    with pytest.raises(InvalidArgumentError, match=message):
        shaledb.open(str(path), engine=asked)
    with pytest.raises(InvalidArgumentError, match=message):
        shaledb.DB(str(path), engine=asked)
    assert snapshot(path) == before
    with shaledb.open(str(path)) as db:
        assert (engine_of(db), db.get("k")) == (stored, "v")


@pytest.mark.parametrize("engine", ["btree", "LSM", "", 3])
def test_an_unknown_engine_lists_the_accepted_ones_and_creates_nothing(
    tmp_path: Path, engine: object
) -> None:
    with pytest.raises(InvalidArgumentError, match="accepted engines: lsm, hashlog"):
        shaledb.open(str(tmp_path / "db"), engine=engine)
    assert not (tmp_path / "db").exists()


def test_a_directory_of_neither_engine_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "docs"
    path.mkdir()
    (path / "readme.md").write_text("not a database")
    for engine in (None, "lsm", "hashlog"):
        with pytest.raises(InvalidArgumentError, match=r"neither engine \(readme.md\)"):
            shaledb.open(str(path), engine=engine)
    with pytest.raises(InvalidArgumentError, match="neither engine"):
        shaledb.KeyValueStore(str(path))
    assert snapshot(path) == {"readme.md": b"not a database"}


# -- KeyValueStore ------------------------------------------------------------------------


def test_the_seed_code_runs_verbatim_and_its_data_survives(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SEED],
        cwd=tmp_path,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "data.txt").stat().st_size > 0
    assert (tmp_path / "index.txt").exists()
    assert not [n for n in os.listdir(tmp_path) if os.path.isdir(tmp_path / n)]
    # The seed never closed its store: what a reopen sees is what the log holds.
    with shaledb.KeyValueStore(str(tmp_path / "data.txt"), str(tmp_path / "index.txt")) as store:
        assert store.get("key") == "new_value"
        assert engine_of(store) == "hashlog"


def test_the_two_file_form_set_get_update_delete_compact(tmp_path: Path) -> None:
    data, index = str(tmp_path / "data.txt"), str(tmp_path / "index.txt")
    with shaledb.KeyValueStore(data, index) as store:
        assert isinstance(store, shaledb.DB)
        assert repr(store) == f"<shaledb.KeyValueStore {data!r} {index!r}>"
        store.set("key", "value")
        assert store.get("key") == "value"
        store.update("key", "new_value")
        with pytest.raises(KeyError):
            store.update("absent", "x")
        store.put(b"\x00bin", b"\xff")
        store.set("gone", "soon")
        assert store.delete("gone") is True and store.delete("gone") is False
        store.compact()
        assert store.get("key") == "new_value" and store.get(b"\x00bin") == b"\xff"
        assert store.get("gone") is None
    with shaledb.KeyValueStore(data, index) as store:
        assert dict(store.scan()) == {b"\x00bin": b"\xff", "key": "new_value"}


def test_the_two_file_form_refuses_what_it_cannot_be(tmp_path: Path) -> None:
    data, index = tmp_path / "data.txt", tmp_path / "index.txt"
    with pytest.raises(InvalidArgumentError, match="is the hash-log engine; got engine='lsm'"):
        shaledb.KeyValueStore(str(data), str(index), engine="lsm")
    with pytest.raises(InvalidArgumentError, match="must differ"):
        shaledb.KeyValueStore(str(data), str(data))
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        shaledb.KeyValueStore(str(tmp_path), str(index))
    data.write_text("key1,value1\nkey2,value2\n")  # a text file of some other program
    with pytest.raises(InvalidArgumentError, match="not a hash-log data file"):
        shaledb.KeyValueStore(str(data), str(index))
    assert data.read_text() == "key1,value1\nkey2,value2\n"
    assert not index.exists()


def test_the_two_file_form_never_overwrites_a_file_given_as_its_index(tmp_path: Path) -> None:
    data, index, notes = tmp_path / "data.txt", tmp_path / "index.txt", tmp_path / "notes.txt"
    notes.write_text("someone's notes\n")
    with pytest.raises(InvalidArgumentError, match="notes.txt is not a hash-log index file"):
        shaledb.KeyValueStore(str(tmp_path / "new.dat"), str(notes))
    assert notes.read_text() == "someone's notes\n" and not (tmp_path / "new.dat").exists()
    with shaledb.KeyValueStore(str(data), str(index)) as store:
        for i in range(100):
            store.put(f"k{i}", f"v{i}")
        # The pair swapped while the store is open (its index not written yet), and
        # once it is closed: refused both times, nothing overwritten.
        with pytest.raises(InvalidArgumentError, match="not a hash-log index file"):
            shaledb.KeyValueStore(str(index), str(data))
    with pytest.raises(InvalidArgumentError, match="not a hash-log data file"):
        shaledb.KeyValueStore(str(index), str(data))
    with pytest.raises(InvalidArgumentError, match="holds no data"):
        shaledb.KeyValueStore(str(tmp_path / "other.dat"), str(index))
    assert not (tmp_path / "other.dat").exists()
    with shaledb.KeyValueStore(str(data), str(index)) as store:
        assert store.count() == 100 and store.get("k7") == "v7"


def test_the_directory_form_is_hash_log_when_new_and_detected_when_not(tmp_path: Path) -> None:
    with shaledb.KeyValueStore(str(tmp_path / "new")) as store:
        assert engine_of(store) == "hashlog"
        assert repr(store) == f"<shaledb.KeyValueStore {str(tmp_path / 'new')!r}>"
        store.set("a", "1")
    with shaledb.KeyValueStore(data_dir=str(tmp_path / "new")) as store:
        assert store.get("a") == "1"
    with shaledb.open(str(tmp_path / "lsm")) as db:
        db.put("b", "2")
    with shaledb.KeyValueStore(str(tmp_path / "lsm")) as store:
        assert (engine_of(store), store.get("b")) == ("lsm", "2")
    with shaledb.KeyValueStore(str(tmp_path / "lsm2"), engine="lsm") as store:
        assert engine_of(store) == "lsm"
    with pytest.raises(InvalidArgumentError, match="not a hash-log one"):
        shaledb.KeyValueStore(str(tmp_path / "lsm"), engine="hashlog")


def test_threads_write_while_compact_runs(tmp_path: Path) -> None:
    data, index = str(tmp_path / "data.txt"), str(tmp_path / "index.txt")
    writers, per_writer = 4, 400
    errors: list[BaseException] = []
    with shaledb.KeyValueStore(data, index) as store:
        for i in range(per_writer):
            store.set(f"old{i}", "x" * 50)  # garbage for the compactions to drop
            store.set(f"old{i}", "kept")

        def write(w: int) -> None:
            try:
                for i in range(per_writer):
                    store.set(f"w{w}:{i}", f"first{i}")
                    store.update(f"w{w}:{i}", f"second{i}")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        compactions = 0
        while any(t.is_alive() for t in threads) or compactions < 3:
            store.compact()
            compactions += 1
        for t in threads:
            t.join()
        assert not errors, errors
        assert store.stats()["merges"] >= compactions  # each compact() rewrote the files
        expected = {f"w{w}:{i}": f"second{i}" for w in range(writers) for i in range(per_writer)}
        expected.update({f"old{i}": "kept" for i in range(per_writer)})
        assert dict(store.scan()) == expected
    with shaledb.KeyValueStore(data, index) as store:
        assert dict(store.scan()) == expected


@pytest.mark.parametrize("form", ["two files", "directory"])
def test_namespaces_and_tables_over_the_hash_log_engine(tmp_path: Path, form: str) -> None:
    def reopen() -> shaledb.DB:
        if form == "two files":
            return shaledb.KeyValueStore(str(tmp_path / "d.hl"), str(tmp_path / "i.hl"))
        return shaledb.open(str(tmp_path / "db"), engine="hashlog")

    with reopen() as db:
        people = db.create_namespace("iti").create_table("collaborators")
        people.put("collaborator1", "sief")
        people.put("collaborator2", "ada", ttl=3600)
        other = db.namespace("iti").create_table("other")
        other.put("collaborator1", "not the same table")
        db.put("collaborator1", "the default table")
        with db.write_batch() as batch:
            batch.put("collaborator3", "grace", table=people).delete("collaborator1", table=other)
        scratch = db.namespace("iti").create_table("scratch")
        scratch.put("x", "y")
        db.namespace("iti").drop_table("scratch")
    with reopen() as db:
        assert db.list_namespaces() == ["default", "iti"]
        ns = db.namespace("iti")
        assert ns.list_tables() == ["collaborators", "other"]
        people = ns.table("collaborators")
        assert dict(people.scan()) == {
            "collaborator1": "sief",
            "collaborator2": "ada",
            "collaborator3": "grace",
        }
        assert people.get_range("collaborator2", "collaborator3") == [
            ("collaborator2", "ada"),
            ("collaborator3", "grace"),
        ]
        ttl = people.ttl("collaborator2")
        assert ttl is not None and 3500 < ttl <= 3600
        assert ns.table("other").get("collaborator1") is None
        assert db.get("collaborator1") == "the default table"
        assert db.count() == 1
