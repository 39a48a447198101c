"""Which engine a data directory holds, and which engine an open should use.

Every way in (``shaledb.open``, ``DB``, ``KeyValueStore``, the shell, the server and the
offline operations) decides through this module, so they all agree:

- an LSM directory has a ``CURRENT`` file (or, after a crash during its first open or a
  backup cut short, LSM-named files: numbered WALs, tables and manifests, their ``.tmp``
  forms, and no hash-log segment; the LSM open then reports or clears them itself);
- a hash-log directory is what :func:`shaledb.engine.hashlog.is_hashlog_directory`
  recognises (its identity file), or one holding hash-log segments and no LSM-named
  file (a store whose identity file was lost: its open refuses and points to repair);
- a missing directory, or one holding nothing but ``LOCK``, is new: it gets the
  caller's default engine;
- anything else (files of neither engine) is refused, never reformatted.

An explicit engine that differs from the detected one is an
:class:`~shaledb.errors.InvalidArgumentError`: the data is fine, the argument is wrong.
"""

from __future__ import annotations

import os

from shaledb.engine import filenames
from shaledb.engine.fs import FileSystem
from shaledb.errors import InvalidArgumentError, StorageError

LSM = "lsm"
HASHLOG = "hashlog"
#: The accepted values of every ``engine`` argument and ``--engine`` option.
ENGINES = (LSM, HASHLOG)

#: How many unknown names a refusal quotes.
_QUOTED_NAMES = 3


def detect_engine(path: str, fs: FileSystem | None = None) -> str | None:
    """The engine whose database is in directory ``path``: ``"lsm"``, ``"hashlog"``, or
    None for a directory that does not exist or holds nothing but ``LOCK``.

    Reads only names (and the hash-log identity file); takes no lock, so a directory
    in use by another process is detected too.

    Raises:
        InvalidArgumentError: a directory holding files of neither engine (the
            message quotes some of them).
        StorageError: ``path`` is a file, or the directory cannot be listed.
    """
    if not os.path.exists(path):
        return None
    if not os.path.isdir(path):
        raise StorageError(_not_a_directory(path))
    fs = fs or FileSystem()
    names = [n for n in fs.list_dir(path) if n != filenames.LOCK]
    if filenames.CURRENT in names:
        return LSM  # checked first: opening an LSM database never loads the hash-log package
    if not names:
        return None
    if _is_hashlog_directory(path, fs):
        return HASHLOG
    lsm_names, hashlog_names = any(map(_is_lsm_name, names)), any(map(_is_hashlog_name, names))
    if lsm_names and not hashlog_names:
        return LSM
    if hashlog_names and not lsm_names:
        # A hash-log store that lost its identity file: the open says so and points
        # to repair, which writes a new one; check reports it.
        return HASHLOG
    quoted = ", ".join(names[:_QUOTED_NAMES]) + (", ..." if len(names) > _QUOTED_NAMES else "")
    raise InvalidArgumentError(
        f"{path} holds files of neither engine ({quoted}); "
        "ShaleDB opens a new or empty directory, an LSM database or a hash-log database"
    )


def choose_engine(path: str, engine: str | None, default: str = LSM) -> str:
    """The engine to open directory ``path`` with.

    Args:
        engine: ``"lsm"``, ``"hashlog"``, or None to use what :func:`detect_engine`
            finds (``default`` for a new directory).
    Raises:
        InvalidArgumentError: ``engine`` is not one of :data:`ENGINES`, or the
            directory holds a database of the other engine (nothing is changed), or
            anything :func:`detect_engine` refuses.
    """
    check_engine(engine)
    found = detect_engine(path)
    if engine is not None and found is not None and engine != found:
        raise InvalidArgumentError(
            f"{path} holds {_described(found)} database, not {_described(engine)} one; "
            f"open it with engine {found!r}, or name no engine to have it detected"
        )
    return engine or found or default


def check_engine(engine: object) -> None:
    """Raise InvalidArgumentError unless ``engine`` is None or one of :data:`ENGINES`."""
    if engine is not None and engine not in ENGINES:
        raise InvalidArgumentError(
            f"unknown engine {engine!r}; accepted engines: {', '.join(ENGINES)}"
        )


def _described(engine: str) -> str:
    return "a hash-log" if engine == HASHLOG else "an LSM"


def _is_lsm_name(name: str) -> bool:
    # lost/ is not one: both engines keep one, and neither opens from it alone.
    name = _without_temp_suffix(name)
    return name == filenames.CURRENT or filenames.parse(name) is not None


def _is_hashlog_name(name: str) -> bool:
    # A hash-log directory that lost its identity file: its segments must not be
    # taken for an LSM directory's neighbours and left to an LSM open.
    name = _without_temp_suffix(name)
    return name == filenames.HASHLOG_CATALOG or filenames.parse_segment(name) is not None


def _without_temp_suffix(name: str) -> str:
    return name[: -len(filenames.TEMP_SUFFIX)] if name.endswith(filenames.TEMP_SUFFIX) else name


def _is_hashlog_directory(path: str, fs: FileSystem) -> bool:
    # Imported here, not at the top: opening an LSM database never loads the hash-log
    # package.
    from shaledb.engine.hashlog import is_hashlog_directory

    return is_hashlog_directory(path, fs)


def _not_a_directory(path: str) -> str:
    from shaledb.engine.hashlog import is_hashlog_data_file

    if is_hashlog_data_file(path):
        return (
            f"{path} is a hash-log data file, not a directory; open it with "
            "shaledb.KeyValueStore(data_path, index_path)"
        )
    return f"{path} exists and is not a directory"
