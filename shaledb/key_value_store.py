"""``KeyValueStore``: the seed's name for a database, on the hash-log engine by default.

Two forms::

    store = KeyValueStore("data.txt", "index.txt")   # the hash-log engine in two files
    store = KeyValueStore("./store")                 # a directory

The two-file form keeps the data log in ``data_path`` and the key index in
``index_path`` (plus a sidecar lock file ``<data_path>.lock``); docs/format.md
describes both. The directory form opens an existing directory with the engine that
wrote it, so an LSM directory stays an LSM database (as ``shaledb.open`` does), and
creates a new or empty directory with the hash-log engine. Either way the store is a
:class:`~shaledb.db.DB`: ``set``, ``get``, ``update``, ``delete``, ``compact``,
namespaces and tables all work.
"""

from __future__ import annotations

import os
from typing import Any

from shaledb.db import DB, options_of, path_of
from shaledb.engine.detect import HASHLOG, check_engine
from shaledb.errors import InvalidArgumentError

__all__ = ["KeyValueStore"]


class KeyValueStore(DB):
    """A database in a directory, or the hash-log engine in a data file and an index file.

    Args:
        path: the data file (with ``index_path``) or the data directory (without).
            ``data_dir`` is accepted as another name for the directory.
        index_path: the index file of the two-file form.
        engine: the directory form takes ``"hashlog"``, ``"lsm"`` or None (detect;
            ``"hashlog"`` for a new directory); the two-file form only ``"hashlog"``
            or None.
        memtable_size, **options: as for :class:`~shaledb.db.DB`.
    Raises:
        InvalidArgumentError: as for DB; and, for the two-file form, both paths are
            the same, ``engine`` is ``"lsm"``, or ``data_path`` is a directory or an
            existing non-empty file that is not a hash-log data file (it is left
            untouched).
        LockedError: another process or handle has the store open.
        CorruptionError: the store's files are damaged.
    """

    default_engine = HASHLOG
    #: The index file of the two-file form ("" for the directory form).
    index_path = ""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        index_path: str | os.PathLike[str] | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        engine: str | None = None,
        memtable_size: int | None = None,
        **options: Any,
    ) -> None:
        if index_path is None:
            super().__init__(
                path, data_dir=data_dir, engine=engine, memtable_size=memtable_size, **options
            )
            return
        if path is None or data_dir is not None:
            raise InvalidArgumentError(
                "the two-file form takes the data file and the index file: "
                "KeyValueStore(data_path, index_path)"
            )
        data_path, index_file = path_of(path), path_of(index_path)
        _check_two_files(data_path, index_file, engine)
        opts = options_of(memtable_size, options)
        from shaledb.engine.hashlog import HashLogEngine

        self._setup(HashLogEngine.two_files(data_path, index_file, opts))
        self.path = data_path
        self.index_path = index_file

    def __repr__(self) -> str:
        if self.index_path:
            return f"<shaledb.KeyValueStore {self.path!r} {self.index_path!r}>"
        return f"<shaledb.KeyValueStore {self.path!r}>"


def _check_two_files(data_path: str, index_path: str, engine: str | None) -> None:
    """Refuse two-file arguments that could only fail later or reformat something."""
    check_engine(engine)
    if engine not in (None, HASHLOG):
        raise InvalidArgumentError(
            f"the two-file form KeyValueStore(data_path, index_path) is the hash-log "
            f"engine; got engine={engine!r} (accepted: {HASHLOG!r} or none)"
        )
    if os.path.abspath(data_path) == os.path.abspath(index_path):
        raise InvalidArgumentError(
            f"the data file and the index file must differ; both are {data_path}"
        )
    for name in (data_path, index_path):
        if os.path.isdir(name):
            raise InvalidArgumentError(
                f"{name} is a directory; the two-file form takes two files "
                "(KeyValueStore(directory) opens a directory)"
            )
    # The files themselves are checked by HashLogEngine.two_files (check_pair).
