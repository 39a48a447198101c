"""One small adapter per store, all with the same methods, so the phases stay store-blind.

Every adapter works in bytes keys and bytes values and offers:

- ``open(path)`` / ``close()``: a store in directory ``path`` (created empty by the caller).
- ``put(k, v)``, ``get(k) -> bytes | None``, ``delete(k)``.
- ``write_batch(pairs)``: the store's own atomic batch for a list of ``(k, v)``.
- ``scan_all()``: every ``(k, v)`` in key order; ``scan_range(start, n)``: at most ``n``
  pairs from the first key ``>= start``, as a list. ``RANGE_SCANS = False`` when the
  store has no ordered access (its range phases are then reported as n/a).
- ``commit()``: end of a write phase (only stores that buffer writes in an open
  transaction need it; it runs inside the timed region).
- ``settle()``: move recent writes to the store's on-disk structures before the read
  phases (a memtable flush, or a close and reopen where that is the natural way).
- ``compact()``: full compaction where the store has one.
- ``stats()``: store-specific counters, or None.

Where a store's own method already has the right signature the adapter binds it as an
attribute in ``open`` (``self.put = db.put``), so a phase calls the store with no wrapper
in between; the wrappers that remain are the ones the store's API needs (LMDB's
transactions, for example).

Durability is kept alike: no store fsyncs per write. ShaleDB's default ("everysec")
and LevelDB's and RocksDB's defaults hand each write to the OS before returning; LMDB
runs with ``sync=False``; SQLite-based stores use their usual settings (diskcache:
WAL with synchronous=NORMAL; sqlitedict: one open transaction per write phase).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Iterator
from typing import Any

Pair = tuple[bytes, bytes]


def disk_bytes(path: str) -> int:
    """Bytes allocated on disk to every file under ``path`` (sparse files count as stored)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.stat(os.path.join(root, name))
            except FileNotFoundError:
                continue  # a store removed a temporary file while we walked
            total += min(st.st_size, st.st_blocks * 512) if st.st_blocks else st.st_size
    return total


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


class Store:
    """The interface every adapter implements; see the module docstring."""

    name = ""
    #: What the report says the store is.
    description = ""
    #: The Python module the adapter needs; a failed import skips the store.
    module = ""
    RANGE_SCANS = True
    ON_DISK = True

    def __init__(self) -> None:
        self.path = ""

    def available(self) -> str | None:
        """None when the store can run here, else the reason it cannot."""
        try:
            importlib.import_module(self.module)
        except ImportError as exc:
            return f"cannot import {self.module}: {exc}"
        return None

    def version(self) -> str:
        return _version(self.module)

    def open(self, path: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def put(self, key: bytes, value: bytes) -> None:
        raise NotImplementedError

    def get(self, key: bytes) -> bytes | None:
        raise NotImplementedError

    def delete(self, key: bytes) -> None:
        raise NotImplementedError

    def write_batch(self, pairs: list[Pair]) -> None:
        raise NotImplementedError

    def scan_all(self) -> Iterator[Pair]:
        raise NotImplementedError

    def scan_range(self, start: bytes, n: int) -> list[Pair]:
        raise NotImplementedError

    def commit(self) -> None:
        pass

    def settle(self) -> None:
        pass

    def compact(self) -> None:
        pass

    def stats(self) -> dict[str, Any] | None:
        return None

    def disk_bytes(self, path: str) -> int | None:
        return disk_bytes(path) if self.ON_DISK else None


class DictStore(Store):
    """A Python dict: the in-memory upper bound. Ordered access uses a sorted key list
    built on first use and kept up to date by later writes (sortedcontainers)."""

    name = "dict"
    description = "Python dict (in memory, upper bound)"
    module = "sortedcontainers"
    ON_DISK = False

    def version(self) -> str:
        import platform

        return f"Python {platform.python_version()}"

    def open(self, path: str) -> None:
        self.d: dict[bytes, bytes] = {}
        self._sorted: Any = None
        self.get = self.d.get  # type: ignore[method-assign]

    def close(self) -> None:
        self.d = {}
        self._sorted = None

    def put(self, key: bytes, value: bytes) -> None:
        d = self.d
        if self._sorted is not None and key not in d:
            self._sorted.add(key)
        d[key] = value

    def delete(self, key: bytes) -> None:
        if self.d.pop(key, None) is not None and self._sorted is not None:
            self._sorted.remove(key)

    def write_batch(self, pairs: list[Pair]) -> None:
        if self._sorted is not None:
            for k, v in pairs:
                self.put(k, v)
        else:
            self.d.update(pairs)

    def _index(self) -> Any:
        if self._sorted is None:
            from sortedcontainers import SortedList

            self._sorted = SortedList(self.d)
        return self._sorted

    def scan_all(self) -> Iterator[Pair]:
        d = self.d
        return ((k, d[k]) for k in self._index())

    def scan_range(self, start: bytes, n: int) -> list[Pair]:
        index = self._index()
        i = index.bisect_left(start)
        d = self.d
        return [(k, d[k]) for k in index[i : i + n]]


class GdbmStore(Store):
    """The standard library's ``dbm.gnu`` (GNU dbm): a hash file, no key order."""

    name = "dbm.gnu"
    description = "dbm.gnu (GNU dbm hash file, stdlib)"
    module = "dbm.gnu"
    RANGE_SCANS = False

    def version(self) -> str:
        import dbm.gnu

        return ".".join(map(str, getattr(dbm.gnu, "_GDBM_VERSION", ()))) or "?"

    def open(self, path: str) -> None:
        import dbm.gnu

        self._file = os.path.join(path, "data.gdbm")
        # "f": fast mode, no sync on every write (as the other stores).
        self.db: Any = dbm.gnu.open(self._file, "cf")  # noqa: SIM115 - closed in close()
        self.get = self.db.get  # type: ignore[method-assign]

    def close(self) -> None:
        self.db.close()

    def put(self, key: bytes, value: bytes) -> None:
        self.db[key] = value

    def delete(self, key: bytes) -> None:
        del self.db[key]

    def write_batch(self, pairs: list[Pair]) -> None:
        db = self.db
        for k, v in pairs:
            db[k] = v

    def scan_all(self) -> Iterator[Pair]:
        # No key order in a hash file: sort the keys, then fetch each value.
        db = self.db
        return ((k, db[k]) for k in sorted(db.keys()))

    def settle(self) -> None:
        self.db.sync()

    def compact(self) -> None:
        self.db.reorganize()


class SqliteDictStore(Store):
    """sqlitedict over SQLite: raw bytes (no pickling), one transaction per write phase."""

    name = "sqlitedict"
    description = "sqlitedict (SQLite table, one transaction per write phase)"
    module = "sqlitedict"

    def open(self, path: str) -> None:
        from sqlitedict import SqliteDict

        def same(x: bytes) -> bytes:
            return x

        self.db: Any = SqliteDict(
            os.path.join(path, "data.sqlite"),
            tablename="kv",
            autocommit=False,
            encode=same,
            decode=same,
        )
        self.get = self.db.get  # type: ignore[method-assign]

    def close(self) -> None:
        self.db.commit()
        self.db.close()

    def put(self, key: bytes, value: bytes) -> None:
        self.db[key] = value

    def delete(self, key: bytes) -> None:
        del self.db[key]

    def write_batch(self, pairs: list[Pair]) -> None:
        self.db.update(pairs)

    def scan_all(self) -> Iterator[Pair]:
        return self.db.conn.select('SELECT key, value FROM "kv" ORDER BY key')

    def scan_range(self, start: bytes, n: int) -> list[Pair]:
        sql = 'SELECT key, value FROM "kv" WHERE key >= ? ORDER BY key LIMIT ?'
        return list(self.db.conn.select(sql, (start, n)))

    def commit(self) -> None:
        self.db.commit()

    def settle(self) -> None:
        self.db.commit()

    def compact(self) -> None:
        self.db.commit()
        self.db.conn.execute("VACUUM")
        self.db.commit()


class DiskCacheStore(Store):
    """diskcache.Cache (SQLite in WAL mode), with eviction turned off."""

    name = "diskcache"
    description = "diskcache.Cache (SQLite, WAL, no eviction)"
    module = "diskcache"
    # Its public API has ordered keys (iterkeys) but no seek: no range scans.
    RANGE_SCANS = False

    def open(self, path: str) -> None:
        import diskcache

        self.db: Any = diskcache.Cache(path, eviction_policy="none", size_limit=2**62)
        db = self.db
        self.get = db.get  # type: ignore[method-assign]
        self.put = db.set  # type: ignore[method-assign]
        self.delete = db.delete  # type: ignore[method-assign]

    def close(self) -> None:
        self.db.close()

    def write_batch(self, pairs: list[Pair]) -> None:
        db = self.db
        with db.transact():
            for k, v in pairs:
                db.set(k, v)

    def scan_all(self) -> Iterator[Pair]:
        db = self.db
        return ((k, db.get(k)) for k in db.iterkeys())


class PlyvelStore(Store):
    """LevelDB through plyvel, with its default options (or with a bloom filter)."""

    name = "plyvel"
    description = "LevelDB via plyvel, default options"
    module = "plyvel"

    def __init__(self, bloom_bits: int = 0) -> None:
        super().__init__()
        self.bloom_bits = bloom_bits
        if bloom_bits:
            self.name = "plyvel-bloom"
            self.description = f"LevelDB via plyvel, bloom_filter_bits={bloom_bits}"

    def version(self) -> str:
        import plyvel

        return f"{_version('plyvel')} (LevelDB {plyvel.__leveldb_version__})"

    def open(self, path: str) -> None:
        import plyvel

        self.path = path
        kwargs: dict[str, Any] = {"create_if_missing": True}
        if self.bloom_bits:
            kwargs["bloom_filter_bits"] = self.bloom_bits
        self.db: Any = plyvel.DB(path, **kwargs)
        db = self.db
        self.put = db.put  # type: ignore[method-assign]
        self.get = db.get  # type: ignore[method-assign]
        self.delete = db.delete  # type: ignore[method-assign]

    def close(self) -> None:
        self.db.close()

    def write_batch(self, pairs: list[Pair]) -> None:
        with self.db.write_batch() as wb:
            for k, v in pairs:
                wb.put(k, v)

    def scan_all(self) -> Iterator[Pair]:
        return self.db.iterator()

    def scan_range(self, start: bytes, n: int) -> list[Pair]:
        out = []
        with self.db.iterator(start=start) as it:
            for pair in it:
                out.append(pair)
                if len(out) >= n:
                    break
        return out

    def settle(self) -> None:
        # plyvel has no flush call; reopening writes the recovered log to a level-0 table.
        self.close()
        self.open(self.path)

    def compact(self) -> None:
        self.db.compact_range()


class LmdbStore(Store):
    """LMDB: 8 GiB map, writemap off, sync off; one write transaction per put or batch,
    one read transaction per get (a user cannot keep one open across writes)."""

    name = "lmdb"
    description = "LMDB via lmdb, one txn per op (a batch is one txn)"
    module = "lmdb"

    def open(self, path: str) -> None:
        import lmdb

        self.env: Any = lmdb.open(path, map_size=8 << 30, writemap=False, sync=False)
        self._begin = self.env.begin

    def close(self) -> None:
        self.env.close()

    def put(self, key: bytes, value: bytes) -> None:
        with self._begin(write=True) as txn:
            txn.put(key, value)

    def get(self, key: bytes) -> bytes | None:
        with self._begin() as txn:
            return txn.get(key)  # type: ignore[no-any-return]

    def delete(self, key: bytes) -> None:
        with self._begin(write=True) as txn:
            txn.delete(key)

    def write_batch(self, pairs: list[Pair]) -> None:
        with self._begin(write=True) as txn:
            for k, v in pairs:
                txn.put(k, v)

    def scan_all(self) -> Iterator[Pair]:
        with self._begin() as txn:
            yield from txn.cursor()

    def scan_range(self, start: bytes, n: int) -> list[Pair]:
        out = []
        with self._begin() as txn:
            cur = txn.cursor()
            if cur.set_range(start):
                for pair in cur:
                    out.append(pair)
                    if len(out) >= n:
                        break
        return out

    def settle(self) -> None:
        self.env.sync(True)


class RocksDictStore(Store):
    """RocksDB through rocksdict.Rdict in raw mode (bytes in, bytes out), default options."""

    name = "rocksdict"
    description = "RocksDB via rocksdict.Rdict (raw mode), default options"
    module = "rocksdict"

    def open(self, path: str) -> None:
        import rocksdict

        self._mod = rocksdict
        self.db: Any = rocksdict.Rdict(path, options=rocksdict.Options(raw_mode=True))
        db = self.db
        self.put = db.put  # type: ignore[method-assign]
        self.get = db.get  # type: ignore[method-assign]
        self.delete = db.delete  # type: ignore[method-assign]

    def close(self) -> None:
        self.db.close()

    def write_batch(self, pairs: list[Pair]) -> None:
        wb = self._mod.WriteBatch(raw_mode=True)
        for k, v in pairs:
            wb.put(k, v)
        self.db.write(wb)

    def scan_all(self) -> Iterator[Pair]:
        return self.db.items()

    def scan_range(self, start: bytes, n: int) -> list[Pair]:
        out = []
        for pair in self.db.items(from_key=start):
            out.append(pair)
            if len(out) >= n:
                break
        return out

    def settle(self) -> None:
        self.db.flush()

    def compact(self) -> None:
        self.db.compact_range(None, None)


class ShaleStore(Store):
    """ShaleDB embedded, default options (fsync "everysec")."""

    name = "shaledb"
    description = "ShaleDB embedded, default options (fsync everysec)"
    module = "shaledb"
    #: The ``engine`` argument of ``shaledb.open``.
    engine = "lsm"

    def version(self) -> str:
        import shaledb

        return str(shaledb.__version__)

    def open(self, path: str) -> None:
        import shaledb

        self.db: Any = shaledb.open(path, engine=self.engine)
        db = self.db
        self.put = db.put  # type: ignore[method-assign]
        self.get = db.get  # type: ignore[method-assign]
        self.delete = db.delete  # type: ignore[method-assign]

    def close(self) -> None:
        self.db.close()

    def write_batch(self, pairs: list[Pair]) -> None:
        keys, values = zip(*pairs, strict=True)
        self.db.batch_put(keys, values)

    def scan_all(self) -> Iterator[Pair]:
        return self.db.scan()  # type: ignore[no-any-return]

    def scan_range(self, start: bytes, n: int) -> list[Pair]:
        return list(self.db.scan(start=start, limit=n))

    def settle(self) -> None:
        self.db.flush()

    def compact(self) -> None:
        self.db.compact()

    def stats(self) -> dict[str, Any]:
        return dict(self.db.stats())


class ShaleHashLogStore(ShaleStore):
    """ShaleDB embedded on the hash-log engine, default options (fsync "everysec")."""

    name = "shaledb-hashlog"
    description = "ShaleDB embedded, hash-log engine, default options (fsync everysec)"
    engine = "hashlog"


def all_stores() -> list[Store]:
    """Every store the suite knows, in report order (ShaleDB's engines last)."""
    return [
        DictStore(),
        GdbmStore(),
        SqliteDictStore(),
        DiskCacheStore(),
        PlyvelStore(),
        PlyvelStore(bloom_bits=10),
        LmdbStore(),
        RocksDictStore(),
        ShaleHashLogStore(),
        ShaleStore(),
    ]
